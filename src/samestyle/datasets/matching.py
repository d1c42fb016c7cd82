"""Labelled product-offer pairs from two shops (the Ditto packaging of Magellan and WDC benchmarks).

``ditto_trainvalid.tar.gz`` holds one file per benchmark and split; each line is one pair::

    COL title VAL lenovo backpack COL price VAL 31.51 <TAB> COL title VAL lenovo ... <TAB> 1

Each side is a run of ``COL <attribute> VAL <value>`` chunks; the last field is the label (1 = the same
product, 0 = different). A value is everything up to the next ``COL <name> VAL`` marker, stripped; an
empty value is kept as ``""``. A line that does not have that shape becomes a :class:`Reject` naming the
file and its 1-based line number, and reading goes on; blank lines are skipped.

Benchmarks (:data:`MATCHING_FILES`): ``abt-buy`` (name, description, price), ``amazon-google`` (title,
manufacturer, price), ``walmart-amazon`` (title, category, brand, modelno, price), ``wdc`` (title only,
the "all" category, small training size). Splits: ``train`` and ``valid``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from samestyle.datasets.archive import dataset_folder
from samestyle.errors import DatasetError
from samestyle.types import Product, Reject

log = logging.getLogger(__name__)

DITTO_ARCHIVE = "ditto_trainvalid.tar.gz"
DITTO_FOLDER = "ditto"
DATA_DIR = "ditto/data"
MATCHING_FILES: dict[str, tuple[str, dict[str, str]]] = {
    "abt-buy": ("er_magellan/Textual/Abt-Buy", {"train": "train.txt", "valid": "valid.txt"}),
    "amazon-google": ("er_magellan/Structured/Amazon-Google", {"train": "train.txt", "valid": "valid.txt"}),
    "walmart-amazon": ("er_magellan/Structured/Walmart-Amazon", {"train": "train.txt", "valid": "valid.txt"}),
    "wdc": ("wdc/all", {"train": "train.txt.small", "valid": "valid.txt.small"}),
}
"""Benchmark name -> (folder under ``ditto/data``, {split: file name})."""

TITLE_KEYS = ("title", "name")
"""Attributes used as a side's title, first present and non-empty wins."""

_MARKER = re.compile(r"(?:^|(?<=\s))COL\s+(\S+)\s+VAL(?=\s|$)")


@dataclass(frozen=True)
class MatchPair:
    """Two offers and whether they are the same product (``label`` 1) or not (0)."""

    left: dict[str, str]
    right: dict[str, str]
    label: int


@dataclass
class MatchingSet:
    """The pairs of one benchmark split, plus the lines that could not be parsed."""

    name: str
    split: str
    path: Path
    pairs: list[MatchPair] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    @property
    def positives(self) -> int:
        return sum(p.label for p in self.pairs)


def parse_entity(text: str) -> dict[str, str]:
    """``"COL a VAL x COL b VAL y"`` -> ``{"a": "x", "b": "y"}``.

    A repeated attribute name has its values joined with a space.

    Raises:
        ValueError: the text does not start with a ``COL <name> VAL`` marker.
    """
    text = text.strip()
    markers = list(_MARKER.finditer(text))
    if not markers or markers[0].start() != 0:
        raise ValueError(f"expected 'COL <attribute> VAL <value> ...', got {text[:60]!r}")
    attrs: dict[str, str] = {}
    for i, m in enumerate(markers):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(text)
        value = text[m.end() : end].strip()
        key = m.group(1)
        attrs[key] = f"{attrs[key]} {value}".strip() if key in attrs else value
    return attrs


def parse_pair_line(line: str) -> MatchPair:
    """Parse one ``left <TAB> right <TAB> label`` line.

    Raises:
        ValueError: wrong number of tab-separated fields, a label other than 0/1, or a side that is not
            a ``COL ... VAL ...`` run.
    """
    parts = line.rstrip("\r\n").split("\t")
    if len(parts) != 3:
        raise ValueError(f"expected 3 tab-separated fields (left, right, label), got {len(parts)}")
    label = parts[2].strip()
    if label not in ("0", "1"):
        raise ValueError(f"label must be 0 or 1, got {label[:20]!r}")
    try:
        left = parse_entity(parts[0])
    except ValueError as exc:
        raise ValueError(f"left side: {exc}") from None
    try:
        right = parse_entity(parts[1])
    except ValueError as exc:
        raise ValueError(f"right side: {exc}") from None
    return MatchPair(left, right, int(label))


def read_pairs(
    path: str | os.PathLike[str], label: str | None = None
) -> tuple[list[MatchPair], list[Reject]]:
    """Read a pair file; a malformed line becomes a Reject (``file``: ``label`` or the path) and is skipped.

    Raises:
        DatasetError: the file cannot be opened or is not UTF-8.
    """
    path = Path(path)
    name = label or str(path)
    pairs: list[MatchPair] = []
    rejects: list[Reject] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    pairs.append(parse_pair_line(line))
                except ValueError as exc:
                    rejects.append(Reject(name, lineno, None, str(exc)))
    except FileNotFoundError:
        raise DatasetError(f"{path}: pair file not found") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc})") from None
    if rejects:
        log.warning("%s: %d malformed line(s) skipped, first: %s", name, len(rejects), rejects[0])
    return pairs, rejects


def load_matching(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> MatchingSet:
    """Unpack the Ditto archive (once, into the cache) and read one benchmark split.

    Args:
        name: ``"abt-buy"``, ``"amazon-google"``, ``"walmart-amazon"`` or ``"wdc"``.
        split: ``"train"`` or ``"valid"``.
        data_dir: folder with ``ditto_trainvalid.tar.gz``; default ``$SAMESTYLE_DATA`` or ``../shared/data``.
        cache: cache root; default ``$SAMESTYLE_CACHE`` or ``.cache/samestyle``.

    Example:
        >>> s = load_matching("abt-buy", "valid")  # doctest: +SKIP
        >>> len(s.pairs), s.positives  # doctest: +SKIP
        (1916, 206)
    """
    if name not in MATCHING_FILES:
        raise DatasetError(f"unknown matching benchmark '{name}'; choose one of: {', '.join(MATCHING_FILES)}")
    folder, files = MATCHING_FILES[name]
    if split not in files:
        raise DatasetError(f"unknown split '{split}' for '{name}'; choose one of: {', '.join(files)}")
    root = dataset_folder(DITTO_ARCHIVE, DITTO_FOLDER, data_dir, cache)
    rel = f"{DATA_DIR}/{folder}/{files[split]}"
    pairs, rejects = read_pairs(root / rel, label=f"{DITTO_ARCHIVE}:{rel}")
    return MatchingSet(name, split, root / rel, pairs, rejects)


def entity_title(attrs: dict[str, str]) -> str:
    """The side's title: the first non-empty of :data:`TITLE_KEYS`, else its first non-empty value."""
    for key in TITLE_KEYS:
        if attrs.get(key):
            return attrs[key]
    return next((v for v in attrs.values() if v), "")


def entity_text(attrs: dict[str, str]) -> str:
    """One product text for a side: its title, then ``attribute: value`` for every other non-empty field.

    Example:
        >>> entity_text({"title": "adobe cs3", "manufacturer": "adobe", "price": ""})
        'adobe cs3. manufacturer: adobe'
    """
    title = entity_title(attrs)
    rest = [f"{k}: {v}" for k, v in attrs.items() if v and v != title]
    return ". ".join([title, *rest]) if title else ". ".join(rest)


def entity_product(attrs: dict[str, str], product_id: str) -> Product:
    """A side as a :class:`Product`: the title, the other non-empty fields as description and attributes.

    The pair files carry no ids: ``product_id`` is the caller's (e.g. ``"abt-buy-train-12-left"``).
    """
    title = entity_title(attrs)
    other = {k: v for k, v in attrs.items() if v and v != title}
    description = ". ".join(f"{k}: {v}" for k, v in other.items())
    return Product(id=product_id, title=title, description=description, attributes=other)


__all__ = [
    "MATCHING_FILES",
    "MatchPair",
    "MatchingSet",
    "entity_product",
    "entity_text",
    "entity_title",
    "load_matching",
    "parse_entity",
    "parse_pair_line",
    "read_pairs",
]
