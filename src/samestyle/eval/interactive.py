"""Interactive search with a simulated user: does feedback find a hidden target faster than paging?

A target is a hidden held-out product; what the user wants is its attributes (:data:`TARGET_KEYS`).
The session starts from a vague text query, ``"<gender> <article type>"``. Each round shows ``k`` new
results; a result *matches* when it has every target attribute. After a round the simulated user likes the
shown results that share the most target attributes (at least two) and dislikes those that share at most
one. ``success@k after r rounds`` = share of sessions where a matching product was shown in rounds 0..r.
The reference is the same session without feedback (the next ``k`` results of the same query: paging).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from samestyle.search.service import SearchService
from samestyle.types import Hit, Product

TARGET_KEYS = ("gender", "articleType", "baseColour", "usage", "season")


def target_attributes(p: Product) -> dict[str, str]:
    attrs = dict(p.attributes)
    if p.category:
        attrs["articleType"] = p.category[-1]
    return {k: attrs[k] for k in TARGET_KEYS if attrs.get(k)}


def _shared(hit: Hit, target: dict[str, str]) -> int:
    return sum(v == target.get(k) for k, v in target_attributes(hit.product).items()) if hit.product else 0


def simulate(
    service: SearchService, targets: Sequence[Product], rounds: int = 3, k: int = 10, feedback: bool = True
) -> dict[str, float]:
    """``success@k`` after 0..``rounds`` rounds over the target products (their ids are never returned)."""
    found = np.zeros((len(targets), rounds + 1), bool)
    for t, product in enumerate(targets):
        target = target_attributes(product)
        query = f"{target.get('gender', '')} {target.get('articleType', '')}".strip()
        sid, hits = service.start_session(text=query, k=k)
        service.sessions.get(sid).seen.add(product.id)  # the hidden product itself never counts
        for r in range(rounds + 1):
            if r:
                liked, disliked = [], []
                if feedback:
                    counts = [_shared(h, target) for h in hits]
                    best = max(counts, default=0)
                    liked = [h.id for h, c in zip(hits, counts, strict=True) if c == best and c >= 2]
                    disliked = [h.id for h, c in zip(hits, counts, strict=True) if c <= 1]
                hits = service.refine(sid, liked=liked, disliked=disliked, k=k)
            found[t, r] = any(_shared(h, target) == len(target) for h in hits)
    cumulative = np.logical_or.accumulate(found, axis=1)
    return {f"success@{k} after {r}": float(cumulative[:, r].mean()) for r in range(rounds + 1)} | {
        "n_sessions": float(len(targets))
    }


__all__ = ["TARGET_KEYS", "simulate", "target_attributes"]
