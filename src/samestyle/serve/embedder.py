"""Vectors of one new or changed product, for every space of an index (catalogue upserts over HTTP).

A thin adapter over :class:`~samestyle.search.service.SearchService`: the frozen spaces use the same
encoders as ``samestyle embed``; the joint spaces use the service's model exactly as ``embed --model``
does (what its towers read: the frozen vectors, or cached-kind activations / hidden states, through
``pipeline.joint.project``). The fused vector of a
product without an image is its joint text vector, as in the catalogue embedding.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from samestyle.errors import ConfigError
from samestyle.pipeline.embeddings import l2_normalize
from samestyle.search.service import SearchService
from samestyle.types import Product

KNOWN_SPACES = ("image", "text", "joint-image", "joint-text", "joint-fused")


def product_vectors(
    service: SearchService, product: Product, image: Image.Image | None
) -> dict[str, np.ndarray]:
    """``{space: [1, dim] vector}`` for every space of the service's index the product can have.

    Image spaces are skipped when ``image`` is None. Raises ConfigError for a space this adapter cannot
    compute (e.g. one built by another pipeline), so no space is silently left stale.
    """
    spaces = service.index.spaces()
    unknown = [s for s in spaces if s not in KNOWN_SPACES]
    if unknown:
        raise ConfigError(
            f"cannot compute vectors of space(s) {', '.join(unknown)} for an upsert; "
            "rebuild the index instead"
        )
    out: dict[str, np.ndarray] = {}
    text_vec: np.ndarray | None = None
    if "text" in spaces:
        text_vec = l2_normalize(service.encode_text_query(product.text, space="text")[0])
        out["text"] = text_vec
    if image is not None and "image" in spaces:
        out["image"], _ = service.encode_image_query(image, space="image")
    if any(s.startswith("joint-") for s in spaces):
        from samestyle.pipeline.joint import project

        model = service.load_model()
        img_in = service.joint_image_input(image) if image is not None else None
        reuse = text_vec is not None and not model.has_text_tower  # the frozen vector is the tower input
        txt_in = text_vec if reuse else service.joint_text_input([product.text])
        joint = project(model, img_in, txt_in)
        if "joint-text" in spaces:
            out["joint-text"] = joint["text"]
        if "joint-image" in spaces and img_in is not None:
            out["joint-image"] = joint["image"]
        if "joint-fused" in spaces:
            out["joint-fused"] = joint["fused"] if img_in is not None else joint["text"]
    return {name: np.asarray(v, np.float32).reshape(1, -1) for name, v in out.items()}


__all__ = ["KNOWN_SPACES", "product_vectors"]
