"""Evaluation protocols on given embeddings (NumPy, L2-normalised); each returns ``dict[str, float]``.

Every result has a ``"primary"`` entry holding the value of the protocol's main metric; which metric
that is stands in ``PRIMARY_METRIC`` (protocol name -> metric key) and in each docstring. Counts
(``n_queries`` ...) are stored as floats so the dict stays ``dict[str, float]``.

KAGL protocols follow the Marqo-FashionCLIP harness (github.com/marqo-ai/marqo-FashionCLIP, read at
commit fcd6464): ``eval.py`` retrieves only the top ``max(Ks)`` documents (Ks default ``[1, 10]``),
scores them with ``utils/metrics.py``: BEIR's ``EvaluateRetrieval.evaluate`` (pytrec_eval) for P@k and
Recall@k, plus its own MRR over that top-10 list divided by the number of queries. So "Recall@k" is
trec_eval recall, (relevant docs in the top k) / (relevant docs in the qrels), not a hit rate; P@k is
(relevant in top k) / k; MRR is MRR@10; relevant means grade > 0. ``summarize_results.py`` reports
AvgRecall = mean(Recall@1, Recall@10) for text-to-image and AvgP = mean(P@1, P@10) for
category-to-product, our primaries. ``configs/KAGL.json`` uses doc weights image 0.9, text 0.1, and
``eval.py`` L2-normalises the weighted sum of the (already normalised) field embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping, Sequence, Sized
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from samestyle.eval import metrics as M

Direction = Literal["i2t", "t2i"]
# score_fn(query_idx [B], candidate_idx [B, C], direction) -> scores [B, C]; "i2t": the queries' images
# against the candidates' texts, "t2i": the queries' texts against the candidates' images.
ScoreFn = Callable[[NDArray[np.int64], NDArray[np.int64], Direction], NDArray[Any]]
GroupSets = Sequence[Collection[Hashable]] | Mapping[Hashable, Collection[Hashable]]

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


def _matrix(x: ArrayLike, name: str) -> NDArray[np.floating[Any]]:
    a = np.asarray(x)  # float32 stays float32: no full-size copy of a large gallery
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [N, D] array, got shape {a.shape}")
    return a


def _same_len(n: int, other: Sized, name: str) -> None:
    if len(other) != n:
        raise ValueError(f"{name} has {len(other)} entries, expected {n}")


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
    x, lab = _matrix(vectors, "vectors"), np.asarray(labels)
    _same_len(len(x), lab, "labels")
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


def weighted_doc_vectors(
    image: ArrayLike, text: ArrayLike, weights: tuple[float, float] = (0.9, 0.1)
) -> NDArray[np.float64]:
    """``normalize(w_img * image + w_txt * text)``: the Marqo harness's multi-field documents.

    The inputs are used as given (the harness encodes each field with ``normalize=True``); only the
    weighted sum is L2-normalised, with a 1e-12 floor on the norm as ``torch.nn.functional.normalize``.
    """
    a, b = _matrix(image, "image"), _matrix(text, "text")
    if a.shape != b.shape:
        raise ValueError(f"image {a.shape} and text {b.shape} vectors must have the same shape")
    v = weights[0] * a + weights[1] * b
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _qrels_hits(
    query_vecs: ArrayLike,
    doc_vecs: ArrayLike,
    doc_ids: Sequence[Hashable],
    qrels: Mapping[Any, Mapping[Any, float]],
    query_keys: Sequence[Hashable] | None,
    depth: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Binary relevance of each qrels query's top ``depth`` docs ``[Q, depth]``, R per query, missing docs."""
    qv, dv = _matrix(query_vecs, "query_vecs"), _matrix(doc_vecs, "doc_vecs")
    _same_len(len(dv), doc_ids, "doc_ids")
    pos = {str(d): i for i, d in enumerate(doc_ids)}  # the harness compares ids as strings
    if len(pos) != len(dv):
        raise ValueError("doc_ids contain duplicates")
    keys = list(qrels)
    if query_keys is not None:
        row_of = {key: i for i, key in enumerate(query_keys)}
        if missing := [key for key in keys if key not in row_of]:
            raise ValueError(f"qrels queries not in query_keys: {missing[:5]}")
        rows = [row_of[key] for key in keys]
    elif all(isinstance(key, int | np.integer) for key in keys):
        rows = [int(key) for key in keys]  # integer keys are rows of query_vecs
    elif len(keys) == len(qv):
        rows = list(range(len(keys)))  # row i is the i-th qrels key, as the harness orders queries
    else:
        raise ValueError(f"{len(keys)} qrels queries for {len(qv)} query vectors: pass query_keys")
    rel_idx: list[list[int]] = []
    n_rel, n_missing = np.zeros(len(keys)), 0
    for i, key in enumerate(keys):
        judged = [str(d) for d, grade in qrels[key].items() if grade > 0]
        rel_idx.append([pos[d] for d in judged if d in pos])
        n_rel[i], n_missing = len(judged), n_missing + len(judged) - len(rel_idx[-1])
    hits = np.zeros((len(keys), depth))
    for lo, hi in M.iter_row_chunks(len(keys), len(dv)):
        s = qv[rows[lo:hi]] @ dv.T  # [q, G]
        rg = M.ranked_gains(s, rel_idx[lo:hi], depth)
        hits[lo:hi, : rg.shape[1]] = rg
    return hits, n_rel, n_missing


def _first_hit_rr(hits: NDArray[np.float64]) -> float:
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1.0, np.inf)
    return float(np.mean(1.0 / first))


def kagl_text_to_image(
    query_vecs: ArrayLike,
    gallery_vecs: ArrayLike,
    gallery_ids: Sequence[Hashable],
    qrels: Mapping[Any, Mapping[Any, float]],
    query_keys: Sequence[Hashable] | None = None,
    ks: Sequence[int] = (1, 10),
) -> dict[str, float]:
    """KAGL text->image over the full gallery, as the Marqo-FashionCLIP harness scores it (module doc).

    Args:
        query_vecs: ``[Q, D]`` text vectors. gallery_vecs: ``[G, D]`` image vectors; gallery_ids: ``[G]``.
        qrels: ``{query: {doc_id: grade}}``; keys are rows of ``query_vecs`` when ints, else named by
            ``query_keys`` (row i = ``query_keys[i]``) or, without it, in qrels order (the harness's).
        ks: cut-offs; MRR is cut at ``max(ks)`` like the harness.

    Returns: ``recall@k`` (trec recall), ``hit@k``, ``mrr``, ``avg_recall`` (primary), ``n_queries``,
    ``n_missing_relevant`` (judged docs absent from the gallery; they still count in recall's R).
    """
    depth = max(ks)
    hits, n_rel, n_missing = _qrels_hits(query_vecs, gallery_vecs, gallery_ids, qrels, query_keys, depth)
    out: dict[str, float] = {}
    for k in ks:
        got = hits[:, :k].sum(axis=1)
        out[f"recall@{k}"] = float(np.mean(np.where(n_rel > 0, got / np.maximum(n_rel, 1), 0.0)))
        out[f"hit@{k}"] = float(np.mean(got > 0))
    out["mrr"] = _first_hit_rr(hits)
    out["avg_recall"] = float(np.mean([out[f"recall@{k}"] for k in ks]))
    out.update(n_queries=float(len(hits)), n_missing_relevant=float(n_missing), primary=out["avg_recall"])
    return out


def kagl_attribute_to_product(
    query_vecs: ArrayLike,
    doc_vecs: ArrayLike,
    doc_ids: Sequence[Hashable],
    qrels: Mapping[Any, Mapping[Any, float]],
    query_keys: Sequence[Hashable] | None = None,
    ks: Sequence[int] = (1, 10),
) -> dict[str, float]:
    """KAGL attribute-value->product (category, colour, season, usage), Marqo harness definitions.

    Args:
        query_vecs: ``[V, D]`` one text vector per attribute value. doc_vecs: ``[G, D]``, e.g.
            ``weighted_doc_vectors(image, text, (0.9, 0.1))``. doc_ids: ``[G]``.
        qrels: ``{value: {doc_id: grade}}``; query_keys / ks as in ``kagl_text_to_image``.

    Returns: ``p@k`` (relevant in top k / k), ``mrr`` (cut at ``max(ks)``), ``avg_p`` (primary),
    ``n_queries``.
    """
    hits, _, _ = _qrels_hits(query_vecs, doc_vecs, doc_ids, qrels, query_keys, max(ks))
    out = {f"p@{k}": float(np.mean(hits[:, :k].sum(axis=1) / k)) for k in ks}
    out["mrr"] = _first_hit_rr(hits)
    out["avg_p"] = float(np.mean([out[f"p@{k}"] for k in ks]))
    out.update(n_queries=float(len(hits)), primary=out["avg_p"])
    return out


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
    img, txt, grp = _matrix(image_vecs, "image_vecs"), _matrix(text_vecs, "text_vecs"), np.asarray(groups)
    if img.shape[0] != txt.shape[0]:
        raise ValueError(f"image_vecs has {len(img)} rows, text_vecs {len(txt)}")
    _same_len(len(img), grp, "groups")
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
    qv, gv = _matrix(query_vecs, "query_vecs"), _matrix(gallery_vecs, "gallery_vecs")
    qg, gg = np.asarray(query_groups), np.asarray(gallery_groups)
    _same_len(len(qv), qg, "query_groups")
    _same_len(len(gv), gg, "gallery_groups")
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
