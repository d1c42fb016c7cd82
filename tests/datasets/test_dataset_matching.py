"""Ditto pair files: parsing, malformed lines as rejects, product text."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fakes import FakeData

from samestyle.datasets.matching import (
    MATCHING_FILES,
    entity_product,
    entity_text,
    load_matching,
    parse_entity,
    parse_pair_line,
    read_pairs,
)
from samestyle.errors import DatasetError


def test_parse_entity_keeps_empty_values_and_spacing() -> None:
    assert parse_entity("COL name VAL lg 24 ' dishwasher COL description VAL  COL price VAL ") == {
        "name": "lg 24 ' dishwasher", "description": "", "price": "",
    }  # fmt: skip
    assert parse_entity('COL title VAL  "HP 36GB" "Null"') == {"title": '"HP 36GB" "Null"'}
    assert parse_entity("COL a VAL COLLAR VALVE COL a VAL x") == {"a": "COLLAR VALVE x"}  # words, not markers


def test_parse_pair_line() -> None:
    pair = parse_pair_line("COL title VAL a COL price VAL 1.0 \tCOL title VAL b\t1\n")
    assert pair.left == {"title": "a", "price": "1.0"} and pair.right == {"title": "b"} and pair.label == 1
    bad_lines = [
        ("x\ty", "3 tab-separated"),
        ("COL a VAL x\tCOL a VAL y\t2", "label"),
        ("a VAL x\tCOL a VAL y\t0", "left side"),
        ("COL a VAL x\tjunk\t0", "right side"),
    ]
    for bad, why in bad_lines:
        with pytest.raises(ValueError, match=why):
            parse_pair_line(bad)


def test_malformed_lines_become_rejects(fake_data: FakeData) -> None:
    s = load_matching("abt-buy", "train", fake_data.data_dir, cache=fake_data.cache)
    assert len(s.pairs) == 2 and s.positives == 1
    assert [r.row for r in s.rejects] == [3, 4, 6]
    assert all(r.file.endswith("Abt-Buy/train.txt") and r.fatal for r in s.rejects)
    assert s.pairs[0].left["name"] == "lg dishwasher" and s.pairs[0].right["price"] == "9.99"


@pytest.mark.parametrize("name", sorted(MATCHING_FILES))
@pytest.mark.parametrize("split", ["train", "valid"])
def test_every_benchmark_loads(fake_data: FakeData, name: str, split: str) -> None:
    s = load_matching(name, split, fake_data.data_dir, cache=fake_data.cache)
    assert s.pairs and s.name == name and s.split == split and s.path.is_file()


def test_unknown_names() -> None:
    with pytest.raises(DatasetError, match="abt-buy"):
        load_matching("dblp-acm")
    with pytest.raises(DatasetError, match="valid"):
        load_matching("wdc", "test")


def test_missing_pair_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        read_pairs(tmp_path / "nope.txt")


def test_entity_text_and_product() -> None:
    attrs = {"title": "lenovo bag", "category": "bags", "brand": "lenovo", "price": ""}
    assert entity_text(attrs) == "lenovo bag. category: bags. brand: lenovo"
    assert entity_text({"name": "", "description": "a thing"}) == "a thing"
    p = entity_product(attrs, "wa-1-left")
    assert p.id == "wa-1-left" and p.title == "lenovo bag"
    assert p.description == "category: bags. brand: lenovo" and dict(p.attributes) == {
        "category": "bags",
        "brand": "lenovo",
    }
