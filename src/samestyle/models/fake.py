"""Deterministic fake encoders for unit tests: instant, no torch, stable across processes and machines.

* ``FakeTextEncoder``: a hashed bag of words, so texts that share words are similar.
* ``FakeImageEncoder``: colour statistics (mean colour + per-channel histograms) of a small thumbnail,
  projected to ``dim`` with a fixed random matrix, so same-colour images are similar.

Example:
    >>> enc = FakeTextEncoder(dim=32)
    >>> v = enc.encode_texts(["red dress", "red shirt", "laptop charger"])
    >>> bool(v[0] @ v[1] > v[0] @ v[2])
    True
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from samestyle.models.base import IMAGE_ENCODERS, TEXT_ENCODERS, ImageEncoder, TextEncoder
from samestyle.models.preprocess import PreprocessConfig

_TOKEN = re.compile(r"[a-z0-9]+")
_HIST_BINS = 8


def _token_slot(token: str, dim: int) -> tuple[int, float]:
    """A stable (index, sign) for a token (blake2b, not Python's salted ``hash``)."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, 1.0 if (value >> 63) & 1 else -1.0


class FakeTextEncoder(TextEncoder):
    """Hashed bag-of-words text encoder (lower-cased alphanumeric tokens), L2-normalised.

    Args:
        dim: output dimension.
    """

    def __init__(self, dim: int = 32) -> None:
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.name = f"fake-text/bow/v1-d{dim}"

    def _encode_text_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # [B, D]
        for row, text in enumerate(texts):
            for token in _TOKEN.findall(text.lower()):
                slot, sign = _token_slot(token, self.dim)
                out[row, slot] += sign
        return out


class FakeImageEncoder(ImageEncoder):
    """Colour-statistics image encoder on a 32x32 thumbnail; raw (not normalised) like the real one.

    The 27 base features (mean RGB, 8-bin histogram per channel) are projected to ``dim`` by a fixed
    Gaussian matrix (seed 0), which roughly preserves cosine similarity.

    Args:
        dim: output dimension.
    """

    preprocess_config = PreprocessConfig(size=32, resample="bilinear")

    def __init__(self, dim: int = 16) -> None:
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.name = f"fake-image/colour/v1-d{dim}"
        n_base = 3 + 3 * _HIST_BINS
        rng = np.random.default_rng(0)
        self._proj = (rng.standard_normal((n_base, dim)) / np.sqrt(dim)).astype(np.float32)  # [27, D]

    def _encode_image_batch(self, pixels: np.ndarray) -> np.ndarray:
        n = len(pixels)
        flat = pixels.reshape(n, 3, -1)  # [N, 3, P], values in about [-1, 1]
        means = flat.mean(axis=2)  # [N, 3]
        bins = np.clip(((flat + 1.0) * 0.5 * _HIST_BINS).astype(np.int64), 0, _HIST_BINS - 1)
        hist = np.zeros((n, 3, _HIST_BINS), dtype=np.float32)  # [N, 3, bins]
        for b in range(_HIST_BINS):
            hist[:, :, b] = (bins == b).mean(axis=2)
        base = np.concatenate([means, hist.reshape(n, -1)], axis=1)  # [N, 27]
        return base.astype(np.float32) @ self._proj  # [N, D]


@TEXT_ENCODERS.register("fake")
def _build_fake_text(dim: int = 32, num_threads: int | None = None) -> TextEncoder:
    return FakeTextEncoder(dim=dim)  # num_threads: accepted for a uniform factory signature


@IMAGE_ENCODERS.register("fake")
def _build_fake_image(dim: int = 16, num_threads: int | None = None) -> ImageEncoder:
    return FakeImageEncoder(dim=dim)  # num_threads: accepted for a uniform factory signature


__all__ = ["FakeImageEncoder", "FakeTextEncoder"]
