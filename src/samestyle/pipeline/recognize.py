"""Fit the category recogniser (:mod:`samestyle.models.recognizer`) from a catalogue's artifacts.

``samestyle recognizer``: titles (and the configured attributes) from the catalogue, vectors from the
embeddings folder (a run's joint-fused vectors with ``run_dir``, else the frozen image and text features side
by side), labels from the category levels; fitted on the split's ``train`` ids, scored on ``val`` and
``test``, saved with its metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.catalog.store import Catalog, read_catalog
from samestyle.errors import ConfigError
from samestyle.eval.grouping import category_scores
from samestyle.models.recognizer import CategoryRecognizer, RecognizerConfig, level_depth, recognizer_text
from samestyle.pipeline.embeddings import EmbeddingSet

METRICS_FILE = "metrics.json"


def recognizer_inputs(emb: EmbeddingSet, catalog: Catalog, run_dir: str | Path | None) -> np.ndarray:
    """The dense vectors ``[N, D]`` aligned with ``emb.ids``: the run's joint-fused vectors (through
    its towers, as ``samestyle eval`` computes them), or frozen image (zeros where missing) + text."""
    if run_dir is not None:
        from samestyle.eval.methods import JointMethod

        return JointMethod(emb, Path(run_dir), catalog).items()["fused"]
    image = emb.vectors["image"] * emb.present["image"][:, None]
    return np.concatenate([image, emb.vectors["text"]], axis=1)


def level_labels(catalog: Catalog, ids: Sequence[str], level: str) -> np.ndarray:
    """``category<d>`` -> the d-th category of each product ("" where it has none)."""
    d = level_depth(level)
    if d is None:
        raise ConfigError(f"a category level is category1, category2, ... (not {level!r})")
    cats = (catalog.get(i).category for i in ids)
    return np.array([c[d] if len(c) > d else "" for c in cats])


def product_texts(catalog: Catalog, ids: Sequence[str], attributes: Sequence[str] = ()) -> list[str]:
    """What the recogniser's word block reads for each product: the title, then the named attributes."""
    products = (catalog.get(i) for i in ids)
    return [recognizer_text(p.title, p.attributes, attributes) for p in products]


def fit_recognizer(
    catalog_dir: str | Path,
    emb_dir: str | Path,
    out: str | Path,
    *,
    run_dir: str | Path | None = None,
    split: str = "myntra",
    levels: Sequence[str] = ("category2", "category3"),
    cfg: RecognizerConfig | None = None,
) -> dict[str, Any]:
    """Fit on ``train``, write ``out/recognizer.safetensors`` and ``out/metrics.json`` (val / test
    accuracy and macro-F1 per level); returns the metrics."""
    from samestyle.fsio import write_json
    from samestyle.train.run import load_split

    catalog = read_catalog(catalog_dir)
    emb = EmbeddingSet.load(emb_dir)
    rows = load_split(split, catalog)
    if not rows.get("train"):
        raise ConfigError(f"split {split!r} has no train ids in {catalog_dir}")
    cfg = cfg or RecognizerConfig()
    cfg = replace(cfg, inputs="" if cfg.dense_norm == 0 else "joint-fused" if run_dir else "image+text")
    dense = recognizer_inputs(emb, catalog, run_dir) if cfg.inputs else None
    pos = {pid: i for i, pid in enumerate(emb.ids)}
    idx = {k: np.array([pos[i] for i in v if i in pos], np.int64) for k, v in rows.items()}
    titles = np.array(product_texts(catalog, emb.ids, cfg.attributes))
    ids = np.asarray(emb.ids)
    labels = {level: level_labels(catalog, ids[idx["train"]].tolist(), level) for level in levels}
    rec = CategoryRecognizer.fit(
        titles[idx["train"]].tolist(), None if dense is None else dense[idx["train"]], labels, cfg
    )
    metrics: dict[str, Any] = {"config": cfg.__dict__, "run": str(run_dir) if run_dir else None}
    for part in ("val", "test"):
        r = idx.get(part, np.array([], np.int64))
        if len(r) == 0:
            continue
        for level in levels:
            pred = rec.predict(titles[r].tolist(), None if dense is None else dense[r], level)
            metrics[f"{part}/{level}"] = category_scores(level_labels(catalog, ids[r].tolist(), level), pred)
    rec.save(out)
    write_json(Path(out) / METRICS_FILE, metrics)
    return metrics


__all__ = ["fit_recognizer", "level_labels", "product_texts", "recognizer_inputs"]
