"""Composed-query protocol on a catalogue with colours: "product A, in <colour>".

For each query product A (held out), a target colour c != A's colour is drawn (fixed seed) among the
colours that some other gallery product of A's gender and article type has. The modifier is
``"in <c>"``. Relevant = gallery products with A's gender and article type in colour c (A excluded).
The gallery is the joint-image space of the held-out products.

Metrics per method: ``r@10`` = |relevant in the top 10| / min(10, |relevant|), ``ndcg@10`` (binary gains),
``hit@10`` = at least one relevant in the top 10. Methods: the image alone, the modifier text alone, and
each composition of :mod:`samestyle.search.compose`; the ``sum``/``delta`` weight ``alpha`` is chosen on a
separate (validation) query set by :func:`choose_alpha`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from samestyle.eval import metrics as M
from samestyle.search.compose import METHODS, compose_vectors
from samestyle.types import Product

Projector = Callable[[np.ndarray | None, np.ndarray | None], dict[str, np.ndarray]]
TextFeatures = Callable[[list[str]], np.ndarray]
ALPHAS = (0.5, 1.0, 1.5, 2.0, 3.0)


@dataclass
class ComposedTask:
    """Queries (rows of the catalogue), their modifiers and the relevance matrix over the gallery."""

    query_rows: np.ndarray  # [Q]
    modifiers: list[str]
    titles: list[str]
    gallery_rows: np.ndarray  # [G]
    relevant: np.ndarray  # [Q, G] bool


def _key(p: Product) -> tuple[str, str] | None:
    gender, kind = p.attributes.get("gender"), p.category[-1] if p.category else None
    return (gender, kind) if gender and kind else None


def build_task(
    products: Sequence[Product], query_rows: np.ndarray, gallery_rows: np.ndarray, n: int, seed: int = 0
) -> ComposedTask:
    """Draw up to ``n`` composed queries from ``query_rows`` against ``gallery_rows``."""
    rng = np.random.default_rng(seed)
    colours_of: dict[tuple[str, str], dict[str, list[int]]] = {}
    for g, row in enumerate(gallery_rows.tolist()):
        key, colour = _key(products[row]), products[row].attributes.get("baseColour")
        if key and colour:
            colours_of.setdefault(key, {}).setdefault(colour, []).append(g)
    chosen, mods, titles, rel_rows = [], [], [], []
    for row in rng.permutation(query_rows).tolist():
        p = products[row]
        key, own = _key(p), p.attributes.get("baseColour")
        options = sorted(c for c in colours_of.get(key, {}) if c != own) if key and own else []
        if not options:
            continue
        colour = options[int(rng.integers(len(options)))]
        chosen.append(row)
        mods.append(f"in {colour.lower()}")
        titles.append(p.title)
        rel_rows.append(colours_of[key][colour])  # type: ignore[index]
        if len(chosen) == n:
            break
    relevant = np.zeros((len(chosen), len(gallery_rows)), bool)
    for q, cols in enumerate(rel_rows):
        relevant[q, cols] = True
    return ComposedTask(np.array(chosen, np.int64), mods, titles, gallery_rows, relevant)


def score(queries: np.ndarray, gallery: np.ndarray, task: ComposedTask, k: int = 10) -> dict[str, float]:
    """``r@10``, ``ndcg@10`` and ``hit@10`` of query vectors [Q, D] against gallery vectors [G, D]."""
    exclude = task.gallery_rows[None, :] == task.query_rows[:, None]  # the query product itself
    sims = queries @ gallery.T
    top = np.argsort(-np.where(exclude, -np.inf, sims), axis=1)[:, :k]
    found = np.take_along_axis(task.relevant, top, axis=1).sum(1)
    n_rel = task.relevant.sum(1)
    return {
        f"r@{k}": float(np.mean(found / np.minimum(k, n_rel))),
        f"ndcg@{k}": M.ndcg_at_k(sims, task.relevant.astype(np.float64), k, exclude=exclude),
        f"hit@{k}": float(np.mean(found > 0)),
        "n_queries": float(len(task.query_rows)),
    }


def query_vectors(
    method: str,
    task: ComposedTask,
    image_in: np.ndarray,
    project: Projector,
    text_features: TextFeatures,
    alpha: float = 1.0,
) -> np.ndarray:
    """Joint query vectors for a method: "image", "text" (the modifier alone) or a composition."""
    if method == "image":
        return project(image_in, None)["image"]
    if method == "text":
        return project(None, text_features(task.modifiers))["text"]
    return compose_vectors(method, project, text_features, image_in, task.modifiers, task.titles, alpha)


def choose_alpha(
    method: str,
    task: ComposedTask,
    image_in: np.ndarray,
    gallery: np.ndarray,
    project: Projector,
    text_features: TextFeatures,
    alphas: Sequence[float] = ALPHAS,
) -> float:
    """The alpha with the best nDCG@10 on ``task`` (a validation task, not the one reported)."""
    scored = [
        (score(query_vectors(method, task, image_in, project, text_features, a), gallery, task)["ndcg@10"], a)
        for a in alphas
    ]
    return max(scored)[1]


def run_composed(
    task: ComposedTask,
    image_in: np.ndarray,
    gallery: np.ndarray,
    project: Projector,
    text_features: TextFeatures,
    alphas: Mapping[str, float],
) -> dict[str, dict[str, float]]:
    """Every method's scores on ``task``; ``alphas``: the chosen weight per weighted method."""
    out = {}
    for method in ("image", "text", *METHODS):
        alpha = alphas.get(method, 1.0)
        vecs = query_vectors(method, task, image_in, project, text_features, alpha)
        out[method] = score(vecs, gallery, task) | ({"alpha": alpha} if method in alphas else {})
    return out


__all__ = ["ALPHAS", "ComposedTask", "build_task", "choose_alpha", "query_vectors", "run_composed", "score"]
