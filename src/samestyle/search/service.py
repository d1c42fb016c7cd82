"""SearchService: turns a query (text, image, product id) into a vector and searches the right space.

Without a trained model, spaces are the frozen backbones' own: a text query searches "text" and an
image query "image". When the index was built from embeddings with a model run (``samestyle embed
--model``), queries are projected by that model into the joint space, and every modality can search
every other: the default target is "joint-image" (text->image, image->image). Loading needs no flags:
the index manifest records the encoders' registry keys and the model run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from samestyle.errors import ConfigError
from samestyle.index.metadata import Filter
from samestyle.index.product_index import ProductIndex
from samestyle.models import IMAGE_ENCODERS, TEXT_ENCODERS
from samestyle.models.base import ImageEncoder, TextEncoder
from samestyle.pipeline.embeddings import l2_normalize
from samestyle.types import Hit


@dataclass
class SearchService:
    """Search one index. Encoders and the joint model are created on first use and kept."""

    index: ProductIndex
    text_encoder: TextEncoder | None = None
    image_encoder: ImageEncoder | None = None
    encoder_keys: dict[str, str] = field(default_factory=dict)
    model_run: str | None = None
    _model: Any = None
    _run_cfg: Any = None
    _extractor: Any = None

    @classmethod
    def open(cls, index_dir: str | Path) -> SearchService:
        index = ProductIndex.open(index_dir)
        meta = index.manifest.get("meta", {})
        return cls(index=index, encoder_keys=dict(meta.get("encoders", {})), model_run=meta.get("model_run"))

    @property
    def joint(self) -> bool:
        return self.model_run is not None and "joint-image" in self.index.spaces()

    def _text(self) -> TextEncoder:
        if self.text_encoder is None:
            if not self.encoder_keys.get("text"):
                raise ConfigError("this index has no text encoder: text queries are not possible")
            self.text_encoder = TEXT_ENCODERS.build(self.encoder_keys["text"])
        return self.text_encoder

    def _image(self) -> ImageEncoder:
        if self.image_encoder is None:
            if not self.encoder_keys.get("image"):
                raise ConfigError("this index has no image encoder: image queries are not possible")
            self.image_encoder = IMAGE_ENCODERS.build(self.encoder_keys["image"])
        return self.image_encoder

    def _load_model(self) -> Any:
        from samestyle.train.run import load_run

        if self._model is None:
            if self.model_run is None:
                raise ConfigError("this index has no trained model: joint spaces are not available")
            self._model, self._run_cfg = load_run(self.model_run)
        return self._model

    def _project(self, image: np.ndarray | None, text: np.ndarray | None, which: str) -> np.ndarray:
        from samestyle.pipeline.joint import project

        return project(self._load_model(), image, text)[which]

    def _joint_image_input(self, image: str | Path | Image.Image) -> np.ndarray:
        """What the run's image tower reads for a new image: the pooled vector, or cached-kind activations."""
        from samestyle.models.towers import tower_input_kind

        self._load_model()
        kind = tower_input_kind(self._run_cfg.tower)
        if kind == "pooled":
            return l2_normalize(self._image().encode_images([image]))
        from samestyle.features.activations import ActivationExtractor, query_activations

        if self._extractor is None:
            self._extractor = ActivationExtractor(kind)
        values, ok = query_activations(self._extractor, [image])
        if not ok[0]:
            raise ConfigError(f"cannot read the query image {image}")
        return values

    def _default_space(self, modality: str) -> str:
        return "joint-image" if self.joint else modality

    def encode_text_query(self, text: str, space: str | None = None) -> tuple[np.ndarray, str]:
        """The query vector for ``space`` (default: joint-image with a model, else "text") and that space.

        A joint space gets the model's projection of the frozen text vector; a frozen space the vector itself.
        """
        space = space or self._default_space("text")
        vec = self._text().encode_texts([text])
        return (self._project(None, vec, "text") if space.startswith("joint-") else vec), space

    def encode_image_query(
        self, image: str | Path | Image.Image, space: str | None = None
    ) -> tuple[np.ndarray, str]:
        space = space or self._default_space("image")
        if space.startswith("joint-"):
            return self._project(self._joint_image_input(image), None, "image"), space
        return l2_normalize(self._image().encode_images([image])), space

    def search_text(
        self, text: str, k: int = 10, filter: Filter | None = None, space: str | None = None
    ) -> list[Hit]:
        vec, space = self.encode_text_query(text, space)
        return self._search(space, vec, k, filter)

    def search_image(
        self,
        image: str | Path | Image.Image,
        k: int = 10,
        filter: Filter | None = None,
        space: str | None = None,
    ) -> list[Hit]:
        vec, space = self.encode_image_query(image, space)
        return self._search(space, vec, k, filter)

    def search_image_text(
        self, image: str | Path | Image.Image, text: str, k: int = 10, filter: Filter | None = None
    ) -> list[Hit]:
        """An image plus a text (e.g. a photo and "in white"): fused by the model, searched in joint-fused."""
        if not self.joint:
            raise ConfigError("image+text queries need an index built with a trained model (embed --model)")
        txt = self._text().encode_texts([text])
        return self._search(
            "joint-fused", self._project(self._joint_image_input(image), txt, "fused"), k, filter
        )

    def similar(
        self,
        product_id: str,
        k: int = 10,
        space: str | None = None,
        filter: Filter | None = None,
        include_self: bool = False,
    ) -> list[Hit]:
        """Products closest to a catalogue product in ``space`` (the product itself excluded by default)."""
        space = space or ("joint-fused" if self.joint else "image")
        if space in self.index.spaces() and product_id not in self.index.space(space):
            where = "in the catalogue" if product_id in self.index else "not in the catalogue"
            raise ConfigError(
                f"product '{product_id}' has no vector in space '{space}' (it is {where}; a "
                "product without a usable image has none in image spaces: try --space text)"
            )
        vec = self.index.get_vectors(space, [product_id])
        hits = self._search(space, vec, k + (0 if include_self else 1), filter)
        if not include_self:
            hits = [h for h in hits if h.id != product_id]
        return hits[:k]

    def _search(self, space: str, vec: np.ndarray, k: int, filter: Filter | None) -> list[Hit]:
        if k < 1:
            raise ConfigError(f"k must be at least 1 (got {k})")
        if space not in self.index.spaces():
            raise ConfigError(f"no space '{space}' in this index (have: {', '.join(self.index.spaces())})")
        return self.index.search(space, l2_normalize(vec), k, filter=filter)[0]

    def describe(self) -> dict[str, Any]:
        return {
            "spaces": self.index.spaces(),
            "encoders": self.encoder_keys,
            "model_run": self.model_run,
            "products": len(self.index),
        }
