"""Training data on cached features: product tensors, style groups, positive pairs, batches.

Style groups are the label the losses mask with: two products of one group are never each other's
negatives. Groups start from a key per product (default: the normalised title, since identical titles
are the same product for retrieval) and are merged along every positive pair (union-find), so a mined
pair's two products are one group.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from samestyle.catalog.store import Catalog
from samestyle.errors import ArtifactError
from samestyle.pipeline.embeddings import EmbeddingSet


def title_key(title: str) -> str:
    return re.sub(r"\s+", " ", title.strip().lower())


def _union_find_groups(keys: Sequence[str], pairs: np.ndarray) -> np.ndarray:
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        j = first.setdefault(key, i)
        parent[find(i)] = find(j)
    for a, b in pairs:
        parent[find(int(a))] = find(int(b))
    roots = np.array([find(i) for i in range(len(keys))])
    return np.unique(roots, return_inverse=True)[1].astype(np.int64)


@dataclass
class TrainData:
    """Tensors for the products of one split, aligned by row."""

    ids: list[str]
    image: torch.Tensor  # [N, Fi] float32 (tower input)
    text: torch.Tensor  # [N, Ft] float32 (float16 cached hidden states behind a text tower)
    image_present: torch.Tensor  # [N] bool
    groups: torch.Tensor  # [N] int64 style group
    pairs: torch.Tensor  # [P, 2] int64 rows (anchor, positive); (i, i) = a product's own image<->text
    weights: torch.Tensor  # [P] float32 sampling weights
    labels: dict[str, np.ndarray]  # e.g. "subCategory" -> [N] label strings, for evaluation
    query_views: torch.Tensor | None = None  # [N, K, Ft] float32 query-view text vectors (train.query_views)

    def __len__(self) -> int:
        return len(self.ids)


def build_train_data(
    catalog: Catalog,
    emb: EmbeddingSet,
    ids: Sequence[str],
    extra_pairs: Sequence[tuple[str, str, float]] = (),
    self_pair_weight: float = 1.0,
    image_features: np.ndarray | None = None,
    text_features: np.ndarray | None = None,
) -> TrainData:
    """Gather the rows of ``ids`` (a split) with their features, groups and pairs.

    Args:
        catalog: products (titles for groups, categories for labels).
        emb: frozen features with spaces "image" and "text" (row order = ``emb.ids``).
        ids: the products of this split; pairs outside it are dropped.
        extra_pairs: (anchor_id, positive_id, weight), e.g. mined from click logs.
        self_pair_weight: weight of each product's own image<->text pair.
        image_features: optional tower inputs aligned with ``emb.ids`` (e.g. cached activations) that
            replace the pooled "image" vectors.
        text_features: optional text tower inputs aligned with ``emb.ids`` (cached MiniLM hidden states)
            that replace the frozen "text" vectors.
    """
    for space in ("image", "text"):
        if space not in emb.vectors:
            raise ArtifactError(
                f"embeddings lack the '{space}' space; run 'samestyle embed' with both encoders"
            )
    pos = {pid: i for i, pid in enumerate(emb.ids)}
    missing = [i for i in ids if i not in pos]
    if missing:
        raise ArtifactError(f"{len(missing)} split ids have no embedding (e.g. '{missing[0]}')")
    rows = np.array([pos[i] for i in ids])
    local = {pid: n for n, pid in enumerate(ids)}
    pair_rows = [(n, n, self_pair_weight) for n in range(len(ids))]
    pair_rows += [(local[a], local[b], w) for a, b, w in extra_pairs if a in local and b in local and a != b]
    pairs = np.array([(a, b) for a, b, _ in pair_rows], dtype=np.int64).reshape(-1, 2)
    products = [catalog.get(i) for i in ids]
    groups = _union_find_groups([title_key(p.title) for p in products], pairs[pairs[:, 0] != pairs[:, 1]])
    source = image_features if image_features is not None else emb.vectors["image"]
    text_source = text_features if text_features is not None else emb.vectors["text"]
    text_dtype = _dtype(text_source) if text_features is not None else np.float32
    depth = max((len(p.category) for p in products), default=0)
    labels = {
        f"category{d + 1}": np.array([p.category[d] if len(p.category) > d else "" for p in products])
        for d in range(depth)
    }
    return TrainData(
        ids=list(ids),
        image=torch.from_numpy(np.ascontiguousarray(source[rows], dtype=_dtype(source))),
        text=torch.from_numpy(np.ascontiguousarray(text_source[rows], dtype=text_dtype)),
        image_present=torch.from_numpy(emb.present["image"][rows].copy()),
        groups=torch.from_numpy(groups),
        pairs=torch.from_numpy(pairs),
        weights=torch.tensor([w for _, _, w in pair_rows], dtype=torch.float32),
        labels=labels,
    )


def _dtype(source: np.ndarray) -> type[np.floating]:
    """float16 tower inputs stay float16 (the tower casts per batch): 44k x 15680 is 2.8 GB in float32
    (44k x 12320 text hidden states: 2.2 GB)."""
    return np.float16 if source.dtype == np.float16 else np.float32


def pair_batches(
    data: TrainData, batch_size: int, generator: torch.Generator, hard_label: str | None = None
) -> list[torch.Tensor]:
    """One epoch of pair-row batches, sampled by weight without replacement (as many pairs as products).

    With ``hard_label`` (e.g. "category2"), each batch is drawn from pairs whose anchors share one
    label value where possible, so in-batch negatives are hard (same sub-category).
    """
    n = min(len(data.pairs), max(len(data), batch_size))
    order = torch.multinomial(data.weights, n, replacement=False, generator=generator)
    if hard_label is not None and hard_label in data.labels:
        lab = data.labels[hard_label][data.pairs[order, 0].numpy()]
        order = order[torch.from_numpy(np.argsort(lab, kind="stable"))]
        chunks = list(torch.split(order, batch_size))
        perm = torch.randperm(len(chunks), generator=generator)
        return [chunks[i] for i in perm if len(chunks[i]) > 1]
    return [b for b in torch.split(order, batch_size) if len(b) > 1]
