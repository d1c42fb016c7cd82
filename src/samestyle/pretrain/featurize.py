"""Cross-encoder inputs for products and queries outside the prepared subset, at search time.

``PatchFeaturizer`` turns images into the 55 kaleido patch features exactly as ``pretrain.prepare`` did
for the subset (the ``[1280, 7, 7]`` map -> ``kaleido_patches`` -> the stored PCA -> divided by the stored
``patch_scale``). ``Tokenizer`` turns titles into MiniLM word-piece ids; since the cross-encoder's token
table is the frozen MiniLM word-embedding matrix restricted to the subset's vocabulary,
``full_token_table`` gives the whole matrix (row 0 = padding, zeros) so any word piece can be read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.errors import SamestyleError


@functools.cache
def _minilm() -> Any:
    """One MiniLM encoder per process for the tokenizer and the word-embedding table (loading it is slow)."""
    from samestyle.models.text import MiniLMTextEncoder

    return MiniLMTextEncoder(num_threads=1)


class PatchFeaturizer:
    """Image files -> ``[N, 55, D]`` float32 patch features, as the prepared subset has them.

    Args:
        data: the prepared arrays (``pca_mean``, ``pca_components``, ``patch_scale`` are read).
        extractor: the ``[1280, 7, 7]`` map encoder; the ONNX ``ActivationExtractor("map")`` when None.
    """

    def __init__(self, data: dict[str, np.ndarray], extractor: Any | None = None) -> None:
        self.mean, self.components = data["pca_mean"], data["pca_components"]
        self.scale = float(data["patch_scale"])
        self.extractor = extractor

    def __call__(self, images: Sequence[Any]) -> np.ndarray:
        """Patch features of ``images``; raises ``SamestyleError`` naming the first unreadable one."""
        from samestyle.pretrain.caption_model import image_patches

        if self.extractor is None:
            from samestyle.features.activations import ActivationExtractor

            self.extractor = ActivationExtractor("map", num_threads=1)
        patches, errors = image_patches(images, self.extractor, self.mean, self.components, self.scale)
        bad = [e for e in errors if e is not None]
        if bad:
            raise SamestyleError(bad[0])
        return patches


class Tokenizer:
    """Titles -> MiniLM word-piece ids ``[N, max_tokens]`` (no [CLS]/[SEP], 0-padded, truncated)."""

    def __init__(self, max_tokens: int, encode: Callable[[str], list[int]] | None = None) -> None:
        self.max_tokens = max_tokens
        self._encode = encode

    def ids(self, text: str) -> list[int]:
        if self._encode is None:
            tok = _minilm()._tokenizer
            self._encode = lambda t: tok(t, add_special_tokens=False)["input_ids"]
        return list(self._encode(text))[: self.max_tokens]

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.max_tokens), dtype=np.int64)
        for i, t in enumerate(texts):
            ids = self.ids(t)
            out[i, : len(ids)] = ids
        return out


def full_token_table() -> np.ndarray:
    """The frozen MiniLM word-embedding matrix ``[30522, 384]`` with row 0 (padding) zeroed."""
    table = _minilm()._model.embeddings.word_embeddings.weight.detach().numpy()
    table = table.astype(np.float32, copy=True)
    table[0] = 0.0
    return table


def resolve_image(image: str | None, root: Path | None) -> Path | None:
    """A product's image path: absolute as given, else under the catalogue's image root."""
    if not image:
        return None
    path = Path(image)
    return path if path.is_absolute() or root is None else root / path
