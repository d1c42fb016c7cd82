"""The grocery retrieval table: hand-made toys for the scoring, a cache round trip, a real-data slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samestyle.errors import SamestyleError
from samestyle.eval import grocery as G
from samestyle.features.cache import FeatureCache
from samestyle.models.fake import FakeImageEncoder, FakeTextEncoder
from samestyle.paths import shared_data_dir

# Gallery: 3 products (groups 10, 11, 12); queries: 2 photos of products 10 and 11.
GAL_IMG = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
GAL_TXT = np.array([[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])  # text space: 10 and 11 swapped
GAL_FUSED = np.array([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0]])
Q_IMG = np.array([[0.6, 0.8], [0.0, 2.0]])  # q0 scores (0.6, 0.8, -0.6): rank 2; q1 rank 1 (unnormalised)
Q_TXT = np.array([[0.0, 1.0], [1.0, 0.0]])
Q_FUSED = np.array([[0.0, 1.0], [0.0, -1.0]])
Q_GROUPS = [10, 11]
G_GROUPS = [10, 11, 12]


def _table(**over: np.ndarray | None) -> dict[str, dict[str, float]]:
    v: dict[str, np.ndarray | None] = {
        "query_img": Q_IMG,
        "query_txt": Q_TXT,
        "gal_img": GAL_IMG,
        "gal_txt": GAL_TXT,
        "gal_fused": GAL_FUSED,
        "query_fused": Q_FUSED,
    }
    v.update(over)
    return G.grocery_table(
        v["query_img"], v["query_txt"], v["gal_img"], v["gal_txt"], v["gal_fused"], v["query_fused"],
        Q_GROUPS, G_GROUPS,
    )  # fmt: skip


def test_grocery_table_hand() -> None:
    out = _table()
    assert list(out) == list(G.ROWS)
    # image->image: q0 rank 2, q1 rank 1 (the 2.0 norm is removed) -> MRR 3/4, R@1 1/2, R@5 1
    assert out["image->image"]["mrr"] == pytest.approx(0.75)
    assert out["image->image"]["r@1"] == pytest.approx(0.5)
    assert out["image->image"]["r@5"] == out["image->image"]["r@20"] == 1.0
    assert out["image->image"]["n_queries"] == 2 and out["image->image"]["primary"] == pytest.approx(0.75)
    # image->text: q0 (0.8, 0.6, -0.6) rank 1; q1 (1, 0, 0) vs its 11 at 0: 10 and 12 (a tie) count against
    assert out["image->text"]["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert out["image->text"]["r@1"] == pytest.approx(0.5)
    # image->image+text: q0 (0.8, -0.8, 0.6) rank 1; q1 (1, -1, 0) rank 3
    assert out["image->image+text"]["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    # text->text: both rank 1. text->image: q0 (0, 1, 0) rank 3 (tie with 12); q1 (1, 0, -1) rank 2
    assert out["text->text"]["mrr"] == 1.0
    assert out["text->image"]["mrr"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert out["text->image"]["r@1"] == 0.0 and out["text->image"]["r@5"] == 1.0
    # text->image+text: q0 (1, -1, 0) rank 1; q1 (0, 0, 1): its 11 ties 10 and trails 12 -> rank 3
    assert out["text->image+text"]["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    # image+text->image+text: q0 as above; q1 [0, -1] scores (-1, 1, 0): rank 1
    assert out["image+text->image+text"]["mrr"] == 1.0


def test_grocery_table_skips_missing_and_selects_rows() -> None:
    out = _table(gal_fused=None, query_fused=None)
    assert set(out) == {"image->image", "image->text", "text->text", "text->image"}
    only = G.grocery_table(Q_IMG, Q_TXT, GAL_IMG, GAL_TXT, None, None, Q_GROUPS, G_GROUPS,
                           rows=G.SAME_MODALITY_ROWS)  # fmt: skip
    assert list(only) == ["image->image", "text->text"]
    assert _table(query_img=None, query_txt=None, query_fused=None) == {}


def test_grocery_table_errors() -> None:
    with pytest.raises(ValueError, match="unknown grocery rows"):
        G.grocery_table(Q_IMG, Q_TXT, GAL_IMG, GAL_TXT, None, None, Q_GROUPS, G_GROUPS, rows=["img->img"])
    with pytest.raises(ValueError, match=r"image->text.*not in one space"):
        _table(gal_txt=np.ones((3, 5)))


def test_render_markdown() -> None:
    md = G.render_markdown({"cca": _table(gal_fused=None, query_fused=None)}).splitlines()
    assert md[0] == "| method | query -> gallery | MRR | R@1 | R@5 | R@10 | R@20 |"
    assert md[2] == "| cca | image->image | 0.7500 | 0.5000 | 1.0000 | 1.0000 | 1.0000 |"
    assert len(md) == 2 + 4


def test_spread() -> None:
    items = list(range(10))
    assert G._spread(items, None) == items and G._spread(items, 20) == items  # type: ignore[arg-type]
    assert G._spread(items, 3) == [0, 4, 9]  # type: ignore[arg-type]


class _Counting(FakeImageEncoder):
    calls = 0

    def _encode_image_batch(self, pixels: np.ndarray) -> np.ndarray:
        type(self).calls += len(pixels)
        return super()._encode_image_batch(pixels)


def test_cached_image_features_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "dataset"
    root.mkdir()
    paths = []
    for i, colour in enumerate(["red", "blue", "green"]):
        paths.append(root / f"{i}.jpg")
        Image.new("RGB", (32, 32), colour).save(paths[-1])
    enc = _Counting(dim=8)
    cache = FeatureCache(tmp_path / "features", enc.name, enc.dim)
    first = G.cached_image_features(enc, paths, root, cache)
    assert _Counting.calls == 3
    assert ("grocery:0.jpg", G.file_sha256(paths[0])) in cache
    again = G.cached_image_features(enc, paths, root, FeatureCache(tmp_path / "features", enc.name, enc.dim))
    assert _Counting.calls == 3  # all read back
    np.testing.assert_allclose(again, first)
    Image.new("RGB", (32, 32), "white").save(paths[1])  # changed file -> new hash -> re-encoded
    G.cached_image_features(enc, paths, root, cache)
    assert _Counting.calls == 4


def test_run_grocery_eval_checks_method() -> None:
    with pytest.raises(SamestyleError, match="unknown grocery method"):
        G.run_grocery_eval("bm25")
    with pytest.raises(SamestyleError, match="needs run_dir"):
        G.run_grocery_eval("joint")


@pytest.mark.real
def test_real_grocery_slice(tmp_path: Path) -> None:
    if not (shared_data_dir() / "grocery_trainval.tar.gz").is_file():
        pytest.skip("grocery_trainval.tar.gz not found in the shared data folder")
    feats = G.grocery_features(
        FakeImageEncoder(dim=16), FakeTextEncoder(dim=32), include_train=True,
        feature_cache=tmp_path / "features", val_limit=6, train_limit=40,
    )  # fmt: skip
    assert feats.gal_img.shape == (81, 16) and feats.gal_txt.shape == (81, 32)
    assert feats.photo_img.shape == (6, 16) and feats.query_txt.shape == (6, 32)
    assert feats.train_img is not None and feats.train_img.shape == (40, 16)
    assert feats.train_txt().shape == (40, 32)
    assert list(feats.gallery_groups) == list(range(81)) and feats.class_names[1] == "Granny Smith"
    assert set(feats.query_groups) <= set(feats.gallery_groups) and len(set(feats.query_groups)) > 1
    frozen = G.run_grocery_eval("frozen", features=feats, out_dir=tmp_path / "report")
    assert list(frozen) == ["image->image", "text->text"]
    assert (tmp_path / "report" / "eval.md").is_file()
    cca = G.run_grocery_eval("cca", features=feats)
    assert list(cca) == list(G.ROWS)
    for table in (frozen, cca):
        for m in table.values():
            assert m["n_queries"] == 6 and 0 < m["mrr"] <= 1 and m["r@1"] <= m["r@5"] <= m["r@20"]
    # the class name query against the descriptions: label text is in most descriptions
    assert frozen["text->text"]["mrr"] > 0.3
