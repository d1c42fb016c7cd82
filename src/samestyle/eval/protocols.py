"""Evaluation protocols on given embeddings (NumPy, L2-normalised); each returns ``dict[str, float]``.

Every result has a ``"primary"`` entry holding the value of the protocol's main metric; which metric
that is stands in ``PRIMARY_METRIC`` (protocol name -> metric key) and in each docstring. Counts
(``n_queries`` ...) are stored as floats so the dict stays ``dict[str, float]``.

The KAGL protocols (and their harness notes) are in :mod:`samestyle.eval.kagl`, the grouping and
classification ones in :mod:`samestyle.eval.grouping`; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from samestyle.eval import metrics as M
from samestyle.eval.arrays import as_matrix, check_len
from samestyle.eval.grouping import GroupSets as GroupSets
from samestyle.eval.grouping import category_scores as category_scores
from samestyle.eval.grouping import mean_f1_grouping as mean_f1_grouping
from samestyle.eval.grouping import pair_prf as pair_prf
from samestyle.eval.kagl import kagl_attribute_to_product as kagl_attribute_to_product
from samestyle.eval.kagl import kagl_text_to_image as kagl_text_to_image
from samestyle.eval.kagl import weighted_doc_vectors as weighted_doc_vectors

Direction = Literal["i2t", "t2i"]
# score_fn(query_idx [B], candidate_idx [B, C], direction) -> scores [B, C]; "i2t": the queries' images
# against the candidates' texts, "t2i": the queries' texts against the candidates' images.
ScoreFn = Callable[[NDArray[np.int64], NDArray[np.int64], Direction], NDArray[Any]]

PRIMARY_METRIC: Mapping[str, str] = MappingProxyType(
    {
        "same_label_precision": "p@k",
        "kagl_text_to_image": "avg_recall",
        "kagl_attribute_to_product": "avg_p",
        "sample100": "sum_r",
        "group_retrieval": "mrr",
        "category_scores": "acc",
        "mean_f1_grouping": "mean_f1",
        "pair_prf": "f1",
    }
)
_SCORE_BATCH = 256  # query rows per score_fn call in sample100


def same_label_precision(
    vectors: ArrayLike,
    labels: ArrayLike,
    n_queries: int = 1000,
    k: int = 10,
    seed: int = 0,
    query_pool: ArrayLike | None = None,
) -> dict[str, float]:
    """Precision@k of same-label neighbours for random query products, each excluded from its gallery.

    Args:
        vectors: ``[N, D]`` one modality (image->image or text->text). labels: ``[N]`` e.g. articleType.
        n_queries: queries drawn without replacement (all when N is smaller). k: depth. seed: RNG seed.
        query_pool: row indices queries are drawn from (e.g. the held-out products); default all rows.
            The gallery is always every row but the query.

    Returns: ``p@{k}`` (primary), ``mrr``, ``r@1`` (hit rate), ``n_queries``.

    Example:
        >>> same_label_precision(np.eye(4), ["a", "a", "b", "b"], k=1)["p@1"]
        0.0
    """
    x, lab = as_matrix(vectors, "vectors"), np.asarray(labels)
    check_len(len(x), lab, "labels")
    pool = np.arange(len(x)) if query_pool is None else np.asarray(query_pool, dtype=np.int64)
    q = np.random.default_rng(seed).choice(pool, size=min(n_queries, len(pool)), replace=False)
    p_sum, ranks = 0.0, []
    for lo, hi in M.iter_row_chunks(len(q), len(x)):
        qi = q[lo:hi]
        s = x[qi] @ x.T  # [q, N]
        rel = lab[qi][:, None] == lab[None, :]
        ex = np.zeros_like(rel)
        ex[np.arange(hi - lo), qi] = True
        p_sum += M.precision_at_k(s, rel, k, exclude=ex) * (hi - lo)
        ranks.append(M.ranks_of_relevant(s, rel, exclude=ex))
    r = np.concatenate(ranks)
    p = p_sum / len(q)
    return {
        f"p@{k}": p,
        "mrr": M.mrr(r),
        "r@1": M.recall_at_k(r, 1),
        "n_queries": float(len(q)),
        "primary": p,
    }


def _dot_scorer(image: NDArray[Any], text: NDArray[Any]) -> ScoreFn:
    def score(query_idx: NDArray[np.int64], cand: NDArray[np.int64], direction: Direction) -> NDArray[Any]:
        q, c = (image, text) if direction == "i2t" else (text, image)
        return np.einsum("bd,bcd->bc", q[query_idx], c[cand])  # [B, C]

    return score


def _score_candidates(
    scorer: ScoreFn, queries: NDArray[np.int64], cand: NDArray[np.int64], direction: Direction
) -> NDArray[np.float64]:
    parts = []
    for lo in range(0, len(queries), _SCORE_BATCH):
        batch = cand[lo : lo + _SCORE_BATCH]
        s = np.asarray(scorer(queries[lo : lo + _SCORE_BATCH], batch, direction), dtype=np.float64)
        if s.shape != batch.shape:
            raise ValueError(f"score_fn returned shape {s.shape} for candidates of shape {batch.shape}")
        parts.append(s)
    return np.concatenate(parts)


def _candidates(
    queries: NDArray[np.int64], groups: NDArray[Any], n_neg: int, rng: np.random.Generator
) -> tuple[NDArray[np.int64], int]:
    """``[Q, 1 + n_neg]`` candidates, column 0 the query's own counterpart; and how many were filled."""
    members = {g: np.flatnonzero(groups == g) for g in np.unique(groups[queries])}
    outside: dict[Any, NDArray[np.int64]] = {}
    out = np.empty((len(queries), 1 + n_neg), dtype=np.int64)
    n_filled = 0
    for row, qi in enumerate(queries):
        same = members[groups[qi]]
        pick = same[rng.choice(len(same), size=min(n_neg + 1, len(same)), replace=False)]
        pick = pick[pick != qi][:n_neg]
        if len(pick) < n_neg:  # small sub-category: top up with random products of other groups
            n_filled += 1
            if groups[qi] not in outside:
                outside[groups[qi]] = np.flatnonzero(groups != groups[qi])
            other = outside[groups[qi]]
            pick = np.concatenate([pick, rng.choice(other, size=n_neg - len(pick), replace=False)])
        out[row, 0], out[row, 1:] = qi, pick
    return out, n_filled


def sample100(
    image_vecs: ArrayLike,
    text_vecs: ArrayLike,
    groups: ArrayLike,
    n_queries: int = 1000,
    n_negatives: int = 100,
    draws: int = 5,
    seed: int = 0,
    score_fn: ScoreFn | None = None,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """FashionGen/Kaleido-BERT sample-100 retrieval: rank the true pair among 1 + 100 candidates.

    Each draw picks ``n_queries`` products; each query's candidates are its own counterpart plus
    ``n_negatives`` products drawn from its group (sub-category). A group with too few other products
    gives all of them and is topped up with random products of other groups (counted in ``n_filled``).
    With fewer than ``n_negatives + 1`` products in all, every other product is a candidate. Ranks are
    pessimistic (a negative tied with the positive counts against).

    Args:
        image_vecs, text_vecs: ``[N, D]`` row i is product i. groups: ``[N]`` sub-category.
        n_queries, n_negatives, draws, seed: sampling; metrics are averaged over draws.
        score_fn: ``(query_idx [B], candidate_idx [B, C], direction) -> [B, C]`` e.g. a cross-encoder;
            default: dot products of the given vectors.
        ks: cut-offs for R@k (hit rate) and SumR.

    Returns: ``i2t_r@k``, ``t2i_r@k``, ``sum_r`` (primary, fractions: max 6), ``n_queries`` (per draw),
    ``n_candidates``, ``n_filled`` (mean per draw), ``draws``.
    """
    img, txt, grp = as_matrix(image_vecs, "image_vecs"), as_matrix(text_vecs, "text_vecs"), np.asarray(groups)
    if img.shape[0] != txt.shape[0]:
        raise ValueError(f"image_vecs has {len(img)} rows, text_vecs {len(txt)}")
    check_len(len(img), grp, "groups")
    n_neg = min(n_negatives, len(img) - 1)
    if n_neg < 1 or draws < 1:
        raise ValueError("sample100 needs at least 2 products and 1 draw")
    scorer = score_fn or _dot_scorer(img, txt)
    rng = np.random.default_rng(seed)
    ranks: dict[Direction, list[NDArray[np.float64]]] = {"i2t": [], "t2i": []}
    filled = 0
    for _ in range(draws):
        queries = rng.choice(len(img), size=min(n_queries, len(img)), replace=False)
        cand, n_filled = _candidates(queries, grp, n_neg, rng)
        filled += n_filled
        positive = np.zeros(cand.shape, dtype=bool)
        positive[:, 0] = True
        for direction in ranks:
            scores = _score_candidates(scorer, queries, cand, direction)
            ranks[direction].append(M.ranks_of_relevant(scores, positive))
    r_i2t, r_t2i = np.concatenate(ranks["i2t"]), np.concatenate(ranks["t2i"])
    i2t = {k: M.recall_at_k(r_i2t, k) for k in ks}
    t2i = {k: M.recall_at_k(r_t2i, k) for k in ks}
    out = {f"i2t_r@{k}": v for k, v in i2t.items()} | {f"t2i_r@{k}": v for k, v in t2i.items()}
    out["sum_r"] = M.sum_r(i2t, t2i, ks)
    out.update(
        n_queries=float(len(r_i2t) // draws),
        n_candidates=float(n_neg + 1),
        n_filled=filled / draws,
        draws=float(draws),
        primary=out["sum_r"],
    )
    return out


def group_retrieval(
    query_vecs: ArrayLike,
    query_groups: ArrayLike,
    gallery_vecs: ArrayLike,
    gallery_groups: ArrayLike,
    ks: Sequence[int] = (1, 5, 10, 20),
    exclude_self: bool = False,
) -> dict[str, float]:
    """Full-gallery retrieval where relevant = same group (e.g. grocery photo -> catalogue products).

    Args:
        query_vecs: ``[Q, D]``; query_groups: ``[Q]``. gallery_vecs: ``[G, D]``; gallery_groups: ``[G]``.
        ks: cut-offs for R@k (hit rate).
        exclude_self: query i is gallery item i (same set, Q == G): drop it from its own ranking.

    Returns: ``mrr`` (primary), ``r@k``, ``n_queries``, ``n_skipped`` (queries with no relevant gallery
    item, left out of the means).
    """
    qv, gv = as_matrix(query_vecs, "query_vecs"), as_matrix(gallery_vecs, "gallery_vecs")
    qg, gg = np.asarray(query_groups), np.asarray(gallery_groups)
    check_len(len(qv), qg, "query_groups")
    check_len(len(gv), gg, "gallery_groups")
    if exclude_self and len(qv) != len(gv):
        raise ValueError("exclude_self needs the query set to be the gallery (same length)")
    parts = []
    for lo, hi in M.iter_row_chunks(len(qv), len(gv)):
        rel = qg[lo:hi, None] == gg[None, :]  # [q, G]
        ex = None
        if exclude_self:
            ex = np.zeros_like(rel)
            ex[np.arange(hi - lo), np.arange(lo, hi)] = True
        parts.append(M.ranks_of_relevant(qv[lo:hi] @ gv.T, rel, exclude=ex))
    ranks = np.concatenate(parts)
    ok = np.isfinite(ranks)
    if not ok.any():
        raise ValueError("no query has a relevant gallery item (check the group labels)")
    out = {"mrr": M.mrr(ranks[ok])} | {f"r@{k}": M.recall_at_k(ranks[ok], k) for k in ks}
    out.update(n_queries=float(ok.sum()), n_skipped=float((~ok).sum()), primary=out["mrr"])
    return out
