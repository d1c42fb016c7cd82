"""Encoder plug points: one required method each; batching and preprocessing come from the base class.

An image encoder implements ``_encode_image_batch(pixels)`` on an already preprocessed
``[N, 3, H, W]`` float32 batch; a text encoder implements ``_encode_text_batch(texts)``. Both declare
``name`` (a stable id used in cache keys: model / runtime / version, e.g. ``"efficientnet-lite0/onnx/v1"``;
bump the version whenever outputs change) and ``dim``.

Output conventions:

* everything is float32, shape ``[N, dim]``;
* text vectors are L2-normalised (as sentence-transformers does); the base class enforces it;
* image vectors are the *raw* pooled backbone features (not normalised): heads trained on them may want
  the magnitude; call :func:`l2_normalize` for cosine search.

Registries ``IMAGE_ENCODERS`` / ``TEXT_ENCODERS`` turn config strings into encoders
(``IMAGE_ENCODERS.build("efficientnet-lite0")``); the names are registered when ``samestyle.models`` is
imported.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, TypeAlias

import numpy as np

from samestyle.models.preprocess import ImageInput, PreprocessConfig, load_and_preprocess
from samestyle.registry import Registry
from samestyle.types import Modality


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm (zero rows stay zero), as float32. ``x``: ``[N, D]``."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)  # [N, 1]
    return (x / np.maximum(norms, eps)).astype(np.float32, copy=False)


def _checked(out: object, n: int, dim: int, who: str) -> np.ndarray:
    """The batch output as a float32 ``[n, dim]`` array; ValueError naming the encoder otherwise."""
    arr = np.asarray(out, dtype=np.float32)
    if arr.shape != (n, dim):
        raise ValueError(
            f"encoder {who!r} returned shape {arr.shape} for a batch of {n}; expected {(n, dim)}"
        )
    return arr


def _batch_size(batch_size: int | None, default: int) -> int:
    size = default if batch_size is None else batch_size
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {size}")
    return size


class ImageEncoder(ABC):
    """Base of image encoders. Subclasses set ``name``, ``dim`` and implement ``_encode_image_batch``.

    Example:
        >>> from samestyle.models.fake import FakeImageEncoder
        >>> enc = FakeImageEncoder(dim=16)
        >>> enc.encode_images([Image.new("RGB", (60, 80), "red")]).shape  # doctest: +SKIP
        (1, 16)
    """

    modality: ClassVar[Modality] = Modality.IMAGE
    name: str
    dim: int
    default_batch_size: int = 32
    preprocess_config: PreprocessConfig = PreprocessConfig()

    @abstractmethod
    def _encode_image_batch(self, pixels: np.ndarray) -> np.ndarray:
        """Encode one preprocessed batch. Inputs: ``[N, 3, H, W]`` float32. Returns ``[N, dim]``."""

    def preprocess(self, image: ImageInput) -> np.ndarray:
        """One image (or path, opened with ``open_image``) to ``[3, H, W]`` float32 for this encoder.

        Raises:
            ImageError: a path cannot be opened as an image.
        """
        return load_and_preprocess(image, self.preprocess_config)

    def encode_pixels(self, pixels: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Encode preprocessed pixels ``[N, 3, H, W]`` in batches. Returns ``[N, dim]`` float32."""
        size = _batch_size(batch_size, self.default_batch_size)
        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim != 4 or pixels.shape[1] != 3:
            raise ValueError(f"pixels must be [N, 3, H, W], got shape {pixels.shape}")
        out = np.empty((len(pixels), self.dim), dtype=np.float32)
        for start in range(0, len(pixels), size):
            chunk = np.ascontiguousarray(pixels[start : start + size])
            out[start : start + len(chunk)] = _checked(
                self._encode_image_batch(chunk), len(chunk), self.dim, self.name
            )
        return out

    def encode_images(self, images: Sequence[ImageInput], batch_size: int | None = None) -> np.ndarray:
        """Preprocess and encode images or image paths. Returns ``[N, dim]`` float32 (raw, not normalised).

        Raises:
            ImageError: a path cannot be opened (use ``features.extract_features`` to skip bad images).
        """
        if isinstance(images, (str, bytes)):
            raise TypeError("encode_images takes a sequence of images or paths, not one string")
        size = _batch_size(batch_size, self.default_batch_size)
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), size):
            batch = [self.preprocess(img) for img in images[start : start + size]]
            out[start : start + len(batch)] = self.encode_pixels(np.stack(batch), batch_size=size)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


class TextEncoder(ABC):
    """Base of text encoders. Subclasses set ``name``, ``dim`` and implement ``_encode_text_batch``.

    ``encode_texts`` sorts the texts by length before batching (less padding, so faster for
    transformers), restores the input order, and L2-normalises every row.
    """

    modality: ClassVar[Modality] = Modality.TEXT
    name: str
    dim: int
    default_batch_size: int = 64
    sort_by_length: bool = True

    @abstractmethod
    def _encode_text_batch(self, texts: list[str]) -> np.ndarray:
        """Encode one batch of texts. Returns ``[len(texts), dim]`` (normalised or not)."""

    def encode_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Encode texts in batches. Returns ``[N, dim]`` float32, rows L2-normalised, input order."""
        if isinstance(texts, (str, bytes)):
            raise TypeError("encode_texts takes a sequence of strings, not one string")
        size = _batch_size(batch_size, self.default_batch_size)
        texts = list(texts)
        order = np.arange(len(texts))
        if self.sort_by_length:
            order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), size):
            idx = order[start : start + size]
            batch = [texts[i] for i in idx]
            out[idx] = _checked(self._encode_text_batch(batch), len(batch), self.dim, self.name)
        return l2_normalize(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


Encoder: TypeAlias = ImageEncoder | TextEncoder

IMAGE_ENCODERS: Registry[ImageEncoder] = Registry("image encoder")
TEXT_ENCODERS: Registry[TextEncoder] = Registry("text encoder")

__all__ = [
    "IMAGE_ENCODERS",
    "TEXT_ENCODERS",
    "Encoder",
    "ImageEncoder",
    "TextEncoder",
    "l2_normalize",
]
