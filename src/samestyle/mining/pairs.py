"""Positive pairs (anchor, positive, weight, source) and their Parquet file, ``pairs.parquet``.

Sources: ``click`` (mined from a click log, :func:`samestyle.mining.miner.mine_pairs`), ``group``
(products known to be the same: photos of one grocery product, matching offers; see
:func:`pairs_from_groups`) and ``self`` (a product's own image <-> its own text; see :func:`self_pairs`).

Example:
    >>> pairs = pairs_from_groups({"a": "g1", "b": "g1", "c": "g2"})
    >>> [(p.anchor_id, p.positive_id, p.source) for p in pairs]
    [('a', 'b', 'group')]
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from samestyle.errors import ArtifactError
from samestyle.fsio import atomic_path

SOURCE_CLICK = "click"
SOURCE_GROUP = "group"
SOURCE_SELF = "self"
PAIRS_FILE = "pairs.parquet"
SCHEMA = pa.schema(
    [
        ("anchor_id", pa.string()),
        ("positive_id", pa.string()),
        ("weight", pa.float64()),
        ("source", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class PositivePair:
    """Two product ids that are the same style; ``weight`` > 0 says how sure (click strength).

    An unordered pair is stored once, with ``anchor_id < positive_id`` for mined and group pairs;
    a ``self`` pair has ``anchor_id == positive_id`` (the product's image and its text).
    """

    anchor_id: str
    positive_id: str
    weight: float = 1.0
    source: str = SOURCE_CLICK

    def __post_init__(self) -> None:
        if not self.anchor_id or not self.positive_id:
            raise ValueError(f"a pair needs two product ids, got {self.anchor_id!r}, {self.positive_id!r}")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"pair weight must be a positive finite number, got {self.weight!r}")

    @property
    def key(self) -> tuple[str, str]:
        """The unordered pair as a sorted id tuple."""
        a, b = self.anchor_id, self.positive_id
        return (a, b) if a <= b else (b, a)


def pairs_table(pairs: Iterable[PositivePair]) -> pa.Table:
    """Pairs as a table with columns anchor_id, positive_id, weight, source."""
    rows = list(pairs)
    return pa.table(
        {
            "anchor_id": [p.anchor_id for p in rows],
            "positive_id": [p.positive_id for p in rows],
            "weight": [float(p.weight) for p in rows],
            "source": [p.source for p in rows],
        },
        schema=SCHEMA,
    )


def write_pairs(pairs: Iterable[PositivePair], path: str | Path) -> Path:
    """Write pairs to a Parquet file atomically (a folder gets ``pairs.parquet`` inside). Returns the file."""
    path = Path(path)
    if path.suffix.lower() != ".parquet":
        path = path / PAIRS_FILE
    with atomic_path(path) as tmp:
        pq.write_table(pairs_table(pairs), tmp)
    return path


def read_pairs(path: str | Path) -> list[PositivePair]:
    """Read a pairs file written by :func:`write_pairs` (or a folder holding ``pairs.parquet``).

    Raises:
        ArtifactError: missing file, unreadable Parquet, a missing column or an invalid row.
    """
    path = Path(path)
    if path.is_dir():
        path = path / PAIRS_FILE
    if not path.is_file():
        raise ArtifactError(f"{path}: no pairs file here; create one with 'samestyle mine'")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ArtifactError(f"{path}: not a readable Parquet file ({exc})") from None
    missing = [n for n in SCHEMA.names if n not in table.column_names]
    if missing:
        raise ArtifactError(f"{path}: missing column(s) {', '.join(missing)} (have: {table.column_names})")
    cols = {n: table.column(n).to_pylist() for n in SCHEMA.names}
    out: list[PositivePair] = []
    for i, (a, b, w, s) in enumerate(zip(*(cols[n] for n in SCHEMA.names), strict=True), start=1):
        try:
            out.append(
                PositivePair(
                    str(a or ""),
                    str(b or ""),
                    float(w) if w is not None else math.nan,
                    str(s or SOURCE_CLICK),
                )
            )
        except ValueError as exc:
            raise ArtifactError(f"{path} row {i}: {exc}") from None
    return out


def pairs_from_groups(
    group_of: Mapping[str, Hashable],
    *,
    source: str = SOURCE_GROUP,
    weight: float = 1.0,
    max_pairs_per_group: int | None = None,
    seed: int = 0,
) -> list[PositivePair]:
    """Every unordered pair of products that share a group (same grocery product, matching offers).

    Args:
        group_of: product id -> group label; groups of one product give no pair.
        source: the ``source`` written on each pair.
        weight: the weight of each pair.
        max_pairs_per_group: keep at most this many pairs of a group, a seeded random sample
            (a group of n products has n(n-1)/2 pairs); None keeps all.
        seed: seed of that sample.

    Returns:
        Pairs with ``anchor_id < positive_id``, groups in order of first appearance.
    """
    members: dict[Hashable, list[str]] = {}
    for pid, group in group_of.items():
        members.setdefault(group, []).append(pid)
    rng = random.Random(seed)
    out: list[PositivePair] = []
    for ids in members.values():
        ids = sorted(set(ids))
        keys = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]]
        if max_pairs_per_group is not None and len(keys) > max_pairs_per_group:
            keys = sorted(rng.sample(keys, max_pairs_per_group))
        out.extend(PositivePair(a, b, weight, source) for a, b in keys)
    return out


def self_pairs(ids: Sequence[str] | Iterable[str], *, weight: float = 1.0) -> list[PositivePair]:
    """One ``self`` pair per distinct id (its image <-> its text), in first-appearance order."""
    return [PositivePair(pid, pid, weight, SOURCE_SELF) for pid in dict.fromkeys(ids)]


__all__ = [
    "PAIRS_FILE",
    "SCHEMA",
    "SOURCE_CLICK",
    "SOURCE_GROUP",
    "SOURCE_SELF",
    "PositivePair",
    "pairs_from_groups",
    "pairs_table",
    "read_pairs",
    "self_pairs",
    "write_pairs",
]
