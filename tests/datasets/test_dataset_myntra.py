"""Myntra adapter on a generated catalogue: field mapping, rejects, image sets, the held-out split."""

from __future__ import annotations

import csv
import gzip
import hashlib
import itertools
from pathlib import Path

import pytest
from dataset_fakes import MYNTRA_ROWS, FakeData, make_tar, myntra_csv

from samestyle.datasets.myntra import (
    load_myntra_split,
    myntra_products,
    myntra_split,
    read_myntra_csv,
    title_group,
)
from samestyle.errors import DatasetError


def test_fields_are_mapped(fake_data: FakeData) -> None:
    products, root, _ = myntra_products(fake_data.data_dir, cache=fake_data.cache)
    by_id = {p.id: p for p in products}
    assert list(by_id) == ["15970", "39386", "59263", "15971", "15972"]
    shirt = by_id["15970"]
    assert shirt.title == "Turtle Check Men Navy Blue Shirt"
    assert shirt.category == ("Apparel", "Topwear", "Shirts")
    assert dict(shirt.attributes) == {
        "gender": "Men", "baseColour": "Navy Blue", "season": "Fall", "year": "2011", "usage": "Casual",
    }  # fmt: skip
    assert shirt.image == "15970.jpg" and (root / shirt.image).is_file()
    assert shirt.supplier_id is None and shirt.price is None and shirt.description == ""
    assert "usage" not in by_id["39386"].attributes  # empty
    assert "season" not in by_id["59263"].attributes and "year" not in by_id["59263"].attributes  # NaN, empty
    assert root.name == "images" and root.parent.name == "myntra-60x80"


def test_bad_rows_become_rejects(fake_data: FakeData) -> None:
    _, _, rejects = myntra_products(fake_data.data_dir, cache=fake_data.cache)
    by_row = {r.row: r for r in rejects}
    assert all(r.file == "myntra_styles_full.csv.gz" for r in rejects)
    assert by_row[3].fatal and by_row[3].field == "productDisplayName" and by_row[3].product_id == "42878"
    assert by_row[5].fatal and "expected 12 fields" in by_row[5].reason
    assert by_row[7].fatal and "duplicate id" in by_row[7].reason
    assert not by_row[6].fatal and by_row[6].field == "year"  # kept, year dropped
    assert set(by_row) == {3, 5, 6, 7}
    assert "myntra_styles_full.csv.gz row 3" in str(by_row[3])


def test_224_keeps_only_products_with_a_224_image(fake_data: FakeData) -> None:
    products, root, rejects = myntra_products(fake_data.data_dir, images="224", cache=fake_data.cache)
    assert [p.id for p in products] == ["15970", "15972"]
    assert root.parent.name == "myntra-224"
    assert all((root / p.image).is_file() for p in products if p.image)
    assert {r.row for r in rejects} == {5, 7}  # malformed and duplicate rows are always reported


def test_limit_and_unknown_image_set(fake_data: FakeData) -> None:
    products, _, _ = myntra_products(fake_data.data_dir, limit=2, cache=fake_data.cache)
    assert [p.id for p in products] == ["15970", "39386"]
    with pytest.raises(DatasetError, match="60x80"):
        myntra_products(fake_data.data_dir, images="1024", cache=fake_data.cache)


def test_missing_column_is_a_dataset_error(tmp_path: Path) -> None:
    path = tmp_path / "styles.csv.gz"
    path.write_bytes(gzip.compress(b"id,title\n1,x\n"))
    with pytest.raises(DatasetError, match="missing column"):
        read_myntra_csv(path)


def test_missing_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"myntra_styles_full\.csv\.gz.*SAMESTYLE_DATA"):
        myntra_products(tmp_path, cache=tmp_path / "cache")
    (tmp_path / "myntra_styles_full.csv.gz").write_bytes(myntra_csv([]))
    with pytest.raises(DatasetError, match=r"myntra_small_images_60x80\.tar\.gz"):
        myntra_products(tmp_path, cache=tmp_path / "cache")


def test_images_folder_missing_from_archive(tmp_path: Path) -> None:
    (tmp_path / "myntra_styles_full.csv.gz").write_bytes(myntra_csv([]))
    make_tar(tmp_path / "myntra_224_images.tar.gz", {"pics/1.jpg": b"x"})
    with pytest.raises(DatasetError, match="no images/ folder"):
        myntra_products(tmp_path, images="224", cache=tmp_path / "cache")


def _bucket(key: str) -> int:
    return int(hashlib.sha1(key.encode()).hexdigest(), 16) % 100


def test_split_rule() -> None:
    ids = [str(i) for i in range(20_000)]
    kagl = {"5", "17", "123"}
    split = myntra_split(ids, kagl)
    assert sorted(itertools.chain.from_iterable(split.values()), key=int) == ids  # a partition
    assert kagl <= set(split["test"])
    for pid in ids[:2000]:
        if pid in kagl:
            continue
        b = _bucket(pid)
        expected = "val" if b < 5 else "test" if b < 10 else "train"
        assert pid in split[expected]
    assert 0.04 < len(split["val"]) / len(ids) < 0.06
    assert 0.04 < (len(split["test"]) - len(kagl)) / len(ids) < 0.06
    assert myntra_split(reversed(ids), kagl)["val"] == list(reversed(split["val"]))  # order-free membership


def test_split_keeps_groups_together() -> None:
    ids = [str(i) for i in range(3000)]
    groups = {pid: f"title {int(pid) % 300}" for pid in ids}
    split = myntra_split(ids, {"7"}, groups)
    where = {pid: name for name, members in split.items() for pid in members}
    for name in ("train", "val", "test"):
        titles = {groups[p] for p in split[name]}
        assert all(where[p] == name for p in ids if groups[p] in titles)
    assert all(where[p] == "test" for p in ids if groups[p] == groups["7"])  # KAGL pulls its group


def test_title_group() -> None:
    assert title_group("  Turtle  Check\tMen ") == title_group("turtle check men")


def test_load_split_on_fake_data(fake_data: FakeData) -> None:
    split = load_myntra_split(fake_data.data_dir, cache=fake_data.cache)
    assert {"15970", "59263"} <= set(split["test"])  # the KAGL text->image ids
    assert sorted(itertools.chain.from_iterable(split.values())) == sorted(
        ["15970", "39386", "59263", "15971", "15972"]
    )


def test_unparseable_csv_record_is_rejected_and_reading_goes_on(tmp_path: Path) -> None:
    rows = [list(MYNTRA_ROWS[0]), list(MYNTRA_ROWS[1])]
    rows[0][9] = "x" * (csv.field_size_limit() + 10)  # over the csv module's field limit
    path = tmp_path / "styles.csv.gz"
    path.write_bytes(myntra_csv(rows))
    products, rejects, rows_read = read_myntra_csv(path)
    assert [p.id for p in products] == ["39386"] and rows_read == 2
    assert len(rejects) == 1 and rejects[0].row == 1 and "malformed CSV" in rejects[0].reason


def test_limit_zero_and_rows_read(fake_data: FakeData) -> None:
    path = fake_data.data_dir / "myntra_styles_full.csv.gz"
    assert read_myntra_csv(path, limit=0) == ([], [], 0)
    products, _, rows_read = read_myntra_csv(path, limit=3)
    assert [p.id for p in products] == ["15970", "39386", "59263"] and rows_read == 4
