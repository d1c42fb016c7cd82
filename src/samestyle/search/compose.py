"""Composed queries: an image plus a text modifier ("same style, in white") as one joint-space vector.

Every method works in the joint space of a trained model; inputs are frozen backbone features, mapped
by ``project(image, text) -> {"image", "text", "fused"}`` (:func:`samestyle.pipeline.joint.project`).

- ``fused``: the model's own fusion of the image with the modifier text, ``fuse(image, modifier)``.
- ``sum``: ``normalize(image + alpha * text(modifier))``, the modifier added as a direction.
- ``delta``: ``normalize(image + alpha * (text(title + " " + modifier) - text(title)))``: how the product's
  own text moves when the modifier is added to it (needs the product's title: product queries only).
- ``fused-title``: ``fuse(image, title + ", " + modifier)`` (product queries only).

:data:`METHODS` lists them. On the composed-query benchmark (BENCHMARKS.md, "Issue D") ``delta`` was best
and ``fused`` the best of those without a title, so ``SearchService.compose``'s "auto" picks those two.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from samestyle.errors import ConfigError
from samestyle.models.base import l2_normalize

Projector = Callable[[np.ndarray | None, np.ndarray | None], dict[str, np.ndarray]]
TextFeatures = Callable[[list[str]], np.ndarray]
METHODS = ("fused", "sum", "delta", "fused-title")
NEEDS_TITLE = ("delta", "fused-title")
DEFAULT_ALPHA: dict[str, float] = {"sum": 1.0, "delta": 2.0}
"""Weight of the text direction per method, as chosen on Myntra val queries (BENCHMARKS.md, Issue D)."""


def compose_vectors(
    method: str,
    project: Projector,
    text_features: TextFeatures,
    image: np.ndarray,
    modifiers: list[str],
    titles: list[str] | None = None,
    alpha: float | None = None,
) -> np.ndarray:
    """Composed joint query vectors ``[N, dim]``.

    Args:
        method: one of :data:`METHODS`.
        project: frozen features -> joint vectors by modality.
        text_features: texts -> frozen text features ``[N, Dt]``.
        image: frozen image inputs ``[N, ...]`` (what the model's image tower reads).
        modifiers: one modifier text per row. titles: each row's product title (``delta``, ``fused-title``).
        alpha: weight of the text direction (``sum``, ``delta``); default :data:`DEFAULT_ALPHA`.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown composition '{method}' (known: {', '.join(METHODS)})")
    if method in NEEDS_TITLE and titles is None:
        raise ConfigError(f"composition '{method}' needs the product's title: query by product id")
    if method == "fused":
        return project(image, text_features(modifiers))["fused"]
    if method == "fused-title":
        assert titles is not None
        texts = [f"{t}, {m}" for t, m in zip(titles, modifiers, strict=True)]
        return project(image, text_features(texts))["fused"]
    img = project(image, None)["image"]
    alpha = DEFAULT_ALPHA[method] if alpha is None else alpha
    if method == "sum":
        direction = project(None, text_features(modifiers))["text"]
    else:
        assert titles is not None
        new = [f"{t} {m}" for t, m in zip(titles, modifiers, strict=True)]
        both = project(None, text_features(new + titles))["text"]
        direction = both[: len(new)] - both[len(new) :]
    return l2_normalize(img + alpha * direction)


__all__ = ["DEFAULT_ALPHA", "METHODS", "NEEDS_TITLE", "compose_vectors"]
