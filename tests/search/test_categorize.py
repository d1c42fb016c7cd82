"""Category recognition end to end through the CLI on the shared search site (fake encoders, a trained run,
a joint index): ``recognizer`` (fit on the split's train ids) -> ``categorize`` a stored product and a new
one, from the library, the CLI and HTTP."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from search_fakes import Site, cli

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from samestyle.cli import main
from samestyle.errors import ConfigError
from samestyle.models.recognizer import CategoryRecognizer
from samestyle.search.categorize import categorize
from samestyle.search.service import SearchService


@pytest.fixture(scope="module")
def recs(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared search site (fake encoders, a trained run, a joint index) and three recognisers fitted on
    its hash split's train products: on the run's joint-fused vectors, on frozen features, on words alone."""
    root = tmp_path_factory.mktemp("recognizers")
    common = ["--catalog", str(site.catalog), "--embeddings", str(site.root / "emb"), "--split", "hash"]
    common += ["--level", "category2"]
    out = cli("recognizer", *common, "--run", str(site.run), "--out", str(root / "rec"))
    assert "test/category2: accuracy" in out
    cli("recognizer", *common, "--out", str(root / "rec-frozen"))
    cli("recognizer", *common, "--words-only", "--out", str(root / "rec-words"))
    cli(
        "recognizer",
        *common,
        "--run",
        str(site.run),
        "--attributes",
        "colour",
        "--out",
        str(root / "rec-attr"),
    )
    (root / "index").symlink_to(site.joint_index)
    (root / "img").symlink_to(site.root / "img")
    return root


def test_fit_writes_the_recogniser_and_held_out_metrics(recs: Path) -> None:
    metrics = json.loads((recs / "rec" / "metrics.json").read_text())
    assert metrics["config"]["inputs"] == "joint-fused" and metrics["test/category2"]["n"] > 0
    assert json.loads((recs / "rec-frozen" / "metrics.json").read_text())["config"]["inputs"] == "image+text"
    assert CategoryRecognizer.load(recs / "rec-words").dense_dim == 0
    assert CategoryRecognizer.load(recs / "rec").dense_dim == 16  # the run's joint dimension


def test_a_stored_product_uses_its_title_and_stored_fused_vector(recs: Path) -> None:
    service = SearchService.open(recs / "index")
    rec = CategoryRecognizer.load(recs / "rec")
    top = categorize(service, rec, product_id="p5", k=2)
    vec = service.index.get_vectors("joint-fused", ["p5"])
    want = rec.scores(["blue dress model 5"], vec, "category2")[0]  # p5's title
    assert top["category2"][0] == (
        rec.levels["category2"].classes[int(want.argmax())],
        pytest.approx(want.max()),
    )
    assert len(top["category2"]) == 2 and top["category2"][0][0] == "dress"


def test_a_new_product_with_a_catalogue_products_title_and_photo_scores_like_it(recs: Path) -> None:
    service = SearchService.open(recs / "index")
    rec = CategoryRecognizer.load(recs / "rec")
    stored = categorize(service, rec, product_id="p9")
    new = categorize(service, rec, text="blue shoe model 9", image=str(recs / "img" / "p9.png"))
    assert [c for c, _ in new["category2"]] == [c for c, _ in stored["category2"]]
    np.testing.assert_allclose(
        [s for _, s in new["category2"]], [s for _, s in stored["category2"]], atol=1e-3
    )
    text_only = categorize(service, rec, text="a red shoe")
    assert text_only["category2"][0][0] == "shoe"


def test_attributes_are_read_from_the_index_or_given_with_a_new_title(recs: Path) -> None:
    service = SearchService.open(recs / "index")
    rec = CategoryRecognizer.load(recs / "rec-attr")
    assert rec.cfg.attributes == ("colour",) and "colour_blue" in rec.vocabulary
    stored = categorize(service, rec, product_id="p9")
    vec = service.index.get_vectors("joint-fused", ["p9"])
    want = rec.scores(["blue shoe model 9 colour_blue"], vec, "category2")[0]  # p9's title and colour
    assert stored["category2"][0][1] == pytest.approx(want.max())
    photo = str(recs / "img" / "p9.png")
    new = categorize(service, rec, text="blue shoe model 9", image=photo, attributes={"colour": "blue"})
    np.testing.assert_allclose(
        [s for _, s in new["category2"]], [s for _, s in stored["category2"]], atol=1e-3
    )
    without = categorize(service, rec, text="blue shoe model 9", image=photo)
    assert without["category2"][0][1] != pytest.approx(stored["category2"][0][1], abs=1e-3)
    index, path = str(recs / "index"), str(recs / "rec-attr")
    argv = [
        "categorize",
        "--index",
        index,
        "--recognizer",
        path,
        "--text",
        "blue shoe model 9",
        "--image",
        photo,
    ]
    out = json.loads(cli(*argv, "--attribute", "colour=blue", "--json"))
    assert [c["label"] for c in out["category2"]] == [c for c, _ in stored["category2"]]
    assert main([*argv, "--attribute", "colour"]) == 2
    assert main(["categorize", "--index", index, "--recognizer", path, "--product-id", "p9",
                 "--attribute", "colour=red"]) == 2  # fmt: skip


def test_the_categorize_command(recs: Path) -> None:
    index, rec = str(recs / "index"), str(recs / "rec")
    out = json.loads(cli("categorize", "--index", index, "--recognizer", rec, "--product-id", "p2", "--json"))
    assert out["category2"][0]["label"] == "shirt" and len(out["category2"]) == 3
    words = cli(
        "categorize", "--index", index, "--recognizer", str(recs / "rec-words"), "--text", "black watch"
    )
    assert words.startswith("category2: watch (")


def test_errors_say_what_to_do(recs: Path) -> None:
    service = SearchService.open(recs / "index")
    frozen = CategoryRecognizer.load(recs / "rec-frozen")
    with pytest.raises(ConfigError, match="fitted with --run"):
        categorize(service, frozen, product_id="p1")
    rec = CategoryRecognizer.load(recs / "rec")
    with pytest.raises(ConfigError, match="by id, or a new product"):
        categorize(service, rec)
    with pytest.raises(ConfigError, match="photo or attributes go with a new product"):
        categorize(service, rec, product_id="p1", image=str(recs / "img" / "p1.png"))
    with pytest.raises(ConfigError, match="photo or attributes go with a new product"):
        categorize(service, rec, product_id="p1", attributes={"colour": "blue"})
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["categorize", "--index", str(recs / "index"), "--recognizer", str(recs), "--text", "x"])
    assert code == 2 and "no category recognizer" in err.getvalue()


def test_the_http_routes(recs: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from samestyle.serve import ServeSettings, create_app

    service = SearchService.open(recs / "index")
    settings = ServeSettings(warmup=False, recognizer=recs / "rec")
    with TestClient(create_app(service, settings)) as client:
        got = client.get("/api/categorize", params={"id": "p2", "k": 2}).json()
        assert got["product_id"] == "p2" and [c["label"] for c in got["levels"]["category2"]][:1] == ["shirt"]
        assert len(got["levels"]["category2"]) == 2
        photo = (recs / "img" / "p9.png").read_bytes()
        new = client.post(
            "/api/categorize", data={"title": "blue shoe model 9"}, files={"image": ("p.png", photo)}
        )
        stored = categorize(service, CategoryRecognizer.load(recs / "rec"), product_id="p9")
        assert [c["label"] for c in new.json()["levels"]["category2"]] == [c for c, _ in stored["category2"]]
        assert client.post("/api/categorize", data={"title": "red watch"}).json()["product_id"] is None
        assert client.get("/api/categorize", params={"id": "nope"}).status_code == 404
        assert client.get("/api/categorize", params={"id": "p2", "k": 0}).status_code == 422
    with TestClient(create_app(service, ServeSettings(warmup=False, recognizer=recs / "rec-attr"))) as client:
        form = {"title": "blue shoe model 9", "attributes": '{"colour": "blue"}'}
        got = client.post("/api/categorize", data=form, files={"image": ("p.png", photo)}).json()
        stored = categorize(service, CategoryRecognizer.load(recs / "rec-attr"), product_id="p9")
        assert [c["label"] for c in got["levels"]["category2"]] == [c for c, _ in stored["category2"]]
        assert got["levels"]["category2"][0]["score"] == pytest.approx(stored["category2"][0][1], abs=1e-3)
        for bad in ("{colour", '["blue"]', '{"colour": 3}'):
            r = client.post("/api/categorize", data={"title": "x", "attributes": bad})
            assert r.status_code == 400 and "attributes" in r.json()["error"]
    with TestClient(create_app(service, ServeSettings(warmup=False))) as client:
        missing = client.get("/api/categorize", params={"id": "p2"})
        assert missing.status_code == 404 and "--recognizer" in missing.json()["error"]


def test_every_product_beside_its_catalogue_label(recs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from samestyle.search.categorize import categorize_index

    service = SearchService.open(recs / "index")
    rec = CategoryRecognizer.load(recs / "rec")
    rows = categorize_index(service, rec, batch=50).to_pylist()  # several batches
    assert len(rows) == len(service.index) and {r["level"] for r in rows} == {"category2"}
    assert all(r["agrees"] == (r["label"] == r["predicted"]) for r in rows)
    agrees = [r["agrees"] for r in rows]
    assert agrees == sorted(agrees)  # disagreements first
    wrong = [r["margin"] for r in rows if not r["agrees"]]
    assert wrong == sorted(wrong, reverse=True)
    for r in rows[:: len(rows) // 7]:
        one = categorize(service, rec, product_id=r["product_id"], k=1)["category2"][0]
        assert one == (r["predicted"], pytest.approx(r["margin"], abs=1e-5))
        assert r["label"] == service.index.get_products([r["product_id"]])[0].category[1]
    out = cli("categorize", "--index", str(recs / "index"), "--recognizer", str(recs / "rec-words"),
              "--out", str(recs / "all.csv"))  # fmt: skip
    assert "category2: the catalogue's label agrees on" in out
    assert (recs / "all.csv").read_text().splitlines()[
        0
    ] == '"product_id","level","label","predicted","margin","agrees"'
    argv = ["categorize", "--index", str(recs / "index"), "--recognizer", str(recs / "rec")]
    assert main([*argv, "--product-id", "p1", "--out", str(recs / "x.csv")]) == 2
    assert "--out FILE for every product" in capsys.readouterr().err
