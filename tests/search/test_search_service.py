"""Search features on a generated catalogue with suppliers: same style, filters, explanations,
composed queries, refinement sessions and duplicate detection, through the service and the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from search_fakes import Site

from samestyle.cli import main
from samestyle.errors import ConfigError, NotFoundError
from samestyle.index.filters import Filter
from samestyle.index.product_index import ProductIndex
from samestyle.search.service import SearchService


def _exact(service: SearchService, space: str, vec: np.ndarray, keep) -> np.ndarray:
    """Brute force over every product ``keep`` accepts: the slow twin of the filtered index search.

    Returns the sorted similarities (compared as scores, since tied products may come in either order).
    """
    index = service.index.space(space)
    ids = [pid for pid in index.ids if keep(service.index.metadata.get([pid])[0])]
    return np.sort(service.index.get_vectors(space, ids) @ vec)[::-1]


def test_same_style_from_other_suppliers_returns_k_in_index(site: Site) -> None:
    service = SearchService.open(site.joint_index)
    hits = service.similar("p0", k=20, other_suppliers=True)
    assert len(hits) == 20 and all(h.product.supplier_id != "S1" for h in hits)
    vec = service.index.get_vectors("joint-fused", ["p0"])[0]
    expected = _exact(service, "joint-fused", vec, lambda p: p.supplier_id != "S1")
    np.testing.assert_allclose([h.score for h in hits], expected[:20], atol=1e-5)


@pytest.mark.parametrize(
    ("specs", "keep"),
    [
        (["category=Apparel/shoe"], lambda p: p.category[-1] == "shoe"),
        (["price=10..40", "supplier=S2"], lambda p: 10 <= p.price <= 40 and p.supplier_id == "S2"),
        (
            ["attr=colour:blue", "exclude-supplier=S3"],
            lambda p: p.attributes["colour"] == "blue" and p.supplier_id != "S3",
        ),
    ],
)
def test_filtered_search_returns_exactly_k_when_k_exist(site: Site, specs: list[str], keep) -> None:
    service = SearchService.open(site.joint_index)
    vec, space = service.encode_text_query("red shoe")
    expected = _exact(service, space, vec[0], keep)
    k = min(10, len(expected))
    hits = service.search_text("red shoe", k=k, filter=Filter.parse(specs))
    assert len(hits) == k and all(keep(h.product) for h in hits)
    np.testing.assert_allclose([h.score for h in hits], expected[:k], atol=1e-5)
    assert len(service.search_text("red shoe", k=len(expected) + 5, filter=Filter.parse(specs))) == len(
        expected
    )


def test_explanations_are_the_per_modality_cosines(site: Site) -> None:
    service = SearchService.open(site.joint_index)
    hits = service.similar("p5", k=5)
    own = {m: service.index.get_vectors(f"joint-{m}", ["p5"])[0] for m in ("image", "text", "fused")}
    for h in hits:
        for m in ("image", "text", "fused"):
            assert h.scores[m] == pytest.approx(
                float(service.index.get_vectors(f"joint-{m}", [h.id])[0] @ own[m]), abs=1e-5
            )
        assert h.score == pytest.approx(h.scores["fused"], abs=1e-5)
        assert h.shared.get("category", "").startswith("Apparel")
    frozen = SearchService.open(site.index).search_text("blue dress", k=3)
    assert all(set(h.scores) == {"text"} for h in frozen)  # frozen spaces compare like with like only


def test_composed_query_moves_towards_the_modifier(site: Site) -> None:
    service = SearchService.open(site.joint_index)
    for method in ("fused", "sum", "delta", "fused-title"):
        hits = service.compose(modifier="blue", product_id="p0", k=8, method=method)
        assert len(hits) == 8 and "p0" not in {h.id for h in hits}
    image = site.root / "img" / "p0.png"
    assert len(service.compose(modifier="blue", image=image, k=4)) == 4
    with pytest.raises(ConfigError, match="needs a product id"):
        service.compose(modifier="blue", image=image, method="delta")
    with pytest.raises(ConfigError, match="exactly one"):
        service.compose(modifier="blue")
    with pytest.raises(ConfigError, match="trained model"):
        SearchService.open(site.index).compose(modifier="blue", product_id="p0")


def test_refinement_never_repeats_and_follows_the_likes(site: Site) -> None:
    service = SearchService.open(site.joint_index)
    sid, first = service.start_session(text="shirt model", k=6)
    shown = {h.id for h in first}
    liked = [h.id for h in first if h.product.attributes["colour"] == "green"] or [first[0].id]
    colour = service.index.metadata.get(liked[:1])[0].attributes["colour"]
    rounds = [service.refine(sid, liked=liked, k=6) for _ in range(3)]
    for hits in rounds:
        assert len(hits) == 6 and not shown & {h.id for h in hits}
        shown |= {h.id for h in hits}
    share = np.mean([h.product.attributes["colour"] == colour for h in rounds[0]])
    assert share >= 0.5
    with pytest.raises(NotFoundError):
        service.refine("nope")
    with pytest.raises(NotFoundError, match="not in the index"):
        service.refine(sid, liked=["ghost"])
    _, hits = service.start_session(product_id="p3", k=4)
    assert "p3" not in {h.id for h in hits}


def test_duplicates_find_a_relisted_product_and_the_cli_writes_evidence(site: Site, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(site.joint_index, index_dir)
    index = ProductIndex.open(index_dir)
    original = index.metadata.get(["p7"])[0]
    copy = type(original)(**{**original.__dict__, "id": "p7-copy", "supplier_id": "S3"})
    index.upsert_products(
        [copy], {s: index.get_vectors(s, ["p7"]) for s in index.spaces() if "p7" in index.space(s)}
    )
    index.save()
    service = SearchService.open(index_dir)
    result = service.duplicates(config=None)
    group = next(g for g in result.groups if "p7" in g)
    assert "p7-copy" in group
    link = next(lk for lk in result.links if {lk.a, lk.b} == {"p7", "p7-copy"})
    assert link.scores["image"] == pytest.approx(1.0, abs=1e-5) and "threshold" in link.rule
    only_s2 = service.duplicates(supplier="S2")
    assert all(m.startswith("p") for g in only_s2.groups for m in g)
    assert not any("p7-copy" in g for g in only_s2.groups)  # the copy is S3's, p7 is S2's
    out = tmp_path / "dupes.parquet"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert (
            main(["dedupe", "--index", str(index_dir), "--out", str(out), "--threshold", "image=0.999"]) == 0
        )
    assert "duplicate groups" in printed.getvalue()
    groups = pq.read_table(out).to_pylist()
    assert {"group_id", "product_id", "group_size"} == set(groups[0])
    links = pq.read_table(tmp_path / "dupes.links.parquet").to_pylist()
    assert any({r["a"], r["b"]} == {"p7", "p7-copy"} and r["score_image"] > 0.999 for r in links)
    csv_out = tmp_path / "dupes.csv"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["dedupe", "--index", str(index_dir), "--out", str(csv_out)]) == 0
    assert csv_out.read_text().startswith('"group_id"')


def test_cli_search_explains_composes_and_excludes_suppliers(site: Site) -> None:
    def run(*argv: str) -> str:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert main(list(argv)) == 0
        return out.getvalue()

    idx = str(site.joint_index)
    hits = json.loads(run("search", "--index", idx, "--product-id", "p1", "--other-suppliers", "--json"))
    assert len(hits) == 10 and all(h["supplier_id"] != "S2" for h in hits)  # p1 is S2's
    assert {"image", "text", "fused"} <= set(hits[0]["scores"]) and "category" in hits[0]["shared"]
    text = run(
        "search", "--index", idx, "--product-id", "p1", "--modifier", "blue", "--compose", "sum", "--explain"
    )
    assert "similarity: image" in text
    assert main(["search", "--index", idx, "--text", "x", "--modifier", "y"]) == 2


def test_query_and_gallery_modality_are_chosen_separately(site: Site) -> None:
    service = SearchService.open(site.joint_index)
    hits = service.similar("p2", k=5, space="joint-text", query_space="joint-image")
    vec = service.index.get_vectors("joint-image", ["p2"])[0]
    others = [i for i in service.index.space("joint-text").ids if i != "p2"]
    best = np.sort(service.index.get_vectors("joint-text", others) @ vec)[::-1][:5]  # ties may reorder ids
    np.testing.assert_allclose([h.score for h in hits], best, atol=1e-5)
    with pytest.raises(ConfigError, match="must both be joint"):
        service.similar("p2", space="text", query_space="joint-image")
    image = site.root / "img" / "p2.png"
    assert len(service.search_image_text(image, "green shirt", k=3, space="joint-image")) == 3


def test_dedupe_thresholds_calibrate_on_labelled_products(site: Site, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    rows = ["product_id,group"] + [f"p{i},{i % 4}" for i in range(0, 48)]  # same colour = same group
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "groups.csv"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main(["dedupe", "--index", str(site.index), "--out", str(out), "--threshold", "image=0.5",
                     "--calibrate", str(labels)]) == 0  # fmt: skip
    assert "calibrated on" in printed.getvalue() and "image=" in printed.getvalue()
    service = SearchService.open(site.index)
    from samestyle.search.dedupe_io import read_labels

    cfg, f1 = service.calibrate_dedupe(read_labels(labels))
    assert 0.0 < f1 <= 1.0 and set(cfg.thresholds) == {"image", "text"}  # a frozen index has no fused space
    labels.write_text("product_id,group\np1,a\n,b\n", encoding="utf-8")
    assert main(["dedupe", "--index", str(site.index), "--out", str(out), "--calibrate", str(labels)]) == 2
