"""Build the pre-training arrays once: patches (PCA-reduced), title tokens, token-patch alignment.

``prepare_data`` writes one ``.npz`` (one file, float16 patches) with:

- ``ids`` [N], ``is_train`` [N] bool (the rest is held-out test);
- ``patches`` [N, 55, D] float16: kaleido patches of the ``[1280, 7, 7]`` map, PCA to D (fitted on a
  sample of train patches only), then scaled to unit mean row norm (``patch_scale``);
- ``tokens`` [N, T] int64 *local* token ids (0 = padding), ``token_table`` [U, 384] float32: the frozen
  MiniLM word-piece embeddings of the local vocabulary (row 0 zeros), ``vocab`` [U] MiniLM ids;
- ``align`` [N, T] float32: for each token, its best cosine with any of the product's 55 patches in
  the issue-B joint space (token = MiniLM sentence vector of the word piece -> joint text tower; patch
  = L2-normalised 1280-d patch -> joint image tower); -inf on padding. Alignment-guided masking masks
  the highest-scoring tokens;
- ``sub``, ``art`` [N] int64 category labels (subCategory, articleType), ``sub_names``, ``art_names``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.catalog.store import Catalog
from samestyle.fsio import atomic_path
from samestyle.pretrain.data import Subset, sub_catalog
from samestyle.pretrain.patches import PatchPCA, kaleido_patches

logger = logging.getLogger(__name__)
_CHUNK = 256


def iter_map_chunks(catalog: Catalog, ids: list[str], chunk: int = _CHUNK) -> Iterator[np.ndarray]:
    """``[n, 1280, 7, 7]`` float32 maps of ``ids`` in chunks, from (and into) the activation cache."""
    from samestyle.features.activations import ActivationExtractor, activation_cache, extract_activations
    from samestyle.paths import cache_dir

    ex = ActivationExtractor("map", num_threads=1)
    cache = activation_cache(cache_dir() / "features", ex)
    for s in range(0, len(ids), chunk):
        acts = extract_activations(sub_catalog(catalog, ids[s : s + chunk]), ex, cache, progress=False)
        yield acts.values.astype(np.float32).reshape(-1, *ex.shape)


def tokenize_titles(titles: list[str], max_tokens: int) -> tuple[np.ndarray, Any]:
    """MiniLM word-piece ids ``[N, max_tokens]`` (no [CLS]/[SEP], 0-padded) and the loaded encoder."""
    from samestyle.models.text import MiniLMTextEncoder

    enc = MiniLMTextEncoder(num_threads=1)
    out = np.zeros((len(titles), max_tokens), dtype=np.int64)
    for i, t in enumerate(titles):
        ids = enc._tokenizer(t, add_special_tokens=False, truncation=True, max_length=max_tokens)["input_ids"]
        out[i, : len(ids)] = ids
    return out, enc


def _labels(catalog: Catalog, ids: list[str], level: int) -> tuple[np.ndarray, list[str]]:
    vals = [c[level] if len(c) > level else "" for c in (catalog.get(i).category for i in ids)]
    names = sorted(set(vals))
    pos = {n: j for j, n in enumerate(names)}
    return np.array([pos[v] for v in vals], dtype=np.int64), names


def prepare_data(
    catalog: Catalog,
    subset: Subset,
    joint: Any,
    path: Path,
    pca_dim: int = 256,
    max_tokens: int = 24,
    pca_products: int = 400,
) -> Path:
    """Write ``path`` (a ``.npz``) for ``subset`` (see the module doc); ``joint`` is an issue-B JointModel."""
    import torch

    ids = subset.ids
    n_train = len(subset.train)
    sample = next(iter_map_chunks(catalog, subset.train[:pca_products], chunk=pca_products))
    pca = PatchPCA.fit(kaleido_patches(sample).reshape(-1, sample.shape[1]), pca_dim)
    tok, enc = tokenize_titles([catalog.get(i).title for i in ids], max_tokens)
    vocab = np.unique(tok)  # sorted, vocab[0] == 0 (padding) when any title is shorter than max_tokens
    if vocab[0] != 0:
        vocab = np.concatenate([[0], vocab])
    local = np.searchsorted(vocab, tok)  # [N, T]
    table = enc._model.embeddings.word_embeddings.weight.detach().numpy()[vocab].astype(np.float32)
    table[0] = 0.0
    words = enc._tokenizer.convert_ids_to_tokens(vocab.tolist())
    with torch.inference_mode():
        tvec = joint.encode_text(torch.from_numpy(enc.encode_texts(words).astype(np.float32))).numpy()
    patches = np.zeros((len(ids), 55, pca_dim), dtype=np.float16)
    align = np.full(tok.shape, -np.inf, dtype=np.float32)
    start = 0
    for maps in iter_map_chunks(catalog, ids):
        p = kaleido_patches(maps)  # [n, 55, 1280]
        n = len(p)
        patches[start : start + n] = pca.transform(p).astype(np.float16)
        unit = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-6)
        with torch.inference_mode():
            pj = (
                joint.encode_image(torch.from_numpy(unit.reshape(-1, p.shape[-1]))).numpy().reshape(n, 55, -1)
            )
        sim = np.einsum("ntd,npd->ntp", tvec[local[start : start + n]], pj).max(-1)  # [n, T]
        align[start : start + n] = np.where(local[start : start + n] > 0, sim, -np.inf)
        start += n
        logger.info("patches: %d / %d products", start, len(ids))
    scale = float(np.linalg.norm(patches[:n_train].astype(np.float32), axis=-1).mean())
    sub, sub_names = _labels(catalog, ids, 1)
    art, art_names = _labels(catalog, ids, 2)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh, ids=np.array(ids), is_train=np.arange(len(ids)) < n_train,
            patches=(patches.astype(np.float32) / scale).astype(np.float16), patch_scale=scale,
            tokens=local, token_table=table, vocab=vocab, align=align, sub=sub, art=art,
            sub_names=np.array(sub_names), art_names=np.array(art_names),
            pca_mean=pca.mean, pca_components=pca.components,
        )  # fmt: skip
    return path


def load_data(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``data.npz`` written by ``prepare_data``."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
