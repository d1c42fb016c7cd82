"""Cross-encoder inputs for products and queries outside the prepared subset, at search time.

``PatchFeaturizer`` turns images into the 55 kaleido patch features exactly as ``pretrain.prepare`` did
for the subset (the ``[1280, 7, 7]`` map -> ``kaleido_patches`` -> the stored PCA -> divided by the stored
``patch_scale``). ``Tokenizer`` turns titles into MiniLM word-piece ids; since the cross-encoder's token
table is the frozen MiniLM word-embedding matrix restricted to the subset's vocabulary,
``full_token_table`` gives the whole matrix (row 0 = padding, zeros) so any word piece can be read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.errors import SamestyleError
from samestyle.pretrain.patches import PatchPCA, kaleido_patches


class PatchFeaturizer:
    """Images (paths or PIL) -> ``[N, 55, D]`` float32 patch features, as the prepared subset has them.

    Args:
        data: the prepared arrays (``pca_mean``, ``pca_components``, ``patch_scale`` are read).
        maps: ``images -> ([N, 1280 * 49] maps, [N] ok)``; the ONNX map extractor when None.
    """

    def __init__(
        self,
        data: dict[str, np.ndarray],
        maps: Callable[[Sequence[Any]], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        self.pca = PatchPCA(data["pca_mean"], data["pca_components"])
        self.scale = float(data["patch_scale"])
        self._maps = maps

    def _extract(self, images: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        if self._maps is None:
            from samestyle.features.activations import ActivationExtractor, query_activations

            ex = ActivationExtractor("map", num_threads=1)
            self._maps = lambda imgs: query_activations(ex, imgs)
        return self._maps(images)

    def __call__(self, images: Sequence[Any]) -> np.ndarray:
        """Patch features of ``images``; raises ``SamestyleError`` naming the first unreadable one."""
        values, ok = self._extract(images)
        if not np.all(ok):
            bad = images[int(np.flatnonzero(~np.asarray(ok))[0])]
            raise SamestyleError(f"cannot read the image {bad}: not a readable image file")
        maps = np.asarray(values, np.float32).reshape(len(images), -1, 7, 7)
        return self.pca.transform(kaleido_patches(maps)) / self.scale


class Tokenizer:
    """Titles -> MiniLM word-piece ids ``[N, max_tokens]`` (no [CLS]/[SEP], 0-padded, truncated)."""

    def __init__(self, max_tokens: int, encode: Callable[[str], list[int]] | None = None) -> None:
        self.max_tokens = max_tokens
        self._encode = encode

    def ids(self, text: str) -> list[int]:
        if self._encode is None:
            from samestyle.models.text import MiniLMTextEncoder

            tok = MiniLMTextEncoder(num_threads=1)._tokenizer
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
    from samestyle.models.text import MiniLMTextEncoder

    table = MiniLMTextEncoder(num_threads=1)._model.embeddings.word_embeddings.weight.detach().numpy()
    table = table.astype(np.float32, copy=True)
    table[0] = 0.0
    return table


def resolve_image(image: str | None, root: Path | None) -> Path | None:
    """A product's image path: absolute as given, else under the catalogue's image root."""
    if not image:
        return None
    path = Path(image)
    return path if path.is_absolute() or root is None else root / path
