"""Grocery adapter on a generated archive: one catalogue product per class; photos kept apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fakes import FakeData

from samestyle.datasets.grocery import (
    class_product_id,
    grocery_catalog_products,
    grocery_classes,
    grocery_photos,
    read_classes,
    read_photo_list,
)
from samestyle.errors import DatasetError


def test_catalog_products(fake_data: FakeData) -> None:
    products, root, rejects = grocery_catalog_products(fake_data.data_dir, cache=fake_data.cache)
    assert rejects == [] and [p.id for p in products] == [
        "grocery-class-0",
        "grocery-class-1",
        "grocery-class-2",
    ]
    milk = products[2]
    assert milk.title == "Arla Standard Milk"
    assert milk.description == "Arla-Standard-Milk is a nice product."
    assert milk.category == ("Milk", "Arla Standard Milk")
    assert dict(milk.attributes) == {"department": "Packages", "fine_id": "2", "coarse_id": "1",
                                     "class_name": "Arla-Standard-Milk"}  # fmt: skip
    assert milk.image is not None and not milk.image.startswith("/") and (root / milk.image).is_file()


def test_classes_and_photos(fake_data: FakeData) -> None:
    classes = grocery_classes(fake_data.data_dir, cache=fake_data.cache)
    assert [(c.fine_id, c.coarse_name) for c in classes] == [(0, "Apple"), (1, "Apple"), (2, "Milk")]
    train = grocery_photos("train", fake_data.data_dir, cache=fake_data.cache)
    val = grocery_photos("val", fake_data.data_dir, cache=fake_data.cache)
    assert len(train) == 6 and len(val) == 3
    assert all(p.path.is_file() for p in train + val)
    assert train[0].fine_id == 0 and train[0].product_id == class_product_id(0) == "grocery-class-0"
    assert {p.split for p in val} == {"val"}
    with pytest.raises(DatasetError, match="split"):
        grocery_photos("test", fake_data.data_dir, cache=fake_data.cache)


def test_malformed_photo_line_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("train/a.jpg, 0, 0\ntrain/b.jpg, x, 0\n")
    with pytest.raises(DatasetError, match=r"train\.txt line 2"):
        read_photo_list(tmp_path, "train")
    (tmp_path / "train.txt").write_text("../../etc/passwd, 0, 0\n")
    with pytest.raises(DatasetError, match="bad path"):
        read_photo_list(tmp_path, "train")


def test_malformed_classes_row(tmp_path: Path) -> None:
    (tmp_path / "classes.csv").write_text("h1,h2,h3,h4,h5,h6\nA,0,A,0,/a.jpg\n")
    with pytest.raises(DatasetError, match="row 1"):
        read_classes(tmp_path)
