"""Grouping and classification protocols: category accuracy, Shopee mean F1, same-product pair PRF.

Each returns ``dict[str, float]`` with a ``"primary"`` entry, like every protocol in
:mod:`samestyle.eval.protocols` (which re-exports these).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from samestyle.eval import metrics as M

GroupSets = Sequence[Collection[Hashable]] | Mapping[Hashable, Collection[Hashable]]


def category_scores(
    y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Any] | None = None
) -> dict[str, float]:
    """Classification: ``acc`` (primary) and ``macro_f1`` (over ``labels``, default all seen labels)."""
    acc = M.accuracy(y_true, y_pred)
    f1 = M.macro_f1(y_true, y_pred, labels)
    return {"acc": acc, "macro_f1": f1, "n": float(len(np.asarray(y_true))), "primary": acc}


def _group_dict(groups: GroupSets) -> dict[Hashable, set[Hashable]]:
    if isinstance(groups, Mapping):
        return {key: set(v) for key, v in groups.items()}
    return {i: set(v) for i, v in enumerate(groups)}


def mean_f1_grouping(
    pred_groups: GroupSets, true_groups: GroupSets, include_self: bool = True
) -> dict[str, float]:
    """Shopee metric: mean over items of F1 between the item's predicted and true match sets.

    Per item, F1 = 2 |P & T| / (|P| + |T|). Items are those of ``true_groups``; an item missing from
    ``pred_groups`` predicts nothing. Given as lists, item i's id is i. With ``include_self`` the item
    itself is added to both sets (the Shopee truth always holds the posting itself).

    Returns: ``mean_f1`` (primary), ``mean_precision``, ``mean_recall``, ``n_items``.

    Example:
        >>> mean_f1_grouping([{1}, {0}, set()], [{0, 1}, {0, 1}, {2}])["mean_f1"]
        1.0
    """
    pred, true = _group_dict(pred_groups), _group_dict(true_groups)
    if not true:
        raise ValueError("true_groups is empty")
    f1 = np.zeros(len(true))
    prec, rec = np.zeros(len(true)), np.zeros(len(true))
    for i, (item, t) in enumerate(true.items()):
        p = pred.get(item, set())
        if include_self:
            p, t = p | {item}, t | {item}
        both = len(p & t)
        f1[i] = 2 * both / (len(p) + len(t)) if p or t else 1.0
        prec[i] = both / len(p) if p else 0.0
        rec[i] = both / len(t) if t else 0.0
    mean = float(f1.mean())
    return {
        "mean_f1": mean,
        "mean_precision": float(prec.mean()),
        "mean_recall": float(rec.mean()),
        "n_items": float(len(true)),
        "primary": mean,
    }


def pair_prf(pred: ArrayLike, truth: ArrayLike) -> dict[str, float]:
    """Precision, recall, F1 (primary) and accuracy of boolean same-product decisions on labelled pairs.

    Example:
        >>> pair_prf([True, True, False], [True, False, True])["f1"]
        0.5
    """
    p, t = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if p.shape != t.shape or p.ndim != 1 or p.size == 0:
        raise ValueError(f"pred and truth must be non-empty 1-D and equal length, got {p.shape}, {t.shape}")
    tp = float((p & t).sum())
    precision = tp / float(p.sum()) if p.any() else 0.0
    recall = tp / float(t.sum()) if t.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    acc = float((p == t).mean())
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": acc,
        "n_pairs": float(p.size),
        "primary": f1,
    }


__all__ = ["GroupSets", "category_scores", "mean_f1_grouping", "pair_prf"]
