"""KAGL restricted to a sub-catalogue (e.g. the 224 px subset): qrels cut to the gallery, hand-computed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from samestyle.catalog.store import Catalog
from samestyle.datasets.kagl import KaglQrels, KaglTask
from samestyle.eval.kagl import restrict_qrels
from samestyle.eval.suites import RESTRICTED, MyntraContext, evaluate
from samestyle.pipeline.embeddings import EmbeddingSet
from samestyle.types import Product

IDS = ["p0", "p1", "p2", "p3"]
T2I = {
    "red dress": {"p0": 1},  # rank 1
    "blue shirt": {"p1": 1, "pX": 1},  # p1 at rank 2; pX is not in this catalogue
    "gone": {"pY": 1},  # no judged product in this catalogue
}
COLOUR = {"Red": {"p0": 1, "pX": 1}, "Teal": {"pZ": 1}}
QUERY_VECS = {
    "red dress": [0.9, 0.1, 0.0, 0.2],  # ranking p0 p3 p1 p2
    "blue shirt": [0.5, 0.3, 0.1, 0.0],  # ranking p0 p1 p2 p3
    "gone": [0.0, 0.0, 1.0, 0.0],
    "Red": [1.0, 0.0, 0.0, 0.0],  # ranking p0 first
    "Teal": [0.0, 0.0, 0.0, 1.0],
}


class _Identity:
    """A method whose query vectors are the given text features, against identity item vectors."""

    name = "identity"

    def items(self) -> dict[str, np.ndarray]:
        return {"image": np.eye(4), "text": np.eye(4)}

    def queries(self, text_features: np.ndarray) -> np.ndarray | None:
        return text_features


def _context(restricted: bool) -> MyntraContext:
    catalog = Catalog(
        [Product(id=i, title=f"t {i}", category=("A", "B", "C"), image=f"{i}.jpg") for i in IDS]
    )
    emb = EmbeddingSet(ids=list(IDS))
    emb.add_space("image", np.eye(4), None, "fake")
    emb.add_space("text", np.eye(4), None, "fake")
    kagl = KaglQrels(
        T2I,
        {"color-to-product": COLOUR},
        {"color-to-product": KaglTask("color-to-product", ("baseColour",), ("image", "text"), (0.9, 0.1))},
        Path("."),
    )

    def features(texts: Sequence[str]) -> np.ndarray:
        return np.array([QUERY_VECS[t] for t in texts], dtype=np.float64)

    split = {"train": [], "val": [], "test": list(IDS)}
    return MyntraContext(catalog, emb, split, kagl, features, kagl_restricted=restricted)


def test_restrict_qrels_drops_absent_products_and_queries() -> None:
    got = restrict_qrels(T2I, IDS)
    assert got == {"red dress": {"p0": 1}, "blue shirt": {"p1": 1}}
    assert restrict_qrels({"q": {"p0": 0, "pX": 1}}, IDS) == {}  # only a grade-0 product left
    assert restrict_qrels({"q": {"7": 1}}, [7]) == {"q": {"7": 1}}  # ids compared as strings


def test_full_gallery_protocol_counts_absent_products_as_misses() -> None:
    out = evaluate(_Identity(), _context(restricted=False), ["kagl"])
    t2i = out["KAGL text->image"]
    # recall@1: 1, 0, 0; recall@10: 1, 1/2 (R = 2), 0; MRR: 1, 1/2, 0
    assert t2i["recall@1"] == pytest.approx(1 / 3)
    assert t2i["recall@10"] == pytest.approx(0.5)
    assert t2i["mrr"] == pytest.approx(0.5)
    assert t2i["n_queries"] == 3 and t2i["n_missing_relevant"] == 2
    assert out["KAGL color-to-product (0.9 image + 0.1 text)"]["p@1"] == pytest.approx(0.5)  # Teal: 0


def test_restricted_protocol_scores_only_this_catalogue() -> None:
    out = evaluate(_Identity(), _context(restricted=True), ["kagl"])
    assert set(out) == {
        f"KAGL text->image{RESTRICTED}",
        f"KAGL color-to-product (0.9 image + 0.1 text){RESTRICTED}",
    }
    t2i = out[f"KAGL text->image{RESTRICTED}"]
    # "gone" dropped; blue shirt's R is 1: recall@1: 1, 0; recall@10: 1, 1; MRR: 1, 1/2
    assert t2i["recall@1"] == pytest.approx(0.5)
    assert t2i["recall@10"] == pytest.approx(1.0)
    assert t2i["mrr"] == pytest.approx(0.75)
    assert t2i["n_queries"] == 2 and t2i["n_missing_relevant"] == 0
    colour = out[f"KAGL color-to-product (0.9 image + 0.1 text){RESTRICTED}"]
    assert colour["n_queries"] == 1 and colour["p@1"] == pytest.approx(1.0)
    assert colour["p@10"] == pytest.approx(0.1)  # only p0 of the 4 gallery products is relevant
