"""Adapters for the public datasets in ``../shared/data`` (or ``$SAMESTYLE_DATA``): archives are unpacked
once into the cache, then turned into samestyle products, query photos, qrels or labelled pairs.

- :mod:`~samestyle.datasets.myntra`: the Myntra fashion catalogue and its fixed train/val/test split
  (the split rule itself: :mod:`~samestyle.datasets.splits`).
- :mod:`~samestyle.datasets.kagl`: the KAGL text->image and attribute->product ground truth.
- :mod:`~samestyle.datasets.grocery`: 81 grocery products (iconic image + description) and shelf photos.
- :mod:`~samestyle.datasets.matching`: labelled same-product offer pairs (Abt-Buy, Amazon-Google, ...).
- :mod:`~samestyle.datasets.archive`: safe, atomic, idempotent archive extraction.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from samestyle.datasets.archive import dataset_folder, extract_archive, find_archive
from samestyle.datasets.grocery import (
    GroceryClass,
    GroceryPhoto,
    build_grocery_catalog,
    grocery_catalog_products,
    grocery_classes,
    grocery_photos,
)
from samestyle.datasets.kagl import KaglQrels, load_kagl
from samestyle.datasets.matching import MatchingSet, MatchPair, entity_text, load_matching
from samestyle.datasets.myntra import (
    build_myntra_catalog,
    load_myntra_split,
    myntra_products,
    myntra_split,
)
from samestyle.errors import DatasetError

if TYPE_CHECKING:
    from samestyle.catalog.ingest import IngestReport

DATASETS = ("myntra", "grocery")
"""Datasets :func:`build_dataset_catalog` can turn into a catalogue."""


def build_dataset_catalog(
    name: str,
    out_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    images: str = "60x80",
    limit: int | None = None,
    check_images: bool = True,
    workers: int = 1,
    progress: bool = False,
    only_with_images: Sequence[str] = (),
) -> IngestReport:
    """Write the catalogue of a public dataset to ``out_dir``.

    Args:
        name: ``"myntra"`` or ``"grocery"``.
        out_dir: catalogue folder to write.
        data_dir: folder with the archives; default ``$SAMESTYLE_DATA`` or ``../shared/data``.
        images: Myntra image set, ``"60x80"``, ``"224"`` or ``"best"`` (ignored for grocery).
        limit: only the first ``limit`` products (Myntra; grocery always has its 81).
        check_images: open every image during ingest.
        workers: threads checking images.
        progress: show a progress bar while checking images (Myntra).
        only_with_images: Myntra: keep only products with a photo in every one of these image sets.
    """
    if name == "myntra":
        return build_myntra_catalog(
            out_dir, data_dir, images, limit, check_images, workers=workers, progress=progress,
            only_with_images=only_with_images,
        )  # fmt: skip
    if name == "grocery":
        return build_grocery_catalog(out_dir, data_dir, check_images=check_images, workers=workers)
    raise DatasetError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}")


__all__ = [
    "DATASETS",
    "GroceryClass",
    "GroceryPhoto",
    "KaglQrels",
    "MatchPair",
    "MatchingSet",
    "build_dataset_catalog",
    "build_grocery_catalog",
    "build_myntra_catalog",
    "dataset_folder",
    "entity_text",
    "extract_archive",
    "find_archive",
    "grocery_catalog_products",
    "grocery_classes",
    "grocery_photos",
    "load_kagl",
    "load_matching",
    "load_myntra_split",
    "myntra_products",
    "myntra_split",
]
