"""The Myntra suite's category protocol scores the recogniser for every method: on title words alone (the
same reference for all) and on title words + the method's vectors, fitted on train, scored on test."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

pytest.importorskip("sklearn")

from samestyle.catalog.store import Catalog
from samestyle.eval.suites import MyntraContext, evaluate
from samestyle.pipeline.embeddings import EmbeddingSet
from samestyle.types import Product

N = 60


class _Vectors:
    """Image vectors that carry the article type (one-hot + noise); texts that carry nothing."""

    name = "vectors"

    def __init__(self, kinds: np.ndarray) -> None:
        rng = np.random.default_rng(0)
        self.image = np.eye(2)[(kinds == "Heels").astype(int)] * 3 + rng.normal(size=(N, 2)) * 0.1
        self.text = rng.normal(size=(N, 2))

    def items(self) -> dict[str, np.ndarray]:
        return {"image": self.image, "text": self.text}

    def queries(self, text_features: np.ndarray) -> np.ndarray | None:
        return None


def test_recogniser_rows_words_alone_and_words_plus_vectors() -> None:
    kinds = np.array(["Heels", "Flats"] * (N // 2))
    # the titles tell the sub-category but not heels from flats: only the vectors do
    prods = [
        Product(id=f"p{i}", title=f"women footwear {i}", category=("Footwear", "Shoes", kinds[i]))
        for i in range(N)
    ]
    for i in range(0, N, 10):  # a second sub-category so the level has two classes
        prods[i] = Product(id=f"p{i}", title=f"women bag {i}", category=("Accessories", "Bags", kinds[i]))
    emb = EmbeddingSet(ids=[p.id for p in prods])
    emb.add_space("image", np.zeros((N, 2)), None, "fake")
    emb.add_space("text", np.zeros((N, 2)), None, "fake")
    split = {"train": [f"p{i}" for i in range(40)], "val": [], "test": [f"p{i}" for i in range(40, N)]}

    def features(texts: Sequence[str]) -> np.ndarray:
        return np.zeros((len(texts), 2))

    ctx = MyntraContext(Catalog(prods), emb, split, None, features)
    out = evaluate(_Vectors(kinds), ctx, ["category"])
    rows = {k: v for k, v in out.items() if "recognizer" in k}
    assert set(rows) == {
        f"{lv} recognizer, {what}"
        for lv in ("subCategory", "articleType")
        for what in ("title words alone", "title words + embedding")
    }
    assert rows["subCategory recognizer, title words alone"]["acc"] == 1.0
    assert rows["articleType recognizer, title words + embedding"]["acc"] == 1.0
    assert rows["articleType recognizer, title words alone"]["acc"] <= 0.7  # words cannot tell them apart
    assert rows["articleType recognizer, title words alone"]["n"] == N - 40
