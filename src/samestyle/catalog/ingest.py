"""Catalogue ingest: load files, validate rows, check every image, write the catalogue folder.

A product whose image is missing, corrupt or too large is *kept* (it stays searchable by text) with
``image_status`` set and a non-fatal reject naming file, row, field ``image`` and the reason. Rows that
cannot become a product are dropped with a fatal reject. Everything lands in ``rejects.csv``.

Speed (44,446-row Myntra styles CSV + 44,072 60x80 JPEGs, shared 2-core machine): 7.5 s with one
thread (2.6 s of it loading and validating rows, ~0.12-0.16 ms per image check); 2 or 4 threads took
9.4-9.8 s there, the header parsing in Pillow being GIL-bound.

Example:
    >>> report = ingest([Path("products.csv")], Path("cat"), ColumnMapping(title="name"))  # doctest: +SKIP
    >>> report.products_written, report.images_corrupt  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from samestyle.catalog.images import DEFAULT_MAX_PIXELS, ImageCheck, check_image
from samestyle.catalog.loaders import Format, open_rows
from samestyle.catalog.store import REJECTS_FILE, write_catalog
from samestyle.catalog.validate import ColumnMapping, Validator
from samestyle.errors import CatalogError
from samestyle.types import ImageStatus, Product, Reject

logger = logging.getLogger(__name__)

SAMPLE_REJECTS = 10
_REMOTE = ("http://", "https://", "ftp://", "s3://", "gs://")


@dataclass
class IngestReport:
    """What one ingest did. ``rows_rejected`` counts dropped rows; ``flagged`` kept-but-flagged problems."""

    out_dir: Path
    rows_read: int
    products_written: int
    rows_rejected: int
    flagged: int
    images_ok: int
    images_missing: int
    images_corrupt: int
    images_too_large: int
    images_unchecked: int
    wall_seconds: float
    rejects_file: Path
    sample_rejects: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for a log or a terminal."""
        return (
            f"{self.products_written} products from {self.rows_read} rows into {self.out_dir} "
            f"({self.rows_rejected} rows dropped, {self.flagged} flagged; images ok {self.images_ok}, "
            f"missing {self.images_missing}, corrupt {self.images_corrupt}, "
            f"too large {self.images_too_large}, unchecked {self.images_unchecked}) "
            f"in {self.wall_seconds:.1f}s; details in {self.rejects_file}"
        )


@dataclass
class _Entry:
    """An accepted product on its way to the catalogue, with where it came from and its image file."""

    file: str
    row: int | None
    product: Product
    path: Path | None  # the image file to check; None: no image, or one that cannot be checked


@dataclass(frozen=True)
class _Options:
    check_images: bool
    max_pixels: int
    progress: bool
    workers: int


def _image_path(image: str | None, root: Path | None) -> Path | None:
    if not image or image.lower().startswith(_REMOTE):
        return None
    path = Path(image).expanduser()
    return path if path.is_absolute() or root is None else root / path


def _catalog_root(paths: Sequence[Path], image_root: Path | None) -> Path | None:
    """The one folder relative image paths resolve against: ``image_root``, else the files' folder."""
    if image_root is not None:
        return image_root
    folders = {Path(p).resolve().parent for p in paths}
    return folders.pop() if len(folders) == 1 else None


def ingest(
    paths: Sequence[Path],
    out_dir: Path,
    mapping: ColumnMapping | None = None,
    image_root: Path | None = None,
    check_images: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = False,
    workers: int = 1,
    fmt: str | Format | None = None,
    encoding: str = "utf-8",
) -> IngestReport:
    """Turn catalogue files into a catalogue folder (``catalog.parquet``, ``rejects.csv``, ``catalog.json``).

    Args:
        paths: CSV/TSV/JSONL/Parquet files (format from the extension unless ``fmt``); ids must be unique
            across all of them.
        out_dir: catalogue folder to write.
        mapping: which columns feed which product field (default: columns named like the fields).
        image_root: folder relative image paths resolve against; default each file's own folder.
        check_images: open and fully decode every image; off: ``image_status`` stays UNCHECKED.
        max_pixels: images over this many pixels are TOO_LARGE (never decoded).
        progress: show a progress bar while checking images.
        workers: threads checking images. JPEG decoding and hashing release the GIL but header parsing
            does not; on a busy 2-core machine 1 thread was fastest (see the module notes), so measure.
        fmt: force one format for every file.
        encoding: text encoding of CSV/TSV/JSONL files.

    Raises:
        CatalogError: no files, or a file cannot be opened or lacks a required column.
    """
    start = time.perf_counter()
    if not paths:
        raise CatalogError("no catalogue files given; pass at least one CSV, JSONL or Parquet file")
    mapping = mapping or ColumnMapping()
    validator = Validator(mapping)
    root = _catalog_root(paths, image_root)
    entries: list[_Entry] = []
    rows_read = 0
    for path in paths:
        rows_read += _load_file(Path(path), validator, entries, image_root, root is None, fmt, encoding)
    meta = {
        "files": [str(p) for p in paths],
        "mapping": mapping.to_dict(),
        "encoding": encoding,
        "check_images": check_images,
        "max_pixels": max_pixels,
    }
    options = _Options(check_images, max_pixels, progress, workers)
    return _finish(entries, validator.rejects, out_dir, root, meta, rows_read, options, start)


def _load_file(
    path: Path,
    validator: Validator,
    entries: list[_Entry],
    image_root: Path | None,
    absolute: bool,
    fmt: str | Format | None,
    encoding: str,
) -> int:
    """Validate one file into ``entries``; returns the rows it had. ``absolute``: store image paths
    absolute (the files live in several folders and no image root was given)."""
    file_root = image_root if image_root is not None else path.resolve().parent
    with open_rows(path, fmt, encoding) as source:
        for row, product in validator.rows(source):
            image_path = _image_path(product.image, file_root)
            if absolute and image_path is not None:
                product = replace(product, image=str(image_path))
            entries.append(_Entry(source.name, row, product, image_path))
    logger.info("%s: %d rows read", source.name, source.rows_seen)
    return source.rows_seen


def ingest_products(
    products: Iterable[Product],
    out_dir: Path,
    image_root: Path | None = None,
    source: str | Mapping[str, Any] | None = None,
    check_images: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = False,
    workers: int = 1,
    rejects: Sequence[Reject] = (),
) -> IngestReport:
    """Write a catalogue from Products already in memory (dataset adapters use this).

    The products go through the same checks as file rows (required id and title, unique ids, text
    cleaning and limits, image checks); a reject names ``source`` as the file and the product's 1-based
    position as the row.

    Args:
        products: the products, image paths relative to ``image_root`` (or absolute).
        out_dir: catalogue folder to write.
        image_root: folder relative image paths resolve against.
        source: provenance for ``catalog.json``: a name, or a mapping (its ``dataset``, ``name`` or
            ``file`` entry names the source in rejects).
        check_images, max_pixels, progress, workers: as for :func:`ingest`.
        rejects: problems the caller already found (e.g. rows its own reader dropped); written too.
    """
    start = time.perf_counter()
    meta = dict(source) if isinstance(source, Mapping) else {"name": source or "products"}
    name = str(meta.get("dataset") or meta.get("name") or meta.get("file") or "products")
    validator = Validator()
    validator.rejects.extend(rejects)
    entries: list[_Entry] = []
    count = 0
    for count, product in enumerate(products, start=1):
        accepted = validator.accept(product, name, count)
        if accepted is not None:
            entries.append(_Entry(name, count, accepted, _image_path(accepted.image, image_root)))
    rows_read = count + sum(1 for r in rejects if r.fatal and r.row is not None)
    options = _Options(check_images, max_pixels, progress, workers)
    return _finish(entries, validator.rejects, out_dir, image_root, meta, rows_read, options, start)


def _check_all(paths: Iterable[Path], options: _Options) -> dict[Path, ImageCheck]:
    """Check each distinct image once, on ``options.workers`` threads."""
    unique = list(dict.fromkeys(paths))
    check: Callable[[Path], ImageCheck] = partial(check_image, max_pixels=options.max_pixels)
    with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
        results: Iterator[ImageCheck] = pool.map(check, unique) if options.workers > 1 else map(check, unique)
        if options.progress:
            from tqdm import tqdm

            results = iter(tqdm(results, total=len(unique), desc="checking images", unit="img"))
        return dict(zip(unique, results, strict=True))


def _with_image_status(entry: _Entry, checks: Mapping[Path, ImageCheck], rejects: list[Reject]) -> Product:
    """The entry's product with its image status; a non-fatal reject when the image is not usable."""
    product = entry.product
    if product.image is None:
        return replace(product, image_status=ImageStatus.MISSING, image_sha256=None)
    if entry.path is None:
        reason = f"{product.image}: remote images are not fetched; download them and map the local path"
        result = ImageCheck(ImageStatus.MISSING, None, reason, None, None)
    elif entry.path in checks:
        result = checks[entry.path]
    else:
        return product  # image checks are off: keep what the product says (UNCHECKED by default)
    if result.status is not ImageStatus.OK:
        reason = f"{result.status.value}: {result.reason}; the product is kept without an image"
        rejects.append(Reject(entry.file, entry.row, "image", reason, product.id, fatal=False))
    return replace(product, image_status=result.status, image_sha256=result.sha256)


def _finish(
    entries: list[_Entry],
    rejects: list[Reject],
    out_dir: Path,
    image_root: Path | None,
    meta: dict[str, Any],
    rows_read: int,
    options: _Options,
    start: float,
) -> IngestReport:
    """Check images, write the catalogue, count."""
    to_check = (e.path for e in entries if e.path is not None and e.product.image is not None)
    checks = _check_all(to_check, options) if options.check_images else {}
    rejects = list(rejects)
    products = [_with_image_status(e, checks, rejects) for e in entries]
    order = {name: i for i, name in enumerate(dict.fromkeys(r.file for r in rejects))}
    rejects.sort(key=lambda r: (order[r.file], r.row or 0))  # stable: file-level notes first per file
    write_catalog(out_dir, products, rejects, image_root=image_root, source=meta)
    status = {s: 0 for s in ImageStatus}
    for p in products:
        status[p.image_status] += 1
    report = IngestReport(
        out_dir=Path(out_dir),
        rows_read=rows_read,
        products_written=len(products),
        rows_rejected=sum(1 for r in rejects if r.fatal and r.row is not None),
        flagged=sum(1 for r in rejects if not r.fatal),
        images_ok=status[ImageStatus.OK],
        images_missing=status[ImageStatus.MISSING],
        images_corrupt=status[ImageStatus.CORRUPT],
        images_too_large=status[ImageStatus.TOO_LARGE],
        images_unchecked=status[ImageStatus.UNCHECKED],
        wall_seconds=round(time.perf_counter() - start, 3),
        rejects_file=Path(out_dir) / REJECTS_FILE,
        sample_rejects=[str(r) for r in rejects[:SAMPLE_REJECTS]],
    )
    logger.info("ingest: %s", report.summary())
    return report


__all__ = ["IngestReport", "ingest", "ingest_products"]
