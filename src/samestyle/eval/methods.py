"""Retrieval methods compared by the evaluation suites: each gives item vectors and text-query vectors.

- ``FrozenMethod``: the backbones' own spaces (image->image, text->text; no cross-modal queries).
- ``CCAMethod``: a linear joint map fitted on training products (:class:`samestyle.models.cca.CCAMap`).
- ``JointMethod``: a trained joint model run (``samestyle train``). A run with a text tower encodes query
  strings itself (``query_inputs``: MiniLM hidden states, as its catalogue texts), and the suite uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from samestyle.catalog.store import Catalog
from samestyle.models.cca import CCAMap
from samestyle.pipeline.embeddings import EmbeddingSet, l2_normalize


class Method(Protocol):
    name: str

    def items(self) -> dict[str, np.ndarray]:
        """Vectors of every product (rows = ``emb.ids``): "image", "text" and, when defined, "fused"."""
        ...

    def queries(self, text_features: np.ndarray) -> np.ndarray | None:
        """Frozen text features of free-text queries -> vectors comparable with ``items()["image"]``;
        ``None`` when the method has no cross-modal space."""
        ...


@dataclass
class FrozenMethod:
    emb: EmbeddingSet
    name: str = "frozen features"

    def items(self) -> dict[str, np.ndarray]:
        return {"image": self.emb.vectors["image"], "text": self.emb.vectors["text"]}

    def queries(self, text_features: np.ndarray) -> np.ndarray | None:
        return None


@dataclass
class CCAMethod:
    emb: EmbeddingSet
    train_rows: np.ndarray
    dim: int = 256
    name: str = "linear joint map (CCA)"
    _cca: CCAMap = field(init=False)

    def __post_init__(self) -> None:
        rows = self.train_rows[self.emb.present["image"][self.train_rows]]
        self._cca = CCAMap(dim=self.dim).fit(self.emb.vectors["image"][rows], self.emb.vectors["text"][rows])

    def items(self) -> dict[str, np.ndarray]:
        img = self._cca.image(self.emb.vectors["image"]) * self.emb.present["image"][:, None]
        txt = self._cca.text(self.emb.vectors["text"])
        return {"image": img, "text": txt, "fused": l2_normalize(img + txt)}

    def queries(self, text_features: np.ndarray) -> np.ndarray | None:
        return self._cca.text(text_features)


@dataclass
class JointMethod:
    emb: EmbeddingSet
    run_dir: Path
    catalog: Catalog
    name: str = "unified model"
    query_inputs: Callable[[Sequence[str]], np.ndarray] | None = field(init=False, default=None)
    """Query strings -> what ``queries`` reads, when the run has a text tower; None: frozen features."""

    def __post_init__(self) -> None:
        from samestyle.losses.category import load_heads
        from samestyle.train.run import load_run

        self._model, self.config = load_run(self.run_dir)
        self.category_heads = load_heads(Path(self.run_dir))  # None unless trained with [category]
        self._lower = None  # MiniLM up to the cached layer: loaded once, for queries and catalogue texts
        if self.config.text_tower.kind != "pooled":
            from samestyle.models.text_towers import MiniLMHiddenStates

            self._lower = MiniLMHiddenStates(self.config.text_tower)
            self.query_inputs = self._lower.encode_many

    def items(self) -> dict[str, np.ndarray]:
        from samestyle.pipeline.joint import project
        from samestyle.train.run import text_tower_features, tower_features

        feats = tower_features(self.config.tower, self.catalog, self.emb)
        image = feats if feats is not None else self.emb.vectors["image"]
        texts = text_tower_features(self.config.text_tower, self.catalog, self.emb, lower=self._lower)
        text = texts if texts is not None else self.emb.vectors["text"]
        return project(self._model, image, text, self.emb.present["image"])

    def queries(self, text_features: np.ndarray) -> np.ndarray | None:
        from samestyle.pipeline.joint import project

        return project(self._model, None, text_features)["text"]
