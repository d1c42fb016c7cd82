"""The Myntra fashion catalogue (Kaggle "Fashion Product Images (Small)") as samestyle products.

Mapping of ``myntra_styles_full.csv.gz`` (44,446 rows) to :class:`Product`:

- ``id``: the ``id`` column as a string; ``title``: ``productDisplayName`` (stripped);
- ``category``: ``(masterCategory, subCategory, articleType)``, cut at the first empty level;
- ``attributes``: ``gender``, ``baseColour``, ``season``, ``year`` (``"2011.0"`` -> ``"2011"``), ``usage``;
  empty / ``NaN`` values are left out;
- ``image``: ``"<id>.jpg"``, relative to the unpacked ``images/`` folder (the catalogue's image root);
- ``supplier_id`` / ``price`` / ``description``: not in the data, left empty (nothing is invented).

Image sets: ``"60x80"`` (``myntra_small_images_60x80.tar.gz``, 44,072 ids) keeps every row; a product
without a photo stays in the catalogue and ingest marks its image MISSING. ``"224"``
(``myntra_224_images.tar.gz``, 9,583 ids in 10000-21539) keeps **only the products that have a 224 px
photo**; the others are left out silently (they are not errors). ``only_with_images`` (a list of image
sets) keeps only the products with a photo in **every** listed set, e.g. ``("60x80", "224")`` with either
image set gives the same products (9,572: 11 of the 224 px ids have no 60x80 photo), the clean A/B of
resolution in BENCHMARKS.md. ``"best"`` keeps every row like ``"60x80"`` but points each product that has a
224 px photo at it (``../../myntra-224/images/<id>.jpg``, relative to the 60x80 image root, so the catalogue
stays valid wherever the cache lives): the sharpest photo the data has for every product, the way a user
with mixed-quality supplier photos would ingest them.

Bad rows become fatal :class:`Reject` s naming the file and the 1-based data row: a wrong number of
fields, a missing id or title, a repeated id. A non-numeric year is dropped with a non-fatal Reject.

Held-out split: :func:`myntra_split`, fixed and deterministic (the rule is spelled out in
:mod:`samestyle.datasets.splits`, re-exported here). :func:`load_myntra_split` applies it to the real
catalogue with ``groups`` = the normalised title (:func:`title_group`: case-folded, whitespace
collapsed): the 44k products carry only 31k distinct titles, and products sharing a title must not
straddle train and test.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from samestyle.datasets.archive import dataset_folder, find_archive
from samestyle.datasets.splits import TEST_BUCKETS as TEST_BUCKETS
from samestyle.datasets.splits import VAL_BUCKETS as VAL_BUCKETS
from samestyle.datasets.splits import myntra_split, title_group
from samestyle.errors import DatasetError
from samestyle.types import Product, Reject

if TYPE_CHECKING:
    from samestyle.catalog.ingest import IngestReport

log = logging.getLogger(__name__)

MYNTRA_CSV = "myntra_styles_full.csv.gz"
MYNTRA_IMAGES: dict[str, tuple[str, str]] = {
    "60x80": ("myntra_small_images_60x80.tar.gz", "myntra-60x80"),
    "224": ("myntra_224_images.tar.gz", "myntra-224"),
}
"""Image set -> (archive file, cache folder name)."""
MYNTRA_IMAGE_SETS = (*MYNTRA_IMAGES, "best")
"""Every value of ``images``: the archives' sets and ``"best"`` (224 px where it exists, else 60x80)."""
CATEGORY_COLUMNS = ("masterCategory", "subCategory", "articleType")
ATTRIBUTE_COLUMNS = ("gender", "baseColour", "season", "year", "usage")
REQUIRED_COLUMNS = ("id", "productDisplayName", *CATEGORY_COLUMNS, *ATTRIBUTE_COLUMNS)
_EMPTY = frozenset({"", "nan", "none", "null", "na", "n/a"})


def _clean(value: str | None) -> str:
    value = (value or "").strip()
    return "" if value.lower() in _EMPTY else value


def _parse_row(
    row: list[str], header: list[str], file: str, rownum: int
) -> tuple[Product | None, list[Reject]]:
    """One CSV row -> a product (or None) and the problems found."""
    if len(row) != len(header):
        return None, [Reject(file, rownum, None, f"expected {len(header)} fields, got {len(row)}")]
    rec = dict(zip(header, row, strict=True))
    pid = _clean(rec["id"])
    if not pid:
        return None, [Reject(file, rownum, "id", "missing product id")]
    title = " ".join(_clean(rec["productDisplayName"]).split())
    if not title:
        return None, [Reject(file, rownum, "productDisplayName", "missing title", pid)]
    rejects: list[Reject] = []
    category: list[str] = []
    for col in CATEGORY_COLUMNS:
        if not (level := _clean(rec[col])):
            break
        category.append(level)
    attributes: dict[str, str] = {}
    for col in ATTRIBUTE_COLUMNS:
        if not (value := _clean(rec[col])):
            continue
        if col == "year":
            try:
                value = str(int(float(value)))
            except (ValueError, OverflowError):
                rejects.append(Reject(file, rownum, "year", f"not a year: {value!r}", pid, fatal=False))
                continue
        attributes[col] = value
    return Product(
        id=pid, title=title, category=tuple(category), attributes=attributes, image=f"{pid}.jpg"
    ), rejects


def _records(reader: Iterator[list[str]], file: str) -> Iterator[tuple[int, list[str] | Reject]]:
    """(1-based data row, fields) for each record; a record the csv module cannot parse is a Reject."""
    rownum = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            rownum += 1
            yield rownum, Reject(file, rownum, None, f"malformed CSV line: {exc}")
            continue
        rownum += 1
        yield rownum, row


def read_myntra_csv(
    path: str | os.PathLike[str],
    keep: Callable[[str], bool] | None = None,
    limit: int | None = None,
) -> tuple[list[Product], list[Reject], int]:
    """Parse the styles CSV (plain or ``.gz``).

    Args:
        path: the CSV file.
        keep: only rows whose id passes this test are parsed further (others are skipped, not rejected).
        limit: stop after this many accepted products.

    Returns:
        (products in file order, rejects, data rows read).

    Raises:
        DatasetError: the file is missing, not gzip/UTF-8, or lacks a required column.
    """
    path = Path(path)
    products: list[Product] = []
    rejects: list[Reject] = []
    seen: set[str] = set()
    rownum = 0
    if limit is not None and limit <= 0:
        return products, rejects, rownum
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            if missing := [c for c in REQUIRED_COLUMNS if c not in header]:
                raise DatasetError(
                    f"{path}: missing column(s) {', '.join(missing)} (have: {', '.join(header)})"
                )
            id_col = header.index("id")
            for rownum, row in _records(reader, path.name):
                if isinstance(row, Reject):
                    rejects.append(row)
                    continue
                if not any(cell.strip() for cell in row):
                    continue
                if keep is not None and len(row) == len(header) and not keep(row[id_col].strip()):
                    continue
                product, problems = _parse_row(row, header, path.name, rownum)
                if product is not None and product.id in seen:
                    problems = [Reject(path.name, rownum, "id", f"duplicate id '{product.id}'", product.id)]
                    product = None
                rejects.extend(problems)
                if product is not None:
                    seen.add(product.id)
                    products.append(product)
                    if limit is not None and len(products) >= limit:
                        break
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found; set $SAMESTYLE_DATA or pass --data-dir") from None
    except (gzip.BadGzipFile, EOFError, UnicodeDecodeError, OSError) as exc:
        raise DatasetError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    return products, rejects, rownum


def myntra_image_root(
    images: str = "60x80",
    data_dir: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> Path:
    """Unpack (once, into the cache) the chosen image set and return its ``images/`` folder."""
    if images not in MYNTRA_IMAGES:
        raise DatasetError(f"unknown Myntra image set '{images}'; choose one of: {', '.join(MYNTRA_IMAGES)}")
    archive, folder = MYNTRA_IMAGES[images]
    root = dataset_folder(archive, folder, data_dir, cache) / "images"
    if not root.is_dir():
        raise DatasetError(f"{root}: the archive {archive} has no images/ folder")
    return root


def _photo_ids(root: Path) -> set[str]:
    return {name[:-4] for name in os.listdir(root) if name.endswith(".jpg")}


def myntra_products(
    data_dir: str | os.PathLike[str] | None = None,
    images: str = "60x80",
    limit: int | None = None,
    cache: str | os.PathLike[str] | None = None,
    only_with_images: Sequence[str] = (),
) -> tuple[list[Product], Path, list[Reject]]:
    """Myntra products, the folder their images are relative to, and the rows that were rejected.

    Args:
        data_dir: folder with the Myntra files; default ``$SAMESTYLE_DATA`` or ``../shared/data``.
        images: ``"60x80"`` (every product), ``"224"`` (only products with a 224 px photo) or ``"best"``
            (every product; the 224 px photo where there is one, else the 60x80 one).
        limit: only the first ``limit`` accepted products (in file order).
        cache: cache root for the unpacked images.
        only_with_images: keep only products with a photo (a ``<id>.jpg`` file) in every one of these
            image sets; their image still comes from ``images``.

    Example:
        >>> products, image_root, rejects = myntra_products(limit=200)  # doctest: +SKIP
    """
    if images not in MYNTRA_IMAGE_SETS:
        choices = ", ".join(MYNTRA_IMAGE_SETS)
        raise DatasetError(f"unknown Myntra image set '{images}'; choose one of: {choices}")
    csv_path = find_archive(MYNTRA_CSV, data_dir)
    image_root = myntra_image_root("60x80" if images == "best" else images, data_dir, cache)
    required = list(dict.fromkeys([*only_with_images, *(["224"] if images == "224" else [])]))
    keep: Callable[[str], bool] | None = None
    if required:
        have = set.intersection(*(_photo_ids(myntra_image_root(s, data_dir, cache)) for s in required))
        keep = have.__contains__
    products, rejects, rows = read_myntra_csv(csv_path, keep=keep, limit=limit)
    if images == "best":
        products = _prefer_224(products, image_root, myntra_image_root("224", data_dir, cache))
    log.info("%s: %d rows read, %d products, %d rejects", csv_path.name, rows, len(products), len(rejects))
    return products, image_root, rejects


def _prefer_224(products: list[Product], root: Path, root_224: Path) -> list[Product]:
    """Point every product with a 224 px photo at it, as a path relative to ``root``."""
    sharp = _photo_ids(root_224)
    rel = Path(os.path.relpath(root_224, root))
    out = [p if p.id not in sharp else replace(p, image=str(rel / f"{p.id}.jpg")) for p in products]
    n_sharp = sum(p.id in sharp for p in products)
    log.info("image set 'best': %d of %d products use the 224 px photo", n_sharp, len(products))
    return out


def build_myntra_catalog(
    out_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    images: str = "60x80",
    limit: int | None = None,
    check_images: bool = True,
    cache: str | os.PathLike[str] | None = None,
    workers: int = 1,
    progress: bool = False,
    only_with_images: Sequence[str] = (),
) -> IngestReport:
    """Write the Myntra catalogue to ``out_dir`` via ``ingest_products`` (images checked, rejects kept).

    The CSV's own rejects (missing title, malformed or repeated rows) land in ``rejects.csv`` beside
    ingest's (an image that is missing or corrupt: the product is kept, flagged). ``workers`` threads
    check images; ``progress`` shows a bar; ``only_with_images``: as in :func:`myntra_products`.

    Example:
        >>> build_myntra_catalog(".cache/samestyle/catalogs/myntra-60x80").products_written  # doctest: +SKIP
        44439
    """
    from samestyle.catalog.ingest import ingest_products

    products, image_root, rejects = myntra_products(data_dir, images, limit, cache, only_with_images)
    source: dict[str, Any] = {
        "dataset": "myntra",
        "file": str(find_archive(MYNTRA_CSV, data_dir)),
        "images": images,
        "image_archive": (
            " + ".join(a for a, _ in MYNTRA_IMAGES.values()) if images == "best" else MYNTRA_IMAGES[images][0]
        ),
        "limit": limit,
    }
    if only_with_images:
        source["only_with_images"] = list(only_with_images)
    return ingest_products(
        products,
        Path(out_dir),
        image_root,
        source,
        check_images=check_images,
        progress=progress,
        workers=workers,
        rejects=rejects,
    )


def load_myntra_split(
    data_dir: str | os.PathLike[str] | None = None, cache: str | os.PathLike[str] | None = None
) -> dict[str, list[str]]:
    """The fixed split of every valid Myntra product, grouped by :func:`title_group`."""
    from samestyle.datasets.kagl import load_kagl

    products, _, _ = read_myntra_csv(find_archive(MYNTRA_CSV, data_dir))
    kagl_ids = load_kagl(data_dir, cache).text_to_image_ids
    groups = {p.id: title_group(p.title) for p in products}
    return myntra_split([p.id for p in products], kagl_ids, groups)


__all__ = [
    "MYNTRA_CSV",
    "MYNTRA_IMAGES",
    "MYNTRA_IMAGE_SETS",
    "build_myntra_catalog",
    "load_myntra_split",
    "myntra_image_root",
    "myntra_products",
    "myntra_split",
    "read_myntra_csv",
    "title_group",
]
