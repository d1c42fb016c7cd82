"""Why a hit matched: its similarity to the query in each modality, and the attributes it shares.

Spaces come in families: the joint spaces of a trained model (``joint-image``, ``joint-text``,
``joint-fused``, all one space, so every pair of modalities is comparable) and the frozen backbones' own
(``image``, ``text``: only like with like). For each hit and each modality of the searched family where
the hit has a vector, the score is the cosine between that vector and the query's vector of the same
modality when the query has one (product queries), else the query's main vector (joint family only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from samestyle.index.product_index import ProductIndex
from samestyle.types import Hit, Product

JOINT_FAMILY = {"image": "joint-image", "text": "joint-text", "fused": "joint-fused"}
FROZEN_FAMILY = {"image": "image", "text": "text"}


def family(space: str) -> dict[str, str]:
    """Modality -> space name of the family ``space`` belongs to."""
    return JOINT_FAMILY if space.startswith("joint-") else FROZEN_FAMILY


def product_vectors(index: ProductIndex, product_id: str, space: str) -> dict[str, np.ndarray]:
    """The product's vectors in the family of ``space``, by modality (those it has)."""
    out = {}
    for modality, name in family(space).items():
        if name in index.spaces() and product_id in index.space(name):
            out[modality] = index.get_vectors(name, [product_id])[0]
    return out


def shared_attributes(query: Product | None, hit: Product | None) -> dict[str, str]:
    """Attributes with equal values (case-insensitive), plus the common category path as "category"."""
    if query is None or hit is None:
        return {}
    out = {
        k: v
        for k, v in query.attributes.items()
        if k in hit.attributes and str(hit.attributes[k]).casefold() == str(v).casefold()
    }
    common = []
    for a, b in zip(query.category, hit.category, strict=False):
        if a.casefold() != b.casefold():
            break
        common.append(a)
    if common:
        out["category"] = "/".join(common)
    return out


def explain_hits(
    index: ProductIndex,
    hits: Sequence[Hit],
    space: str,
    query: Mapping[str, np.ndarray],
    main: np.ndarray,
    query_product: Product | None = None,
) -> list[Hit]:
    """``hits`` with ``scores`` = per-modality similarities and ``shared`` = attributes shared with the query.

    Args:
        index: the index searched. space: the space searched.
        query: the query's own vectors by modality, in the family of ``space`` (may be empty).
        main: the vector that was searched with (``[dim]``).
        query_product: the catalogue product the query came from, if any.
    """
    if not hits:
        return []
    ids = [h.id for h in hits]
    joint = space.startswith("joint-")
    scores: list[dict[str, float]] = [{} for _ in hits]
    for modality, name in family(space).items():
        q = query.get(modality, main if joint or name == space else None)
        if q is None or name not in index.spaces():
            continue
        target = index.space(name)
        have = [i for i, pid in enumerate(ids) if pid in target]
        if not have or len(q) != target.dim:
            continue
        vecs = index.get_vectors(name, [ids[i] for i in have])  # [H, dim]
        for i, s in zip(have, vecs @ np.asarray(q, np.float32), strict=True):
            scores[i][modality] = round(float(s), 6)
    out = []
    for hit, sc in zip(hits, scores, strict=True):
        out.append(
            Hit(
                hit.id,
                hit.score,
                sc or dict(hit.scores),
                hit.product,
                shared_attributes(query_product, hit.product),
            )
        )
    return out


__all__ = ["FROZEN_FAMILY", "JOINT_FAMILY", "explain_hits", "family", "product_vectors", "shared_attributes"]
