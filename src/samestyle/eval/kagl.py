"""The KAGL text->image and attribute->product protocols on given embeddings (see ``protocols``).

KAGL protocols follow the Marqo-FashionCLIP harness (github.com/marqo-ai/marqo-FashionCLIP, read at
commit fcd6464): ``eval.py`` retrieves only the top ``max(Ks)`` documents (Ks default ``[1, 10]``),
scores them with ``utils/metrics.py``: BEIR's ``EvaluateRetrieval.evaluate`` (pytrec_eval) for P@k and
Recall@k, plus its own MRR over that top-10 list divided by the number of queries. So "Recall@k" is
trec_eval recall, (relevant docs in the top k) / (relevant docs in the qrels), not a hit rate; P@k is
(relevant in top k) / k; MRR is MRR@10; relevant means grade > 0. ``summarize_results.py`` reports
AvgRecall = mean(Recall@1, Recall@10) for text-to-image and AvgP = mean(P@1, P@10) for
category-to-product, our primaries. ``configs/KAGL.json`` uses doc weights image 0.9, text 0.1, and
``eval.py`` L2-normalises the weighted sum of the (already normalised) field embeddings.

On a sub-catalogue (e.g. the 9,572 products with a 224 px photo) the full-gallery protocol counts every
query whose product is absent as a miss. :func:`restrict_qrels` gives "KAGL restricted to the gallery":
only the judged products in the gallery, only the queries with one of them left. Its numbers are not
comparable with the full-gallery ones (fewer queries, a smaller gallery).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from samestyle.eval import metrics as M
from samestyle.eval.arrays import as_matrix, check_len

Q = TypeVar("Q", bound=Hashable)
D = TypeVar("D", bound=Hashable)
G = TypeVar("G", bound=float)


def weighted_doc_vectors(
    image: ArrayLike, text: ArrayLike, weights: tuple[float, float] = (0.9, 0.1)
) -> NDArray[np.float64]:
    """``normalize(w_img * image + w_txt * text)``: the Marqo harness's multi-field documents.

    The inputs are used as given (the harness encodes each field with ``normalize=True``); only the
    weighted sum is L2-normalised, with a 1e-12 floor on the norm as ``torch.nn.functional.normalize``.
    """
    a, b = as_matrix(image, "image"), as_matrix(text, "text")
    if a.shape != b.shape:
        raise ValueError(f"image {a.shape} and text {b.shape} vectors must have the same shape")
    v = weights[0] * a + weights[1] * b
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def restrict_qrels(qrels: Mapping[Q, Mapping[D, G]], doc_ids: Iterable[Hashable]) -> dict[Q, dict[D, G]]:
    """``qrels`` restricted to a gallery: judged docs outside ``doc_ids`` are dropped (ids compared as
    strings, like the harness), and so is every query left with no relevant (grade > 0) doc.

    Example:
        >>> restrict_qrels({"q1": {"a": 1, "x": 1}, "q2": {"x": 1}}, ["a", "b"])
        {'q1': {'a': 1}}
    """
    keep = {str(d) for d in doc_ids}
    out: dict[Q, dict[D, G]] = {}
    for query, docs in qrels.items():
        kept = {d: grade for d, grade in docs.items() if str(d) in keep}
        if any(grade > 0 for grade in kept.values()):
            out[query] = kept
    return out


def _qrels_hits(
    query_vecs: ArrayLike,
    doc_vecs: ArrayLike,
    doc_ids: Sequence[Hashable],
    qrels: Mapping[Any, Mapping[Any, float]],
    query_keys: Sequence[Hashable] | None,
    depth: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Binary relevance of each qrels query's top ``depth`` docs ``[Q, depth]``, R per query, missing docs."""
    qv, dv = as_matrix(query_vecs, "query_vecs"), as_matrix(doc_vecs, "doc_vecs")
    check_len(len(dv), doc_ids, "doc_ids")
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


__all__ = ["kagl_attribute_to_product", "kagl_text_to_image", "restrict_qrels", "weighted_doc_vectors"]
