"""Pure, vectorised ranking and classification metrics on NumPy arrays (score matrices, label vectors).

Tie rule (pessimistic and deterministic): a ranking orders items by score, highest first; among equal
scores the less relevant item (lower gain) comes first, then the lower gallery index. A relevant item
tied with a non-relevant one therefore always ranks after it, so a constant scorer cannot look good.
``top_k_indices`` and ``top_k_dot``, which know no relevance, order equal scores by gallery index.

``exclude`` masks (e.g. the query itself in its own gallery) remove items from the ranking: an excluded
item is neither relevant nor a competitor. Every function chunks over query rows, so temporaries stay at
about ``CHUNK_BYTES`` whatever the gallery size; NaN or infinite scores raise ``ValueError``.

Example:
    >>> s = np.array([[0.9, 0.5, 0.1]])
    >>> ranks_of_relevant(s, [{1}]).tolist(), precision_at_k(s, [{1}], 2)
    ([2.0], 0.5)
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
# Relevance per query: one collection of relevant gallery indices per row, or a boolean [Q, G] matrix.
Relevant = Sequence[Collection[int]] | NDArray[Any]

CHUNK_BYTES = 32 * 2**20  # working memory per chunk of query rows (float64 [rows, G])


def iter_row_chunks(n_rows: int, n_cols: int, chunk_rows: int | None = None) -> Iterator[tuple[int, int]]:
    """Yield ``(lo, hi)`` row ranges so that a float64 ``[hi - lo, n_cols]`` block fits ``CHUNK_BYTES``.

    Example:
        >>> list(iter_row_chunks(5, 10, chunk_rows=2))
        [(0, 2), (2, 4), (4, 5)]
    """
    step = chunk_rows or max(1, CHUNK_BYTES // max(1, 8 * n_cols))
    for lo in range(0, n_rows, step):
        yield lo, min(n_rows, lo + step)


def _shape2d(scores: ArrayLike) -> NDArray[Any]:
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be a 2-D [queries, gallery] array, got shape {s.shape}")
    return s


def _score_rows(s: NDArray[Any], lo: int, hi: int) -> FloatArray:
    block = np.asarray(s[lo:hi], dtype=np.float64)
    if not np.isfinite(block).all():
        raise ValueError(f"scores rows {lo}..{hi - 1} contain NaN or inf; fix the scorer before ranking")
    return block


def _mask_rows(mask: Relevant, lo: int, hi: int, n_cols: int) -> BoolArray:
    """Rows ``lo:hi`` of a relevance given as a boolean matrix or as per-row index collections."""
    if isinstance(mask, np.ndarray):
        if mask.ndim != 2 or mask.shape[1] != n_cols:
            raise ValueError(f"relevance mask must be [queries, {n_cols}], got shape {mask.shape}")
        return np.asarray(mask[lo:hi], dtype=bool)
    out = np.zeros((hi - lo, n_cols), dtype=bool)
    for r, items in enumerate(mask[lo:hi]):
        idx = np.fromiter(items, dtype=np.int64, count=len(items))
        if idx.size and (idx.min() < 0 or idx.max() >= n_cols):
            raise ValueError(f"query {lo + r}: relevant index out of range 0..{n_cols - 1}")
        out[r, idx] = True
    return out


def _gain_rows(gains: Relevant, lo: int, hi: int, n_cols: int) -> FloatArray:
    if isinstance(gains, np.ndarray) and gains.dtype != bool:
        g = np.asarray(gains[lo:hi], dtype=np.float64)
        if g.shape[1:] != (n_cols,) or (g < 0).any() or not np.isfinite(g).all():
            raise ValueError(f"gains must be finite, >= 0 and of shape [queries, {n_cols}]")
        return g
    return _mask_rows(gains, lo, hi, n_cols).astype(np.float64)


def _check_rows(n_rows: int, other: Relevant | None, what: str) -> None:
    if n_rows == 0:
        raise ValueError("no queries to evaluate")
    if other is not None and len(other) != n_rows:
        raise ValueError(f"{what} has {len(other)} rows for {n_rows} queries")


def _order_rows(s: FloatArray, gain: FloatArray | None, k: int) -> IntArray:
    """Column indices ``[q, k]`` of each row's top k: score desc, then gain asc, then index asc."""
    n_cols = s.shape[1]
    keys = (-s,) if gain is None else (gain, -s)  # np.lexsort: last key is primary; it is stable
    if k >= n_cols:
        return np.lexsort(keys, axis=1)
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]  # [q, k] some top-k set, unordered
    kth = np.take_along_axis(s, part, 1).min(axis=1)  # [q] k-th largest score
    clean = (s >= kth[:, None]).sum(axis=1) == k  # no tie straddles the cut: the set is exact
    sub = tuple(np.take_along_axis(key, part, 1) for key in keys)
    idx = np.take_along_axis(part, np.lexsort((part, *sub), axis=1), 1)
    dirty = np.flatnonzero(~clean)
    if dirty.size:  # ties across the cut: sort those rows fully
        idx[dirty] = np.lexsort(tuple(key[dirty] for key in keys), axis=1)[:, :k]
    return idx


def _ranked_chunks(
    scores: ArrayLike, gains: Relevant, k: int, exclude: Relevant | None, chunk_rows: int | None
) -> Iterator[tuple[FloatArray, FloatArray]]:
    """Per chunk: the gains of the top k in tie-rule order ``[q, k]`` and the chunk's gains ``[q, G]``."""
    s_all = _shape2d(scores)
    n_rows, n_cols = s_all.shape
    _check_rows(n_rows, gains, "gains/relevant")
    _check_rows(n_rows, exclude, "exclude")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    for lo, hi in iter_row_chunks(n_rows, n_cols, chunk_rows):
        s, g = _score_rows(s_all, lo, hi), _gain_rows(gains, lo, hi, n_cols)
        if exclude is not None:
            ex = _mask_rows(exclude, lo, hi, n_cols)
            s, g = np.where(ex, -np.inf, s), np.where(ex, 0.0, g)  # excluded items sink, never count
        yield np.take_along_axis(g, _order_rows(s, g, k), 1), g


def ranked_gains(
    scores: ArrayLike, gains: Relevant, k: int, exclude: Relevant | None = None, chunk_rows: int | None = None
) -> FloatArray:
    """Gains of each query's top ``min(k, G)`` items in ranked order (tie rule above), ``[Q, min(k, G)]``.

    Args:
        scores: ``[Q, G]`` similarities, higher is better.
        gains: ``[Q, G]`` non-negative gains, or relevance (boolean matrix or index sets, gain 1).
        k: depth of the ranking.
        exclude: items to drop from each query's ranking.
        chunk_rows: query rows per chunk (default from ``CHUNK_BYTES``).
    """
    return np.concatenate([rg for rg, _ in _ranked_chunks(scores, gains, k, exclude, chunk_rows)])


def ranks_of_relevant(
    scores: ArrayLike, relevant: Relevant, exclude: Relevant | None = None, chunk_rows: int | None = None
) -> FloatArray:
    """1-based rank of each query's first relevant item; ``inf`` where a query has none.

    Pessimistic: rank = 1 + number of non-relevant, non-excluded items scoring >= the best relevant one.

    Args:
        scores: ``[Q, G]`` similarities. relevant: boolean ``[Q, G]`` or one index set per query.
        exclude: items removed from the ranking. chunk_rows: query rows per chunk.

    Example:
        >>> ranks_of_relevant(np.array([[1.0, 1.0, 0.0]]), [{1}]).tolist()
        [2.0]
    """
    s_all = _shape2d(scores)
    n_rows, n_cols = s_all.shape
    _check_rows(n_rows, relevant, "relevant")
    _check_rows(n_rows, exclude, "exclude")
    out = np.full(n_rows, np.inf)
    for lo, hi in iter_row_chunks(n_rows, n_cols, chunk_rows):
        s, rel = _score_rows(s_all, lo, hi), _mask_rows(relevant, lo, hi, n_cols)
        comp = ~rel
        if exclude is not None:
            ex = _mask_rows(exclude, lo, hi, n_cols)
            rel, comp = rel & ~ex, comp & ~ex
        has = rel.any(axis=1)
        best = np.where(rel, s, -np.inf).max(axis=1, initial=-np.inf)  # [q]
        before = (comp & (s >= best[:, None])).sum(axis=1)
        out[lo:hi] = np.where(has, 1.0 + before, np.inf)
    return out


def _ranks(ranks: ArrayLike) -> FloatArray:
    r = np.asarray(ranks, dtype=np.float64)
    if r.ndim != 1 or r.size == 0 or (r < 1).any():
        raise ValueError("ranks must be a non-empty 1-D array of 1-based ranks (inf = no relevant item)")
    return r


def recall_at_k(ranks: ArrayLike, k: int) -> float:
    """Hit rate: fraction of queries with a relevant item in the top ``k`` (``rank <= k``).

    Example:
        >>> recall_at_k([1, 3, np.inf], 3)
        0.6666666666666666
    """
    return float(np.mean(_ranks(ranks) <= k))


def mrr(ranks: ArrayLike, cutoff: int | None = None) -> float:
    """Mean reciprocal rank of the first relevant item; ranks beyond ``cutoff`` (if given) count 0.

    Example:
        >>> mrr([1, 4, np.inf])
        0.4166666666666667
    """
    r = _ranks(ranks)
    rr = 1.0 / r
    return float(np.mean(rr if cutoff is None else np.where(r <= cutoff, rr, 0.0)))


def precision_at_k(
    scores: ArrayLike,
    relevant: Relevant,
    k: int,
    exclude: Relevant | None = None,
    chunk_rows: int | None = None,
) -> float:
    """Mean over queries of (relevant items among the top ``k``) / ``k``; excluded items are skipped.

    The denominator is always ``k`` (trec_eval's P@k), even when fewer than ``k`` items remain.
    """
    hits = sum(float(rg.sum()) for rg, _ in _ranked_chunks(scores, relevant, k, exclude, chunk_rows))
    return hits / (k * len(_shape2d(scores)))


def ndcg_at_k(
    scores: ArrayLike,
    gains: ArrayLike,
    k: int,
    exclude: Relevant | None = None,
    chunk_rows: int | None = None,
) -> float:
    """Mean nDCG@k with linear gains: DCG = sum_i gain_i / log2(i + 1); queries with no gain score 0.

    Linear gains and the log2 discount are trec_eval's ``ndcg_cut`` (used by BEIR); the ideal DCG
    sorts the non-excluded gains of the query.
    """
    total = 0.0
    for rg, g in _ranked_chunks(scores, np.asarray(gains, dtype=np.float64), k, exclude, chunk_rows):
        disc = 1.0 / np.log2(np.arange(2, rg.shape[1] + 2))  # [k']
        ideal = -np.sort(-g, axis=1)[:, : rg.shape[1]]
        idcg = ideal @ disc
        total += float(np.where(idcg > 0, (rg @ disc) / np.where(idcg > 0, idcg, 1.0), 0.0).sum())
    return total / len(_shape2d(scores))


def average_precision(
    scores: ArrayLike,
    relevant: Relevant,
    k: int | None = None,
    exclude: Relevant | None = None,
    chunk_rows: int | None = None,
) -> float:
    """Mean average precision: per query, the sum of P@rank at each relevant rank <= ``k``, over R.

    R is the query's total number of (non-excluded) relevant items, as in trec_eval's ``map_cut``;
    ``k=None`` ranks the whole gallery. Queries with no relevant item score 0.
    """
    depth = k if k is not None else _shape2d(scores).shape[1]
    total = 0.0
    for rg, g in _ranked_chunks(scores, relevant, max(depth, 1), exclude, chunk_rows):
        prec = np.cumsum(rg, axis=1) / np.arange(1, rg.shape[1] + 1)  # [q, k'] P@i
        n_rel = g.sum(axis=1)
        total += float(np.where(n_rel > 0, (prec * rg).sum(axis=1) / np.maximum(n_rel, 1), 0.0).sum())
    return total / len(_shape2d(scores))


def top_k_indices(scores: ArrayLike, k: int, chunk_rows: int | None = None) -> IntArray:
    """Indices ``[Q, min(k, G)]`` of each row's ``k`` highest scores, best first; ties by lower index.

    Chunks over query rows with ``argpartition``, so the working memory is about ``CHUNK_BYTES``.
    """
    s_all = _shape2d(scores)
    n_rows, n_cols = s_all.shape
    out = np.empty((n_rows, min(k, n_cols)), dtype=np.int64)
    for lo, hi in iter_row_chunks(n_rows, n_cols, chunk_rows):
        out[lo:hi] = _order_rows(_score_rows(s_all, lo, hi), None, k)
    return out


def top_k_dot(
    queries: ArrayLike, gallery: ArrayLike, k: int, chunk_rows: int | None = None
) -> tuple[IntArray, FloatArray]:
    """Top ``k`` gallery rows by dot product per query, never building the ``[Q, G]`` matrix.

    Args:
        queries: ``[Q, D]``. gallery: ``[G, D]``. k: results per query. chunk_rows: queries per block.

    Returns:
        ``(indices [Q, min(k, G)], scores [Q, min(k, G)])``, best first, ties by lower gallery index.
    """
    q, g = np.asarray(queries), np.asarray(gallery)
    idx = np.empty((len(q), min(k, len(g))), dtype=np.int64)
    val = np.empty(idx.shape, dtype=np.float64)
    for lo, hi in iter_row_chunks(len(q), len(g), chunk_rows):
        s = _score_rows(q[lo:hi] @ g.T, 0, hi - lo)
        idx[lo:hi] = _order_rows(s, None, k)
        val[lo:hi] = np.take_along_axis(s, idx[lo:hi], 1)
    return idx, val


def _labels(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape or t.ndim != 1 or t.size == 0:
        raise ValueError(
            f"y_true and y_pred must be non-empty 1-D and equal length, got {t.shape}, {p.shape}"
        )
    return t, p


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of exact label matches."""
    t, p = _labels(y_true, y_pred)
    return float(np.mean(t == p))


def per_class_f1(
    y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Any] | None = None
) -> dict[str, NDArray[Any]]:
    """Per-class F1 = 2 TP / (2 TP + FP + FN) (0/0 scores 0), with each class's true and predicted counts.

    Classes are ``labels`` when given (others are ignored as classes but still wrong), else the union
    of true and predicted labels (scikit-learn's default), sorted.

    Returns: ``classes``, ``f1``, ``support`` (true count), ``predicted`` (predicted count), aligned.
    """
    t, p = _labels(y_true, y_pred)
    classes = np.unique(np.asarray(labels) if labels is not None else np.concatenate([t, p]))

    def codes(y: NDArray[Any]) -> IntArray:
        pos = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
        return np.where(classes[pos] == y, pos, -1).astype(np.int64)

    ct, cp = codes(t), codes(p)
    n = len(classes)
    tp = np.bincount(ct[(ct == cp) & (ct >= 0)], minlength=n)
    support, predicted = np.bincount(ct[ct >= 0], minlength=n), np.bincount(cp[cp >= 0], minlength=n)
    denom = support + predicted
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return {"classes": classes, "f1": f1, "support": support, "predicted": predicted}


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Any] | None = None) -> float:
    """Unweighted mean over classes of F1 (``per_class_f1``); a class with 0/0 scores 0.

    Classes are ``labels`` when given (others are ignored as classes but still wrong), else the union
    of true and predicted labels (scikit-learn's default): a wrong prediction into a class absent from
    ``y_true`` adds a class scoring 0.
    """
    return float(np.mean(per_class_f1(y_true, y_pred, labels)["f1"]))


def sum_r(i2t: Mapping[int, float], t2i: Mapping[int, float], ks: Sequence[int] = (1, 5, 10)) -> float:
    """Sum of R@k over ``ks`` in both directions (Kaleido-BERT's SumR), with recalls as fractions.

    Kaleido-BERT's table uses percentages: multiply by 100 to compare (its maximum is 600).
    """
    return float(sum(i2t[k] + t2i[k] for k in ks))
