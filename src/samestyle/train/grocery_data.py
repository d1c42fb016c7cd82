"""Grocery training data on frozen features: photo -> product pairs, the carved split, Myntra rows.

The data side of :mod:`samestyle.train.grocery` (see its docstring for the design). Rows are
:class:`~samestyle.train.data.TrainData`, as ``samestyle train`` uses them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samestyle.errors import ConfigError, SamestyleError
from samestyle.eval.grocery import GroceryFeatures
from samestyle.train.data import TrainData
from samestyle.train.run import RunConfig


def carve_split(groups: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """``(train rows, val rows)`` of photos in file order: per class, the last ``ceil(fraction * n)``
    photos (at least 1, at most ``n - 1``) go to val. Both are sorted and disjoint, and together they
    cover every row."""
    groups = np.asarray(groups)
    val: list[int] = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        n_val = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, math.ceil(fraction * len(idx))))
        val.extend(idx[len(idx) - n_val :].tolist())
    is_val = np.zeros(len(groups), dtype=bool)
    is_val[val] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def product_rows(gallery_groups: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Row of each photo's product in the gallery; a class without a product is an error."""
    pos = {int(g): i for i, g in enumerate(gallery_groups)}
    missing = sorted({int(g) for g in groups} - set(pos))
    if missing:
        raise SamestyleError(f"photos of classes {missing[:5]} have no catalogue product")
    return np.array([pos[int(g)] for g in groups], dtype=np.int64)


def grocery_train_data(
    product_img: np.ndarray,
    product_txt: np.ndarray,
    product_groups: np.ndarray,
    photo_img: np.ndarray,
    photo_txt: np.ndarray,
    photo_groups: np.ndarray,
    self_pairs: bool = True,
) -> TrainData:
    """Rows: the products ``[0, G)`` and then the photos ``[G, G + T)``. Pairs: (photo, its product), plus
    (product, product) when ``self_pairs``. Groups: the fine class. All images are present."""
    n_prod, n_photo = len(product_img), len(photo_img)
    prod = product_rows(product_groups, photo_groups)  # [T]
    pairs = np.stack([np.arange(n_photo) + n_prod, prod], axis=1)  # [T, 2]
    if self_pairs:
        pairs = np.concatenate([np.repeat(np.arange(n_prod)[:, None], 2, axis=1), pairs])
    return TrainData(
        ids=[f"product-{int(g)}" for g in product_groups] + [f"photo-{i}" for i in range(n_photo)],
        image=torch.from_numpy(np.concatenate([product_img, photo_img]).astype(np.float32)),
        text=torch.from_numpy(np.concatenate([product_txt, photo_txt]).astype(np.float32)),
        image_present=torch.ones(n_prod + n_photo, dtype=torch.bool),
        groups=torch.from_numpy(np.concatenate([product_groups, photo_groups]).astype(np.int64)),
        pairs=torch.from_numpy(pairs.astype(np.int64)),
        weights=torch.ones(len(pairs), dtype=torch.float32),
        labels={},
    )


def concat_train_data(a: TrainData, b: TrainData) -> TrainData:
    """``a`` then ``b`` (b's pair rows shifted, its groups moved past a's); labels are dropped."""
    shift = int(a.groups.max()) + 1 if len(a) else 0
    return TrainData(
        ids=a.ids + b.ids,
        image=torch.cat([a.image.float(), b.image.float()]),
        text=torch.cat([a.text, b.text]),
        image_present=torch.cat([a.image_present, b.image_present]),
        groups=torch.cat([a.groups, b.groups + shift]),
        pairs=torch.cat([a.pairs, b.pairs + len(a)]),
        weights=torch.cat([a.weights, b.weights]),
        labels={},
    )


def photo_texts(f: GroceryFeatures, groups: np.ndarray, mode: str) -> np.ndarray:
    """The text slot of each photo: its class name's vector (``"name"``) or zeros (``"none"``)."""
    if mode == "none":
        return np.zeros((len(groups), f.gal_txt.shape[1]), dtype=np.float32)
    if f.name_txt is None:
        raise SamestyleError("these grocery features have no class-name vectors (name_txt)")
    return np.asarray(f.name_txt)[product_rows(f.gallery_groups, groups)]


def split_record(paths: list[Path] | None, tr: np.ndarray, va: np.ndarray) -> dict[str, Any]:
    """The carved split as photo paths relative to their common folder (row numbers without paths)."""
    if not paths:
        return {"train_rows": tr.tolist(), "val_rows": va.tolist()}
    root = Path(os.path.commonpath([str(p) for p in paths]))
    names = [p.relative_to(root).as_posix() for p in paths]
    return {"root": str(root), "train": [names[i] for i in tr], "val": [names[i] for i in va]}


def myntra_data(run_cfg: RunConfig, with_train: bool) -> tuple[TrainData | None, TrainData]:
    """Myntra train (optional) and val data of a ``samestyle train`` config (pooled tower only)."""
    from samestyle.catalog.store import read_catalog
    from samestyle.pipeline.embeddings import EmbeddingSet
    from samestyle.train.data import build_train_data
    from samestyle.train.run import load_split, read_pairs

    if run_cfg.tower.kind != "pooled":
        raise ConfigError(f"grocery training supports pooled-tower runs only, not {run_cfg.tower.kind!r}")
    catalog = read_catalog(run_cfg.data.catalog)
    emb = EmbeddingSet.load(run_cfg.data.embeddings)
    split = load_split(run_cfg.data.split, catalog)
    train = None
    if with_train:
        train = build_train_data(catalog, emb, split["train"], read_pairs(run_cfg.data.pairs))
    return train, build_train_data(catalog, emb, split["val"])


__all__ = [
    "carve_split",
    "concat_train_data",
    "grocery_train_data",
    "myntra_data",
    "photo_texts",
    "product_rows",
    "split_record",
]
