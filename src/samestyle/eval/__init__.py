"""Evaluation: pure metric functions, protocols over given embeddings, and report writing.

``metrics`` works on score matrices and label vectors; ``protocols`` turns embeddings into
``dict[str, float]`` results with a ``"primary"`` entry (the KAGL ones in ``kagl``, the grouping and
classification ones in ``grouping``); ``report`` writes ``eval.json`` and ``eval.md``.
"""

from samestyle.eval.grouping import category_scores, mean_f1_grouping, pair_prf
from samestyle.eval.kagl import kagl_attribute_to_product, kagl_text_to_image, weighted_doc_vectors
from samestyle.eval.metrics import (
    accuracy,
    average_precision,
    macro_f1,
    mrr,
    ndcg_at_k,
    precision_at_k,
    ranked_gains,
    ranks_of_relevant,
    recall_at_k,
    sum_r,
    top_k_dot,
    top_k_indices,
)
from samestyle.eval.protocols import PRIMARY_METRIC, group_retrieval, same_label_precision, sample100
from samestyle.eval.report import render_markdown, write_report

__all__ = [
    "PRIMARY_METRIC",
    "accuracy",
    "average_precision",
    "category_scores",
    "group_retrieval",
    "kagl_attribute_to_product",
    "kagl_text_to_image",
    "macro_f1",
    "mean_f1_grouping",
    "mrr",
    "ndcg_at_k",
    "pair_prf",
    "precision_at_k",
    "ranked_gains",
    "ranks_of_relevant",
    "recall_at_k",
    "render_markdown",
    "same_label_precision",
    "sample100",
    "sum_r",
    "top_k_dot",
    "top_k_indices",
    "weighted_doc_vectors",
    "write_report",
]
