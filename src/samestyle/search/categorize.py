"""Category recognition for one product through a search service: a catalogue product by id (its stored
joint-fused vector and title) or a new product by title and, optionally, photo (projected by the index's
model as the product would be at indexing time)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from samestyle.errors import ConfigError, NotFoundError
from samestyle.models.recognizer import CategoryRecognizer

if TYPE_CHECKING:
    from samestyle.search.service import ImageInput, SearchService


def categorize(
    service: SearchService,
    recognizer: CategoryRecognizer,
    *,
    product_id: str | None = None,
    text: str | None = None,
    image: ImageInput | None = None,
    k: int = 3,
) -> dict[str, list[tuple[str, float]]]:
    """The ``k`` best classes per level with their margins (best first).

    Args:
        product_id: a product of the index (title and joint-fused vector as stored), or
        text: a new product's title, with ``image`` its photo (path or PIL image) when it has one.
    """
    if (product_id is None) == (text is None):
        raise ConfigError("categorize a product of the index by id, or a new product by its title (+ photo)")
    if image is not None and product_id is not None:
        raise ConfigError("a photo goes with a new product's title, not with a product id")
    if k < 1:
        raise ConfigError(f"k must be >= 1, not {k}")
    if product_id is not None and product_id not in service.index:
        raise NotFoundError(f"product '{product_id}' is not in the index")
    title = service.index.get_products([product_id])[0].title if product_id is not None else str(text)
    return recognizer.top_k(title, _vector(service, recognizer, product_id, title, image), k)


def _vector(
    service: SearchService,
    recognizer: CategoryRecognizer,
    product_id: str | None,
    title: str,
    image: ImageInput | None,
) -> np.ndarray | None:
    inputs = recognizer.cfg.inputs
    if inputs == "":
        return None
    if inputs != "joint-fused" or not service.joint:
        raise ConfigError(
            f"this recognizer reads {inputs!r} vectors; search and serve apply recognizers fitted with --run "
            "(joint-fused) on an index built with that run's model, or fitted on title words alone"
        )
    if product_id is not None:
        vec: np.ndarray = service.index.get_vectors("joint-fused", [product_id])[0]
        return vec
    from samestyle.pipeline.joint import project

    txt = service.joint_text_input([title])
    if image is None:  # no photo: the fused vector is the text vector (as at indexing)
        return project(service.load_model(), None, txt)["text"][0]
    img = service.joint_image_input(Path(image) if isinstance(image, str) else image)
    fused: np.ndarray = project(service.load_model(), img, txt)["fused"][0]
    return fused


__all__ = ["categorize"]
