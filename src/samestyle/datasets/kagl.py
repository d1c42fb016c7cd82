"""The KAGL evaluation protocol for the Myntra catalogue (from the marqo-FashionCLIP harness).

``marqo_kagl_qrels.tar.gz`` holds ``configs/KAGL.json`` (the tasks: query field, document fields and,
for the attribute tasks, the image/text document weights 0.9/0.1) and one ground-truth file per task,
``data/KAGL/gt_query_doc/ground_truth_<query field>-<doc fields joined by '+'>.json``, each a mapping
``{query: {product id: grade}}``.

- ``text-to-image``: 2,000 product titles -> the product(s) with that exact title (2,774 ids in all;
  every product sharing a queried title is listed).
- attribute tasks (``category-to-product``, ``color-to-product``, ...): an attribute value such as
  ``"Watches"`` -> every product with that value, all graded 1.

The KAGL field names map onto the Myntra columns as in :data:`KAGL_FIELD_TO_MYNTRA` (``category1`` is
``masterCategory``, ``category2`` ``subCategory``, ``category3`` ``articleType``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samestyle.datasets.archive import dataset_folder
from samestyle.errors import DatasetError

KAGL_ARCHIVE = "marqo_kagl_qrels.tar.gz"
KAGL_FOLDER = "kagl"
CONFIG_PATH = "configs/KAGL.json"
GT_DIR = "data/KAGL/gt_query_doc"
TEXT_TO_IMAGE = "text-to-image"

KAGL_FIELD_TO_MYNTRA = {
    "text": "productDisplayName",
    "category1": "masterCategory",
    "category2": "subCategory",
    "category3": "articleType",
    "baseColour": "baseColour",
    "season": "season",
    "usage": "usage",
}
"""KAGL query field -> the Myntra CSV column it was taken from."""

Qrels = dict[str, dict[str, int]]
"""``{query: {product id: grade}}``."""


@dataclass(frozen=True)
class KaglTask:
    """One KAGL task as ``configs/KAGL.json`` declares it."""

    name: str
    query_col: tuple[str, ...]
    doc_col: tuple[str, ...]
    doc_weights: tuple[float, ...] = ()

    @property
    def gt_file(self) -> str:
        """The ground-truth file name, e.g. ``ground_truth_category1-image+text.json``."""
        return f"ground_truth_{'+'.join(self.query_col)}-{'+'.join(self.doc_col)}.json"

    @property
    def doc_weight_map(self) -> dict[str, float]:
        """``{"image": 0.9, "text": 0.1}``; equal weights when the config gives none."""
        weights = self.doc_weights or tuple(1.0 / len(self.doc_col) for _ in self.doc_col)
        return dict(zip(self.doc_col, weights, strict=True))


@dataclass(frozen=True)
class KaglQrels:
    """The KAGL ground truth.

    Attributes:
        text_to_image: ``{title query: {product id: 1}}`` (2,000 queries on the real data).
        attribute_tasks: ``{task name: {attribute value: {product id: grade}}}`` for every other task.
        tasks: every task of the config, by name (query/doc fields and doc weights).
        root: the unpacked archive folder.
    """

    text_to_image: Qrels
    attribute_tasks: dict[str, Qrels]
    tasks: dict[str, KaglTask]
    root: Path

    @property
    def text_to_image_ids(self) -> set[str]:
        """Every product id relevant to some text->image query (these are held out for testing)."""
        return {pid for docs in self.text_to_image.values() for pid in docs}

    def doc_weights(self, task: str) -> dict[str, float]:
        """The document field weights of ``task`` (``{"image": 0.9, "text": 0.1}`` for attribute tasks)."""
        return self.tasks[task].doc_weight_map


def _str_tuple(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise DatasetError(f"{where}: expected a field name or a list of them, got {value!r}")


def parse_config(path: Path) -> dict[str, KaglTask]:
    """Read ``configs/KAGL.json`` into tasks by name."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = raw["tasks"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: not a KAGL config with a 'tasks' list ({exc})") from None
    tasks: dict[str, KaglTask] = {}
    for i, entry in enumerate(entries):
        where = f"{path} task {i + 1}"
        if not isinstance(entry, dict) or "name" not in entry:
            raise DatasetError(f"{where}: each task needs a 'name', 'query_col' and 'doc_col'")
        doc_col = _str_tuple(entry.get("doc_col"), f"{where} doc_col")
        weights = tuple(float(w) for w in entry.get("doc_weights") or ())
        if weights and len(weights) != len(doc_col):
            raise DatasetError(f"{where}: {len(weights)} doc_weights for {len(doc_col)} doc_col fields")
        tasks[str(entry["name"])] = KaglTask(
            str(entry["name"]), _str_tuple(entry.get("query_col"), f"{where} query_col"), doc_col, weights
        )
    return tasks


def read_qrels(path: Path) -> Qrels:
    """Read one ground-truth file, checking it is ``{str: {str: int}}``."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: ground-truth file missing from the KAGL archive") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: expected an object {{query: {{product id: grade}}}}")
    qrels: Qrels = {}
    for query, docs in raw.items():
        if not isinstance(docs, dict):
            raise DatasetError(f"{path}: query {query!r} maps to {type(docs).__name__}, not {{id: grade}}")
        try:
            qrels[str(query)] = {str(pid): int(grade) for pid, grade in docs.items()}
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: query {query!r} has a non-integer grade") from None
    return qrels


def load_kagl_folder(root: Path) -> KaglQrels:
    """Load the KAGL ground truth from an unpacked archive folder (see :func:`load_kagl`)."""
    tasks = parse_config(root / CONFIG_PATH)
    if TEXT_TO_IMAGE not in tasks:
        raise DatasetError(f"{root / CONFIG_PATH}: no '{TEXT_TO_IMAGE}' task (have: {', '.join(tasks)})")
    gt = root / GT_DIR
    attribute_tasks = {name: read_qrels(gt / t.gt_file) for name, t in tasks.items() if name != TEXT_TO_IMAGE}
    return KaglQrels(read_qrels(gt / tasks[TEXT_TO_IMAGE].gt_file), attribute_tasks, tasks, root)


def load_kagl(
    data_dir: str | os.PathLike[str] | None = None, cache: str | os.PathLike[str] | None = None
) -> KaglQrels:
    """Unpack (once, into the cache) and load the KAGL qrels.

    Args:
        data_dir: folder with ``marqo_kagl_qrels.tar.gz``; default ``$SAMESTYLE_DATA`` or ``../shared/data``.
        cache: cache root; default ``$SAMESTYLE_CACHE`` or ``.cache/samestyle``.

    Example:
        >>> q = load_kagl()  # doctest: +SKIP
        >>> len(q.text_to_image), q.doc_weights("color-to-product")  # doctest: +SKIP
        (2000, {'image': 0.9, 'text': 0.1})
    """
    return load_kagl_folder(dataset_folder(KAGL_ARCHIVE, KAGL_FOLDER, data_dir, cache))


__all__ = [
    "KAGL_ARCHIVE",
    "KAGL_FIELD_TO_MYNTRA",
    "TEXT_TO_IMAGE",
    "KaglQrels",
    "KaglTask",
    "Qrels",
    "load_kagl",
    "load_kagl_folder",
    "parse_config",
    "read_qrels",
]
