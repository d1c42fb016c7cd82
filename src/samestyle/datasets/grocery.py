"""The Grocery Store dataset (Klasson et al., WACV 2019): 81 products, iconic images, shelf photos.

Two different things come out of ``grocery_trainval.tar.gz`` and they are kept apart on purpose:

- **Catalogue products** (:func:`grocery_catalog_products`): one per fine class, the shop's own listing.
  ``id`` = ``"grocery-class-<fine id>"``; ``title`` = the class name with hyphens as spaces
  (``"Arla Standard Milk"``); ``description`` = the web-shop text of ``*_Description.txt``;
  ``category`` = ``(coarse class name, title)``; ``image`` = the iconic image, relative to the unpacked
  ``grocery/dataset`` folder; ``attributes``: ``department`` (Fruit / Vegetables / Packages, the top
  folder), ``fine_id``, ``coarse_id``, ``class_name`` (the raw name). 81 products on the real data.
- **Shelf photos** (:func:`grocery_photos`): natural photos taken in shops, the *queries* of the
  photo -> product protocols. They have no text of their own, so they are not made into products (a
  title would have to be the class label, which would leak the answer into a text encoder). Each
  :class:`GroceryPhoto` carries its group label (``fine_id``) and :attr:`GroceryPhoto.product_id`, the
  catalogue product it shows. 2,640 train and 296 val photos on the real data.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from samestyle.datasets.archive import dataset_folder
from samestyle.errors import DatasetError
from samestyle.types import Product, Reject

if TYPE_CHECKING:
    from samestyle.catalog.ingest import IngestReport

log = logging.getLogger(__name__)

GROCERY_ARCHIVE = "grocery_trainval.tar.gz"
GROCERY_FOLDER = "grocery"
DATASET_DIR = "grocery/dataset"
CLASSES_FILE = "classes.csv"
SPLITS = ("train", "val")
CLASS_COLUMNS = 6


def class_product_id(fine_id: int) -> str:
    """The catalogue product id of a fine class: ``"grocery-class-<fine id>"``."""
    return f"grocery-class-{fine_id}"


@dataclass(frozen=True)
class GroceryClass:
    """One row of ``classes.csv``. Paths are relative to the dataset folder (POSIX form)."""

    fine_id: int
    name: str
    coarse_id: int
    coarse_name: str
    iconic_image: str
    description_file: str

    @property
    def title(self) -> str:
        return self.name.replace("-", " ")

    @property
    def department(self) -> str:
        """Top folder of the iconic image: ``Fruit``, ``Vegetables`` or ``Packages``."""
        parts = PurePosixPath(self.iconic_image).parts
        return parts[1] if len(parts) > 2 else ""


@dataclass(frozen=True)
class GroceryPhoto:
    """A shelf photo: the query side. ``fine_id`` is its group label (the product it shows)."""

    path: Path
    fine_id: int
    coarse_id: int
    split: str

    @property
    def product_id(self) -> str:
        """Id of the catalogue product this photo shows."""
        return class_product_id(self.fine_id)


def grocery_root(
    data_dir: str | os.PathLike[str] | None = None, cache: str | os.PathLike[str] | None = None
) -> Path:
    """Unpack (once, into the cache) and return the ``grocery/dataset`` folder."""
    root = dataset_folder(GROCERY_ARCHIVE, GROCERY_FOLDER, data_dir, cache) / DATASET_DIR
    if not (root / CLASSES_FILE).is_file():
        raise DatasetError(f"{root}: no {CLASSES_FILE}; {GROCERY_ARCHIVE} is not the expected archive")
    return root


def _rel(path: str, where: str) -> str:
    rel = PurePosixPath(path.strip().lstrip("/"))
    if ".." in rel.parts or not rel.parts:
        raise DatasetError(f"{where}: bad path {path!r}")
    return str(rel)


def read_classes(root: Path) -> list[GroceryClass]:
    """Parse ``classes.csv`` (header, then one row per fine class), sorted by fine id.

    Raises:
        DatasetError: a row is malformed (naming the row) or a fine id repeats.
    """
    path = root / CLASSES_FILE
    classes: list[GroceryClass] = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for rownum, row in enumerate(reader, 1):
            if not any(c.strip() for c in row):
                continue
            where = f"{path} row {rownum}"
            if len(row) != CLASS_COLUMNS:
                raise DatasetError(f"{where}: expected {CLASS_COLUMNS} fields, got {len(row)}")
            try:
                fine, coarse = int(row[1]), int(row[3])
            except ValueError:
                raise DatasetError(
                    f"{where}: class ids must be integers, got {row[1]!r}, {row[3]!r}"
                ) from None
            classes.append(
                GroceryClass(
                    fine, row[0].strip(), coarse, row[2].strip(), _rel(row[4], where), _rel(row[5], where)
                )
            )
    ids = [c.fine_id for c in classes]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{path}: repeated fine class ids")
    return sorted(classes, key=lambda c: c.fine_id)


def grocery_classes(
    data_dir: str | os.PathLike[str] | None = None, cache: str | os.PathLike[str] | None = None
) -> list[GroceryClass]:
    """The 81 fine classes with their coarse class, iconic image and description file."""
    return read_classes(grocery_root(data_dir, cache))


def class_product(cls: GroceryClass, root: Path) -> tuple[Product, list[Reject]]:
    """The catalogue product of one class; an unreadable description is a non-fatal Reject."""
    rejects: list[Reject] = []
    description = ""
    try:
        description = " ".join((root / cls.description_file).read_text(encoding="utf-8").split())
    except (OSError, UnicodeDecodeError) as exc:
        rejects.append(
            Reject(
                cls.description_file,
                None,
                "Product Description Path",
                f"cannot read description: {exc}",
                class_product_id(cls.fine_id),
                fatal=False,
            )
        )
    attributes = {
        "department": cls.department,
        "fine_id": str(cls.fine_id),
        "coarse_id": str(cls.coarse_id),
        "class_name": cls.name,
    }
    product = Product(
        id=class_product_id(cls.fine_id),
        title=cls.title,
        description=description,
        category=(cls.coarse_name, cls.title),
        attributes={k: v for k, v in attributes.items() if v},
        image=cls.iconic_image,
    )
    return product, rejects


def grocery_catalog_products(
    data_dir: str | os.PathLike[str] | None = None, cache: str | os.PathLike[str] | None = None
) -> tuple[list[Product], Path, list[Reject]]:
    """The 81 catalogue products (one per fine class), their image root and any problems found."""
    root = grocery_root(data_dir, cache)
    products: list[Product] = []
    rejects: list[Reject] = []
    for cls in read_classes(root):
        product, problems = class_product(cls, root)
        products.append(product)
        rejects.extend(problems)
    return products, root, rejects


def read_photo_list(root: Path, split: str) -> list[GroceryPhoto]:
    """Parse ``<split>.txt`` (``path, fine id, coarse id`` a line) under ``root``.

    Raises:
        DatasetError: a malformed line (naming the file and line) or an unsafe path.
    """
    path = root / f"{split}.txt"
    photos: list[GroceryPhoto] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(f"{path}: photo list for split '{split}' not found") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path} line {lineno}"
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            raise DatasetError(f"{where}: expected 'path, fine id, coarse id', got {line[:80]!r}")
        try:
            fine, coarse = int(parts[1]), int(parts[2])
        except ValueError:
            raise DatasetError(
                f"{where}: class ids must be integers, got {parts[1]!r}, {parts[2]!r}"
            ) from None
        photos.append(GroceryPhoto(root / _rel(parts[0], where), fine, coarse, split))
    return photos


def grocery_photos(
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> list[GroceryPhoto]:
    """Shelf photos of ``split`` (``"train"`` or ``"val"``) with their class labels, in file order.

    Example:
        >>> photos = grocery_photos("val")  # doctest: +SKIP
        >>> len(photos), photos[0].product_id  # doctest: +SKIP
        (296, 'grocery-class-0')
    """
    if split not in SPLITS:
        raise DatasetError(f"unknown grocery split '{split}'; choose one of: {', '.join(SPLITS)}")
    return read_photo_list(grocery_root(data_dir, cache), split)


def build_grocery_catalog(
    out_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    check_images: bool = True,
    cache: str | os.PathLike[str] | None = None,
    workers: int = 1,
) -> IngestReport:
    """Write the catalogue of the 81 iconic products to ``out_dir`` via ``ingest_products``."""
    from samestyle.catalog.ingest import ingest_products

    products, root, rejects = grocery_catalog_products(data_dir, cache)
    source = {"dataset": "grocery", "archive": GROCERY_ARCHIVE, "products": "one per fine class (iconic)"}
    return ingest_products(
        products, Path(out_dir), root, source, check_images=check_images, workers=workers, rejects=rejects
    )


__all__ = [
    "GroceryClass",
    "GroceryPhoto",
    "build_grocery_catalog",
    "class_product_id",
    "grocery_catalog_products",
    "grocery_classes",
    "grocery_photos",
    "grocery_root",
    "read_classes",
    "read_photo_list",
]
