"""Duplicate-detection benchmarks: Shopee mean F1 on grocery photo groups, pair PRF on offer matching.

**Grocery** (:func:`grocery_dedupe_eval`): the items are the 296 shelf photos of the grocery ``val``
split; two photos are duplicates when they show the same fine class (the truth groups). Image only (the
photos carry no text; the class name is the label). The score is the Shopee metric, mean per-item F1 with
the item itself in both sets (:func:`samestyle.eval.grouping.mean_f1_grouping`) over the per-item match
sets of :func:`samestyle.search.dedupe.item_matches`.
Everything tunable is tuned on the **train** split only: a calibration subset of ``per_class`` photos
per class (val has ~5 per class; calibrating on all ~33 per class would pick thresholds for much larger
groups), and, for the LDA method, an LDA map fitted on the remaining train photos. Among the candidate
settings the one with the best calibration F1 is reported on val.

- ``baseline``: frozen EfficientNet-Lite0 vectors, one threshold over all pairs (no kNN cap, no keep-one,
  no blending), the threshold tuned on the calibration subset.
- ``samestyle``: frozen vectors through the full pipeline (kNN graph, keep-one, neighbourhood blending).
- ``samestyle+lda``: the same after an :class:`~samestyle.models.lda.LDAProjection` learned from the train
  groups.

**Offer matching** (:func:`matching_eval`): Ditto's labelled pairs (abt-buy, amazon-google,
walmart-amazon, wdc). Each side's text is encoded with MiniLM; a pair is predicted "same" when its cosine
is at least a threshold tuned on the ``train`` pairs for best F1; reported on ``valid``. ``baseline``
uses the raw title vectors; ``samestyle`` chooses, by train F1, between title and full text and a
neighbourhood-blending size (the pool is every distinct side text of the split).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from samestyle.eval.grouping import mean_f1_grouping, pair_prf
from samestyle.models.lda import LDAProjection
from samestyle.search.dedupe import (
    CALIBRATION_GRID,
    DedupeConfig,
    blend,
    calibrate,
    item_matches,
    true_matches,
)

log = logging.getLogger(__name__)

GRID = CALIBRATION_GRID
BLENDS = (0, 2, 3)
MATCHING_SETS = ("abt-buy", "amazon-google", "walmart-amazon", "wdc")


def calibration_split(groups: np.ndarray, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``per_class`` random members of each group (the calibration subset) and the other rows."""
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(rows, min(per_class, len(rows)), replace=False)
        for g in np.unique(groups)
        for rows in [np.flatnonzero(groups == g)]
    ]
    cal = np.sort(np.concatenate(picked))
    return cal, np.setdiff1d(np.arange(len(groups)), cal)


def _scored(cfg: DedupeConfig, x: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    return mean_f1_grouping(item_matches({"image": x}, cfg), true_matches(groups))


def _best(
    candidates: Iterable[DedupeConfig], cal_x: np.ndarray, cal_g: np.ndarray
) -> tuple[DedupeConfig, float]:
    tuned = [calibrate({"image": cal_x}, cal_g, c, GRID) for c in candidates]
    return max(tuned, key=lambda t: t[1])


def grocery_dedupe_eval(
    train_x: np.ndarray,
    train_groups: np.ndarray,
    val_x: np.ndarray,
    val_groups: np.ndarray,
    per_class: int = 5,
    lda_dims: Sequence[int] = (32, 64),
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """The three grocery rows (see the module docstring): val scores plus the chosen setting."""
    cal, rest = calibration_split(train_groups, per_class, seed)
    cal_x, cal_g = train_x[cal], train_groups[cal]
    out: dict[str, dict[str, Any]] = {}
    plain = DedupeConfig(thresholds={"image": 0.9}, k=len(val_x), min_one_margin=-1.0, blend_k=0)
    cfg, f1 = calibrate({"image": cal_x}, cal_g, replace(plain, k=len(cal_x)), GRID)
    out["baseline"] = _row(replace(cfg, k=len(val_x)), f1, val_x, val_groups)
    full = [DedupeConfig(thresholds={"image": 0.9}, k=20, min_one_margin=0.05, blend_k=b) for b in BLENDS]
    cfg, f1 = _best(full, cal_x, cal_g)
    out["samestyle"] = _row(cfg, f1, val_x, val_groups)
    best: tuple[float, dict[str, Any]] | None = None
    for dim in lda_dims:
        lda = LDAProjection(dim=dim, shrink=0.1).fit(train_x[rest], train_groups[rest])
        cfg, f1 = _best(full, lda.transform(cal_x), cal_g)
        if best is None or f1 > best[0]:
            best = (f1, _row(cfg, f1, lda.transform(val_x), val_groups) | {"lda_dim": dim})
    if best is not None:
        out["samestyle+lda"] = best[1]
    return out


def _row(cfg: DedupeConfig, cal_f1: float, x: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    scores = _scored(cfg, x, groups)
    return {
        **{k: v for k, v in scores.items() if k != "primary"},
        "calibration_f1": cal_f1,
        "threshold": float(cfg.thresholds["image"]),
        "blend_k": cfg.blend_k,
        "keep_one": cfg.min_one_margin >= 0,
    }


def best_threshold(
    scores: np.ndarray, labels: np.ndarray, grid: Sequence[float] = GRID
) -> tuple[float, float]:
    """The grid threshold with the best pair F1 on these labelled scores, and that F1."""
    f1 = [pair_prf(scores >= t, labels)["f1"] for t in grid]
    i = int(np.argmax(f1))
    return float(grid[i]), float(f1[i])


def pair_scores(vectors: np.ndarray, left: np.ndarray, right: np.ndarray, blend_k: int = 0) -> np.ndarray:
    """Cosine of each (left, right) row pair, after neighbourhood blending over all rows when ``blend_k``."""
    v = blend(vectors, blend_k) if blend_k else vectors
    return np.einsum("nd,nd->n", v[left], v[right])


def matching_eval(split_vectors: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Baseline vs samestyle on one benchmark.

    ``split_vectors[split][field]`` = ``{"vectors", "left", "right"}`` for split in train/valid and field in
    title/text, plus ``split_vectors[split]["labels"]``.
    """
    tr, va = split_vectors["train"], split_vectors["valid"]

    def run(field: str, blend_k: int) -> tuple[float, dict[str, float], float]:
        t = tr[field]
        thr, f1 = best_threshold(pair_scores(t["vectors"], t["left"], t["right"], blend_k), tr["labels"])
        v = va[field]
        scores = pair_scores(v["vectors"], v["left"], v["right"], blend_k)
        return f1, pair_prf(scores >= thr, va["labels"]), thr

    f1, res, thr = run("title", 0)
    out: dict[str, dict[str, Any]] = {"baseline": {**res, "train_f1": f1, "threshold": thr}}
    options = [(f, b) for f in ("title", "text") for b in BLENDS]
    ranked = sorted(((run(f, b), f, b) for f, b in options), key=lambda r: -r[0][0])
    (f1, res, thr), field, b = ranked[0]
    out["samestyle"] = {**res, "train_f1": f1, "threshold": thr, "field": field, "blend_k": b}
    return out


__all__ = [
    "MATCHING_SETS",
    "best_threshold",
    "calibration_split",
    "grocery_dedupe_eval",
    "matching_eval",
    "pair_scores",
]
