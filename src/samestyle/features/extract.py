"""Backbone features for a whole catalogue, computed once per (product, content) and cached.

``extract_features`` keys each product by ``(product_id, content_hash)``: for images the ingest-time
``image_sha256`` (or the sha256 of the file bytes when ingest did not record one), for text the sha256 of
``product.text``. Cached keys are read back; only the rest are encoded, so a re-run after adding or
changing products costs only the new work.

Images are decoded and preprocessed by a small thread pool one batch ahead of inference (Pillow releases
the GIL while decoding and resizing). Measured on a shared 2-core VM with 60x80 thumbnails (decode +
preprocess ~2.3 ms an image, ONNX ~9 ms at one thread): 2 decode threads gave 186 vs 110 products/s
with 2 ONNX threads (medians of 3; noisy) and 107 vs 103 with 1, so it stays on (one decode thread per
core by default).
A product with no usable image (status not ok/unchecked, or a file that fails to open now) gets a zero
row and ``present=False``, with a warning naming it: never a crash.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from samestyle.catalog.store import Catalog
from samestyle.errors import SamestyleError
from samestyle.features.cache import FeatureCache, Key
from samestyle.fsio import file_sha256
from samestyle.models.base import ImageEncoder, TextEncoder
from samestyle.types import Modality, Product

logger = logging.getLogger(__name__)

TEXT_CHUNK_BATCHES = 8  # text batches handed to encode_texts at once (it sorts them by length)


@dataclass
class FeatureMatrix:
    """One vector per catalogue product, in catalogue order.

    Attributes:
        ids: product ids, catalogue order.
        vectors: ``[N, D]`` float32; zero rows where ``present`` is False.
        present: ``[N]`` bool; False when the product had no usable input (e.g. no or a broken image).
        encoder_name: the encoder's stable name.
        modality: image or text.
    """

    ids: list[str]
    vectors: np.ndarray
    present: np.ndarray
    encoder_name: str
    modality: Modality

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _where(path: Path, exc: Exception) -> str:
    """The error text, prefixed with the path unless it already names it."""
    text = str(exc)
    return text if str(path) in text else f"{path}: {text}"


def _image_key(catalog: Catalog, product: Product) -> tuple[Key, Path] | None:
    """The cache key and file of a product's image, or None when it has no usable one."""
    path = catalog.image_path(product)
    if not product.has_image or path is None:
        return None
    if product.image_sha256:
        return (product.id, product.image_sha256), path
    try:
        return (product.id, file_sha256(path)), path
    except OSError as exc:
        logger.warning("product %s: no image vector (%s)", product.id, _where(path, exc))
        return None


def _load_pixels(encoder: ImageEncoder, product_id: str, path: Path) -> np.ndarray | None:
    """Preprocessed ``[3, H, W]`` pixels, or None (with a warning) when the image cannot be used."""
    try:
        return encoder.preprocess(path)
    except (SamestyleError, OSError, ValueError) as exc:
        logger.warning("product %s: no image vector (%s)", product_id, _where(path, exc))
        return None


Batches = Iterator[tuple[np.ndarray, np.ndarray, int]]
"""Yields ``(rows, vectors [len(rows), D], products consumed)``; failed rows are left out."""


def _submit(
    pool: ThreadPoolExecutor, encoder: ImageEncoder, chunk: Sequence[tuple[int, str, Path]]
) -> list[Future[np.ndarray | None]]:
    return [pool.submit(_load_pixels, encoder, pid, path) for _, pid, path in chunk]


def _image_batches(
    encoder: ImageEncoder,
    todo: Sequence[tuple[int, str, Path]],
    batch_size: int,
    pool: ThreadPoolExecutor | None,
) -> Batches:
    """Encode ``todo`` (row, id, path) in batches. With a pool, the next batch is decoded while the
    current one is encoded."""
    chunks = [todo[s : s + batch_size] for s in range(0, len(todo), batch_size)]
    pending = _submit(pool, encoder, chunks[0]) if pool is not None and chunks else []
    for k, chunk in enumerate(chunks):
        if pool is not None:
            current = pending
            pending = _submit(pool, encoder, chunks[k + 1]) if k + 1 < len(chunks) else []
            arrays = [f.result() for f in current]
        else:
            arrays = [_load_pixels(encoder, pid, path) for _, pid, path in chunk]
        rows = np.array(
            [row for (row, _, _), a in zip(chunk, arrays, strict=True) if a is not None], np.int64
        )
        good = [a for a in arrays if a is not None]
        if good:
            yield rows, encoder.encode_pixels(np.stack(good), batch_size=batch_size), len(chunk)  # [B, D]
        else:
            yield rows, np.zeros((0, encoder.dim), dtype=np.float32), len(chunk)


def _text_batches(encoder: TextEncoder, texts: Sequence[tuple[int, str]], batch_size: int) -> Batches:
    """Encode ``texts`` (row, text) a few batches at a time."""
    step = batch_size * TEXT_CHUNK_BATCHES
    for start in range(0, len(texts), step):
        chunk = texts[start : start + step]
        rows = np.array([row for row, _ in chunk], dtype=np.int64)
        yield rows, encoder.encode_texts([t for _, t in chunk], batch_size=batch_size), len(chunk)


class _CacheWriter:
    """Buffers new vectors and puts them into the cache every ``flush_rows`` rows."""

    def __init__(self, cache: FeatureCache | None, flush_rows: int) -> None:
        self.cache, self.flush_rows = cache, flush_rows
        self.keys: list[Key] = []
        self.vectors: list[np.ndarray] = []

    def add(self, keys: list[Key], vectors: np.ndarray) -> None:
        if self.cache is None or not keys:
            return
        self.keys.extend(keys)
        self.vectors.append(vectors)
        if len(self.keys) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if self.cache is not None and self.keys:
            self.cache.put(self.keys, np.concatenate(self.vectors))
        self.keys, self.vectors = [], []


Work = tuple[dict[int, Key], Callable[[list[int], int], Batches]]
"""The cache key of every product row that has usable input, and how to encode a list of rows."""


def _image_work(catalog: Catalog, encoder: ImageEncoder, pool: ThreadPoolExecutor | None) -> Work:
    mapper = pool.map if pool is not None else map
    found = dict(enumerate(mapper(lambda p: _image_key(catalog, p), catalog.products)))
    paths = {row: f[1] for row, f in found.items() if f is not None}

    def run(rows: list[int], batch_size: int) -> Batches:
        todo = [(r, catalog.products[r].id, paths[r]) for r in rows]
        return _image_batches(encoder, todo, batch_size, pool)

    return {row: f[0] for row, f in found.items() if f is not None}, run


def _text_work(catalog: Catalog, encoder: TextEncoder) -> Work:
    keys = {row: (p.id, text_sha256(p.text)) for row, p in enumerate(catalog.products)}

    def run(rows: list[int], batch_size: int) -> Batches:
        return _text_batches(encoder, [(r, catalog.products[r].text) for r in rows], batch_size)

    return keys, run


def extract_features(
    catalog: Catalog,
    encoder: ImageEncoder | TextEncoder,
    cache: FeatureCache | None,
    batch_size: int = 64,
    progress: bool = True,
    *,
    decode_workers: int | None = None,
    flush_rows: int = 4096,
) -> FeatureMatrix:
    """Vectors of every catalogue product for one encoder, reusing and filling ``cache``.

    Args:
        catalog: the products (catalogue order is kept) and their image root.
        encoder: an image or a text encoder.
        cache: a ``FeatureCache`` for this encoder (``cache.encoder_name == encoder.name``), or None.
        batch_size: inference batch size.
        progress: show a tqdm bar (products/s) on stderr.
        decode_workers: image decode threads running one batch ahead of inference; 0 decodes inline;
            None: one per available core.
        flush_rows: new vectors are written to the cache every this many rows (and at the end), so an
            interrupted run keeps most of its work.

    Example:
        >>> fm = extract_features(catalog, FakeTextEncoder(), None, progress=False)  # doctest: +SKIP
        >>> fm.vectors.shape  # doctest: +SKIP
        (1000, 32)
    """
    if cache is not None and (cache.encoder_name != encoder.name or cache.dim != encoder.dim):
        raise ValueError(
            f"cache is for {cache.encoder_name!r} (dim {cache.dim}), encoder is {encoder.name!r}"
        )
    if decode_workers is None:
        from samestyle.models.image import available_cores

        decode_workers = available_cores()
    pool = ThreadPoolExecutor(decode_workers, "decode") if decode_workers > 0 else None
    try:
        if isinstance(encoder, ImageEncoder):
            work = _image_work(catalog, encoder, pool)
        else:
            work = _text_work(catalog, encoder)
        return _fill(catalog, encoder, cache, work, batch_size, progress, flush_rows)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _fill(
    catalog: Catalog,
    encoder: ImageEncoder | TextEncoder,
    cache: FeatureCache | None,
    work: Work,
    batch_size: int,
    progress: bool,
    flush_rows: int,
) -> FeatureMatrix:
    """Read cached rows, compute the missing ones in batches, write them back."""
    keys, run = work
    vectors = np.zeros((len(catalog), encoder.dim), dtype=np.float32)
    present = np.zeros(len(catalog), dtype=bool)
    rows = sorted(keys)
    missing = rows
    if cache is not None and rows:
        cached, found = cache.lookup([keys[i] for i in rows])
        hit = np.array(rows, dtype=np.int64)[found]
        vectors[hit], present[hit] = cached[found], True
        missing = [r for r, f in zip(rows, found, strict=True) if not f]
    logger.info(
        "%s: %d products, %d cached, %d to encode, %d without usable input",
        encoder.name,
        len(catalog),
        len(rows) - len(missing),
        len(missing),
        len(catalog) - len(rows),
    )
    writer = _CacheWriter(cache, flush_rows)
    bar = tqdm(total=len(missing), unit="product", disable=not progress, desc=encoder.name)
    try:
        for got, vecs, consumed in run(missing, batch_size):
            vectors[got], present[got] = vecs, True
            writer.add([keys[int(r)] for r in got], vecs)
            bar.update(consumed)
    finally:
        writer.flush()
        bar.close()
    ids = [p.id for p in catalog.products]
    return FeatureMatrix(ids, vectors, present, encoder.name, encoder.modality)


__all__ = ["FeatureMatrix", "extract_features", "file_sha256", "text_sha256"]
