"""Cached backbone activations for the trainable towers: intermediate EfficientNet-Lite0 tensors per product.

A tower (``samestyle.models.towers``) needs one cached input per product, named by ``tower_input_kind``:
``"map"`` (the final ``[1280, 7, 7]`` map, for attention pooling) or ``"act{b}"`` (the input of MBConv
block ``b``, for fine-tuning the blocks above it). They are computed by an ONNX export of the *lower*
part of the backbone only (stem + blocks ``0..b-1``; everything for ``"map"``), exported once to
``cache_dir()/onnx/efficientnet-lite0-<kind>-v1.onnx`` (atomic, sidecar-checked, as ``models.image``)
and run with ONNX Runtime, with the image encoder's preprocessing.

Storage: only the kind the tower needs, float16, in a ``FeatureCache`` keyed by (product id, image
content hash) as ``extract_features`` does, so re-runs only encode new or changed products. For the
44k-product Myntra catalogue: ``act15`` (192x7x7) ~0.83 GB, ``act16`` (320x7x7) ~1.4 GB, ``map``
~5.5 GB. The dense result is float16 in catalogue order (never a float32 copy of the catalogue).

Example:
    >>> ex = ActivationExtractor("act15")  # doctest: +SKIP
    >>> cache = activation_cache(cache_dir() / "features", ex)  # doctest: +SKIP
    >>> acts = extract_activations(catalog, ex, cache)  # doctest: +SKIP
    >>> acts.values.shape, acts.values.dtype  # doctest: +SKIP
    ((44446, 9408), dtype('float16'))
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from samestyle.catalog.store import Catalog
from samestyle.errors import DependencyError, SamestyleError
from samestyle.features.cache import FeatureCache, Key
from samestyle.features.extract import _CacheWriter, _image_work, text_sha256
from samestyle.fsio import file_lock, file_sha256
from samestyle.models.base import ImageEncoder
from samestyle.models.image import _is_valid_export, _sidecar, available_cores
from samestyle.models.preprocess import ImageInput, PreprocessConfig
from samestyle.models.text_towers import MiniLMHiddenStates
from samestyle.models.towers import input_dim, input_shape
from samestyle.paths import cache_dir

logger = logging.getLogger(__name__)

OPSET = 17
Batches = Iterable[tuple[np.ndarray, np.ndarray, int]]
"""``(rows, vectors [len(rows), dim], products consumed)`` per batch, as in ``features.extract``."""


def lower_onnx_path(kind: str, root: Path | None = None) -> Path:
    """``<root or cache_dir()>/onnx/efficientnet-lite0-<kind>-v1.onnx``."""
    input_shape(kind)  # validates the kind
    return (root or cache_dir()) / "onnx" / f"efficientnet-lite0-{kind}-v1.onnx"


def _export_lower(kind: str, path: Path) -> None:
    import torch

    from samestyle.fsio import atomic_path, write_json
    from samestyle.models.image import load_torch_model
    from samestyle.models.towers import LowerBackbone

    module = LowerBackbone(load_torch_model(), kind).eval()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(2, 3, 224, 224),),
            str(tmp),
            input_names=["pixels"],
            output_names=["act"],
            dynamic_axes={"pixels": {0: "batch"}, "act": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    meta = {"bytes": path.stat().st_size, "sha256": file_sha256(path), "opset": OPSET, "kind": kind}
    write_json(_sidecar(path), meta)
    logger.info("exported EfficientNet-Lite0 up to %s to %s", kind, path)


def ensure_lower_onnx(kind: str, path: Path | None = None, force: bool = False) -> Path:
    """A valid ONNX graph of the backbone up to ``kind``, exported first if missing or broken."""
    path = path or lower_onnx_path(kind)
    if not force and _is_valid_export(path):
        return path
    with file_lock(path.with_name(path.name + ".lock")):
        if force or not _is_valid_export(path):
            _export_lower(kind, path)
    return path


class ActivationExtractor(ImageEncoder):
    """The lower EfficientNet-Lite0 on ONNX Runtime: images -> flattened ``kind`` activations.

    An ``ImageEncoder`` with ``dim = prod(input_shape(kind))``, so ``encode_images`` gives
    ``[N, dim]`` float32 and the batching / preprocessing are those of the image encoder.

    Args:
        kind: "map" or "act0".."act16" (see ``models.towers.tower_input_kind``).
        model_path: the ONNX file; ``lower_onnx_path(kind)`` when None (exported on first use).
        num_threads: ONNX Runtime intra-op threads; all available cores when None.
        preprocess: a non-default preprocessing (224 px only); changes ``name``.
    """

    def __init__(
        self,
        kind: str,
        model_path: Path | None = None,
        num_threads: int | None = None,
        preprocess: PreprocessConfig | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DependencyError(f"onnxruntime is not installed ({exc}): pip install onnxruntime") from None
        self.kind = kind
        self.shape = input_shape(kind)
        self.dim = input_dim(kind)
        self.name = f"efficientnet-lite0/onnx/v1/{kind}"
        if preprocess is not None and preprocess != PreprocessConfig():
            if preprocess.size != 224:
                raise SamestyleError(f"the activations need 224 px inputs, got size={preprocess.size}")
            self.preprocess_config = preprocess
            self.name += f"+pp-{preprocess.fingerprint()}"
        self.model_path = ensure_lower_onnx(kind, model_path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads or available_cores()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(self.model_path), opts, providers=["CPUExecutionProvider"])

    def _encode_image_batch(self, pixels: np.ndarray) -> np.ndarray:
        act = self._session.run(["act"], {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})[0]
        return act.reshape(len(pixels), self.dim)  # [N, dim]


@dataclass
class ActivationMatrix:
    """Cached tower inputs of every catalogue product, catalogue order.

    Attributes:
        ids: product ids.
        values: ``[N, dim]`` float16 (flattened ``shape``); zero rows where ``present`` is False.
        present: ``[N]`` bool; False when the product had no usable input.
        kind: "map", "act{b}" or "hidden{l}" (text).
        shape: per-product shape of one row, e.g. ``(192, 7, 7)``.
    """

    ids: list[str]
    values: np.ndarray
    present: np.ndarray
    kind: str
    shape: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ids)


def activation_cache(
    root: Path, extractor: ImageEncoder | MiniLMHiddenStates, dtype: str = "float16"
) -> FeatureCache:
    """The ``FeatureCache`` for an extractor (image or text) under ``root`` (float16 by default)."""
    return FeatureCache(root, extractor.name, extractor.dim, dtype=dtype)


def _fill_dense(
    n: int,
    keys: dict[int, Key],
    run: Callable[[list[int], int], Batches],
    cache: FeatureCache | None,
    dim: int,
    opts: tuple[int, bool, str],
) -> tuple[np.ndarray, np.ndarray]:
    """Read cached rows in chunks into a float16 ``[n, dim]`` array, compute the rest and cache them."""
    batch_size, progress, desc = opts
    out = np.zeros((n, dim), dtype=np.float16)
    present = np.zeros(n, dtype=bool)
    rows = sorted(keys)
    missing: list[int] = rows
    if cache is not None and rows:
        missing = []
        step = max(1, (64 << 20) // (4 * dim))  # ~64 MB of float32 per lookup
        for s in range(0, len(rows), step):
            part = rows[s : s + step]
            cached, found = cache.lookup([keys[r] for r in part])
            hit = np.asarray(part, dtype=np.int64)[found]
            out[hit], present[hit] = cached[found], True
            missing += [r for r, f in zip(part, found, strict=True) if not f]
    logger.info("%s: %d products, %d cached, %d to compute, %d without usable input",
                desc, n, len(rows) - len(missing), len(missing), n - len(rows))  # fmt: skip
    writer = _CacheWriter(cache, max(64, (256 << 20) // (2 * dim)))  # flush every ~256 MB of float16
    bar = tqdm(total=len(missing), unit="product", disable=not progress, desc=desc)
    try:
        for got, vecs, consumed in run(missing, batch_size):
            half = vecs.astype(np.float16)
            out[got], present[got] = half, True
            writer.add([keys[int(r)] for r in got], half)
            bar.update(consumed)
    finally:
        writer.flush()
        bar.close()
    return out, present


def extract_activations(
    catalog: Catalog,
    extractor: ImageEncoder,
    cache: FeatureCache | None,
    batch_size: int = 64,
    progress: bool = True,
    *,
    decode_workers: int = 2,
) -> ActivationMatrix:
    """Tower inputs of every catalogue product, reusing and filling ``cache``.

    Args:
        catalog: products (order kept) and their image root.
        extractor: usually an ``ActivationExtractor``; any ``ImageEncoder`` works (fakes in tests).
        cache: ``activation_cache(root, extractor)``, or None to compute everything.
        batch_size: inference batch size.
        progress: tqdm bar on stderr.
        decode_workers: image decode threads running one batch ahead of inference.

    Returns:
        float16 values, catalogue order; products without a usable image: zero rows, present False.
    """
    if cache is not None and (cache.encoder_name != extractor.name or cache.dim != extractor.dim):
        raise ValueError(f"cache is for {cache.encoder_name!r} (dim {cache.dim}), not {extractor.name!r}")
    pool = ThreadPoolExecutor(decode_workers, "decode") if decode_workers > 0 else None
    try:
        keys, run = _image_work(catalog, extractor, pool)
        values, present = _fill_dense(
            len(catalog), keys, run, cache, extractor.dim, (batch_size, progress, extractor.name)
        )
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    shape = tuple(getattr(extractor, "shape", (extractor.dim,)))
    return ActivationMatrix(catalog.ids, values, present, str(getattr(extractor, "kind", "")), shape)


def extract_text_hidden(
    catalog: Catalog,
    lower: MiniLMHiddenStates,
    cache: FeatureCache | None,
    batch_size: int = 128,
    progress: bool = True,
) -> ActivationMatrix:
    """Cached MiniLM hidden states (``text_towers``' rows) of every product's text, catalogue order.

    Keys are (product id, sha256 of ``product.text``), as for the frozen text features.
    """
    if cache is not None and (cache.encoder_name != lower.name or cache.dim != lower.dim):
        raise ValueError(f"cache is for {cache.encoder_name!r} (dim {cache.dim}), not {lower.name!r}")
    keys = {row: (p.id, text_sha256(p.text)) for row, p in enumerate(catalog.products)}

    def run(rows: list[int], size: int) -> Batches:
        rows = sorted(rows, key=lambda r: len(catalog.products[r].text))  # less padding per batch
        for s in range(0, len(rows), size):
            part = rows[s : s + size]
            vecs = lower.encode([catalog.products[r].text for r in part])  # [B, dim]
            yield np.asarray(part, dtype=np.int64), vecs, len(part)

    values, present = _fill_dense(
        len(catalog), keys, run, cache, lower.dim, (batch_size, progress, lower.name)
    )
    return ActivationMatrix(catalog.ids, values, present, lower.kind, lower.shape)


def query_activations(
    extractor: ImageEncoder, images: Sequence[ImageInput], batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Tower inputs for new query images (PIL images or paths), at search time.

    Returns ``values [N, dim]`` float16 and ``present [N]`` bool; an image that cannot be opened gets a
    zero row, ``present=False`` and a warning, never an exception.
    """
    out = np.zeros((len(images), extractor.dim), dtype=np.float16)
    present = np.zeros(len(images), dtype=bool)
    pixels: list[np.ndarray] = []
    for i, item in enumerate(images):
        try:
            pixels.append(extractor.preprocess(item))
            present[i] = True
        except (SamestyleError, OSError, ValueError) as exc:
            logger.warning("query image %d (%s): not usable (%s)", i, item, exc)
    if pixels:
        out[present] = extractor.encode_pixels(np.stack(pixels), batch_size=batch_size)
    return out, present


__all__ = [
    "ActivationExtractor",
    "ActivationMatrix",
    "activation_cache",
    "ensure_lower_onnx",
    "extract_activations",
    "extract_text_hidden",
    "lower_onnx_path",
    "query_activations",
]
