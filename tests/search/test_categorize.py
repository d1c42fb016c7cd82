"""Category recognition end to end through the CLI: embed (fake encoders) -> train -> embed --model ->
index -> ``recognizer`` (fit on the split's train ids) -> ``categorize`` a stored product and a new one."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from samestyle.cli import main
from samestyle.errors import ConfigError
from samestyle.models.recognizer import CategoryRecognizer
from samestyle.search.categorize import categorize
from samestyle.search.service import SearchService

COLOURS = {"red": (220, 30, 30), "blue": (30, 40, 220), "green": (30, 200, 60), "black": (10, 10, 10)}
KINDS = ["shirt", "dress", "shoe", "watch"]


def _cli(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0, argv
    return out.getvalue()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("categorize-site")
    (root / "img").mkdir()
    rows = []
    for i in range(96):
        colour, kind = list(COLOURS)[i % 4], KINDS[(i // 4) % 4]
        Image.new("RGB", (24, 32), COLOURS[colour]).save(root / "img" / f"p{i}.png")
        rows.append({"id": f"p{i}", "title": f"{colour} {kind} {i}", "category": f"Apparel > {kind}",
                     "image": f"p{i}.png"})  # fmt: skip
    with open(root / "products.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    cat, emb = str(root / "catalog"), str(root / "emb")
    fakes = ["--image-encoder", "fake", "--text-encoder", "fake", "--cache", str(root / "cache")]
    _cli("ingest", str(root / "products.csv"), "--out", cat, "--image-root", str(root / "img"))
    _cli("embed", "--catalog", cat, "--out", emb, *fakes)
    sets = {
        "data.catalog": f'"{cat}"', "data.embeddings": f'"{emb}"', "data.split": '"hash"',
        "model.image_dim": "16", "model.text_dim": "32", "model.dim": "16", "model.hidden": "32",
        "train.epochs": "1", "train.batch_size": "32", "train.val_queries": "3", "train.threads": "1",
    }  # fmt: skip
    _cli("train", "--out", str(root / "run"), *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")])
    _cli("embed", "--catalog", cat, "--out", str(root / "emb-joint"), *fakes, "--model", str(root / "run"))
    _cli("index", "--catalog", cat, "--embeddings", str(root / "emb-joint"), "--out", str(root / "index"))
    common = ["--catalog", cat, "--embeddings", emb, "--split", "hash", "--level", "category2"]
    out = _cli("recognizer", *common, "--run", str(root / "run"), "--out", str(root / "rec"))
    assert "test/category2: accuracy" in out
    _cli("recognizer", *common, "--out", str(root / "rec-frozen"))
    _cli("recognizer", *common, "--words-only", "--out", str(root / "rec-words"))
    return root


def test_fit_writes_the_recogniser_and_held_out_metrics(site: Path) -> None:
    metrics = json.loads((site / "rec" / "metrics.json").read_text())
    assert metrics["config"]["inputs"] == "joint-fused" and metrics["test/category2"]["n"] > 0
    assert json.loads((site / "rec-frozen" / "metrics.json").read_text())["config"]["inputs"] == "image+text"
    assert CategoryRecognizer.load(site / "rec-words").dense_dim == 0
    assert CategoryRecognizer.load(site / "rec").dense_dim == 16  # the run's joint dimension


def test_a_stored_product_uses_its_title_and_stored_fused_vector(site: Path) -> None:
    service = SearchService.open(site / "index")
    rec = CategoryRecognizer.load(site / "rec")
    top = categorize(service, rec, product_id="p5", k=2)
    vec = service.index.get_vectors("joint-fused", ["p5"])
    want = rec.scores(["blue dress 5"], vec, "category2")[0]  # p5's title
    assert top["category2"][0] == (
        rec.levels["category2"].classes[int(want.argmax())],
        pytest.approx(want.max()),
    )
    assert len(top["category2"]) == 2 and top["category2"][0][0] == "dress"


def test_a_new_product_with_a_catalogue_products_title_and_photo_scores_like_it(site: Path) -> None:
    service = SearchService.open(site / "index")
    rec = CategoryRecognizer.load(site / "rec")
    stored = categorize(service, rec, product_id="p9")
    new = categorize(service, rec, text="blue shoe 9", image=str(site / "img" / "p9.png"))
    assert [c for c, _ in new["category2"]] == [c for c, _ in stored["category2"]]
    np.testing.assert_allclose(
        [s for _, s in new["category2"]], [s for _, s in stored["category2"]], atol=1e-3
    )
    text_only = categorize(service, rec, text="a red shoe")
    assert text_only["category2"][0][0] == "shoe"


def test_the_categorize_command(site: Path) -> None:
    index, rec = str(site / "index"), str(site / "rec")
    out = json.loads(
        _cli("categorize", "--index", index, "--recognizer", rec, "--product-id", "p2", "--json")
    )
    assert out["category2"][0]["label"] == "shirt" and len(out["category2"]) == 3
    words = _cli(
        "categorize", "--index", index, "--recognizer", str(site / "rec-words"), "--text", "black watch"
    )
    assert words.startswith("category2: watch (")


def test_errors_say_what_to_do(site: Path) -> None:
    service = SearchService.open(site / "index")
    frozen = CategoryRecognizer.load(site / "rec-frozen")
    with pytest.raises(ConfigError, match="fitted with --run"):
        categorize(service, frozen, product_id="p1")
    rec = CategoryRecognizer.load(site / "rec")
    with pytest.raises(ConfigError, match="by id, or a new product"):
        categorize(service, rec)
    with pytest.raises(ConfigError, match="photo goes with a new product"):
        categorize(service, rec, product_id="p1", image=str(site / "img" / "p1.png"))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["categorize", "--index", str(site / "index"), "--recognizer", str(site), "--text", "x"])
    assert code == 2 and "no category recognizer" in err.getvalue()


def test_the_http_routes(site: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from samestyle.serve import ServeSettings, create_app

    service = SearchService.open(site / "index")
    settings = ServeSettings(warmup=False, recognizer=site / "rec")
    with TestClient(create_app(service, settings)) as client:
        got = client.get("/api/categorize", params={"id": "p2", "k": 2}).json()
        assert got["product_id"] == "p2" and [c["label"] for c in got["levels"]["category2"]][:1] == ["shirt"]
        assert len(got["levels"]["category2"]) == 2
        photo = (site / "img" / "p9.png").read_bytes()
        new = client.post("/api/categorize", data={"title": "blue shoe 9"}, files={"image": ("p.png", photo)})
        stored = categorize(service, CategoryRecognizer.load(site / "rec"), product_id="p9")
        assert [c["label"] for c in new.json()["levels"]["category2"]] == [c for c, _ in stored["category2"]]
        assert client.post("/api/categorize", data={"title": "red watch"}).json()["product_id"] is None
        assert client.get("/api/categorize", params={"id": "nope"}).status_code == 404
        assert client.get("/api/categorize", params={"id": "p2", "k": 0}).status_code == 422
    with TestClient(create_app(service, ServeSettings(warmup=False))) as client:
        missing = client.get("/api/categorize", params={"id": "p2"})
        assert missing.status_code == 404 and "--recognizer" in missing.json()["error"]
