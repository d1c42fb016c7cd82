"""PositivePair, its Parquet file, and the non-click pair sources (groups, self)."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from samestyle.errors import ArtifactError
from samestyle.mining import PositivePair, pairs_from_groups, read_pairs, self_pairs, write_pairs


def test_parquet_round_trip_file_and_folder(tmp_path: Path) -> None:
    pairs = [
        PositivePair("a", "b", 2.5),
        PositivePair("c", "c", 1.0, "self"),
        PositivePair("a", "d", 1, "group"),
    ]
    path = write_pairs(pairs, tmp_path / "out" / "pairs.parquet")
    assert read_pairs(path) == pairs
    assert pq.read_table(path).column_names == ["anchor_id", "positive_id", "weight", "source"]
    folder_file = write_pairs(pairs, tmp_path / "run")
    assert folder_file == tmp_path / "run" / "pairs.parquet"
    assert read_pairs(tmp_path / "run") == pairs
    assert write_pairs([], tmp_path / "empty.parquet") and read_pairs(tmp_path / "empty.parquet") == []
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no pairs file"):
        read_pairs(tmp_path / "absent.parquet")
    pq.write_table(pa.table({"anchor_id": ["a"], "positive_id": ["b"]}), tmp_path / "cols.parquet")
    with pytest.raises(ArtifactError, match="missing column"):
        read_pairs(tmp_path / "cols.parquet")
    bad = pa.table({"anchor_id": ["a"], "positive_id": ["b"], "weight": [-1.0], "source": ["click"]})
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(ArtifactError, match="row 1"):
        read_pairs(tmp_path / "bad.parquet")


@pytest.mark.parametrize(
    ("a", "b", "w"), [("", "b", 1.0), ("a", "b", 0.0), ("a", "b", math.inf), ("a", "b", -2)]
)
def test_invalid_pairs_raise(a: str, b: str, w: float) -> None:
    with pytest.raises(ValueError):
        PositivePair(a, b, w)


def test_pairs_from_groups() -> None:
    group_of = {"c": "g1", "a": "g1", "b": "g1", "x": "g2", "y": 7, "z": 7}
    pairs = pairs_from_groups(group_of, source="grocery", weight=2.0)
    assert [(p.anchor_id, p.positive_id) for p in pairs] == [("a", "b"), ("a", "c"), ("b", "c"), ("y", "z")]
    assert {(p.source, p.weight) for p in pairs} == {("grocery", 2.0)}
    capped = pairs_from_groups(group_of, max_pairs_per_group=2, seed=3)
    assert len([p for p in capped if p.anchor_id in "abc"]) == 2
    assert capped == pairs_from_groups(group_of, max_pairs_per_group=2, seed=3)
    assert pairs_from_groups({}) == []


def test_self_pairs() -> None:
    pairs = self_pairs(["b", "a", "b"])
    assert [(p.anchor_id, p.positive_id, p.source) for p in pairs] == [("b", "b", "self"), ("a", "a", "self")]
    assert PositivePair("b", "a").key == ("a", "b")
