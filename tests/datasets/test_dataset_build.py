"""Dataset -> catalogue folder through ``ingest_products``: statuses, rejects file, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fakes import FakeData, real_data_or_skip
from PIL import Image

from samestyle.catalog.store import read_catalog, read_rejects
from samestyle.datasets import build_dataset_catalog
from samestyle.datasets.grocery import build_grocery_catalog
from samestyle.datasets.myntra import build_myntra_catalog, myntra_products
from samestyle.errors import DatasetError
from samestyle.types import ImageStatus


def test_myntra_catalog(fake_data: FakeData, tmp_path: Path) -> None:
    out = tmp_path / "cat"
    report = build_myntra_catalog(out, fake_data.data_dir, cache=fake_data.cache)
    assert report.products_written == 5 and report.rows_rejected == 3
    assert (report.images_ok, report.images_missing, report.images_corrupt) == (3, 1, 1)
    catalog = read_catalog(out)
    assert catalog.get("59263").image_status is ImageStatus.CORRUPT  # kept, searchable by text
    assert catalog.get("15972").image_status is ImageStatus.MISSING
    shirt = catalog.get("15970")
    assert shirt.image_status is ImageStatus.OK and shirt.image_sha256
    assert shirt.category == ("Apparel", "Topwear", "Shirts") and shirt.attributes["year"] == "2011"
    path = catalog.image_path(shirt)
    assert path is not None and path.is_file()
    rejects = read_rejects(out / "rejects.csv")
    missing_title = [r for r in rejects if r.field == "productDisplayName"]
    assert len(missing_title) == 1 and missing_title[0].row == 3 and missing_title[0].fatal
    assert missing_title[0].file == "myntra_styles_full.csv.gz"
    assert {r.product_id for r in rejects if r.field == "image"} == {"59263", "15972"}
    assert catalog.meta["source"]["dataset"] == "myntra" and catalog.meta["source"]["images"] == "60x80"


def test_myntra_224_catalog(fake_data: FakeData, tmp_path: Path) -> None:
    report = build_myntra_catalog(tmp_path / "c224", fake_data.data_dir, images="224", cache=fake_data.cache)
    assert report.products_written == 2 and report.images_ok == 2


def test_myntra_only_with_images_gives_both_arms_the_same_products(
    fake_data: FakeData, tmp_path: Path
) -> None:
    """The resolution A/B: the same products, each arm with its own photos (60x80 lacks 15972's)."""
    both = ("60x80", "224")
    for images, size in (("60x80", (6, 8)), ("224", (22, 22))):
        report = build_myntra_catalog(
            tmp_path / images, fake_data.data_dir, images=images, cache=fake_data.cache, only_with_images=both
        )
        catalog = read_catalog(tmp_path / images)
        assert catalog.ids == ["15970"] and report.images_ok == 1
        path = catalog.image_path(catalog.get("15970"))
        assert path is not None and Image.open(path).size == size
        assert catalog.meta["source"]["only_with_images"] == list(both)
    small, _, _ = myntra_products(fake_data.data_dir, cache=fake_data.cache, only_with_images=["60x80"])
    assert [p.id for p in small] == ["15970", "39386", "59263", "15971"]  # 15972 has no 60x80 file
    with pytest.raises(DatasetError, match="unknown Myntra image set '1024'"):
        myntra_products(fake_data.data_dir, cache=fake_data.cache, only_with_images=["1024"])


def test_myntra_best_images_uses_the_224_photo_where_there_is_one(
    fake_data: FakeData, tmp_path: Path
) -> None:
    """Every product is kept; 15970 and 15972 have a 224 px photo (15972 has no 60x80 one at all)."""
    report = build_myntra_catalog(tmp_path / "best", fake_data.data_dir, images="best", cache=fake_data.cache)
    assert report.products_written == 5 and report.images_missing == 0
    catalog = read_catalog(tmp_path / "best")
    sizes = {}
    for pid in catalog.ids:
        path = catalog.image_path(catalog.get(pid))
        if catalog.get(pid).image_status is ImageStatus.OK and path is not None:
            sizes[pid] = Image.open(path).size
    assert sizes == {"15970": (22, 22), "15972": (22, 22), "39386": (6, 8), "15971": (6, 8)}
    assert catalog.get("15970").image == "../../myntra-224/images/15970.jpg"  # relative: the cache can move
    assert catalog.meta["source"]["images"] == "best"
    assert "myntra_224_images.tar.gz" in catalog.meta["source"]["image_archive"]


def test_cli_dataset_only_with_images(
    fake_data: FakeData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from samestyle.cli import main

    monkeypatch.setenv("SAMESTYLE_CACHE", str(fake_data.cache))
    out = tmp_path / "c"
    args = ["dataset", "myntra", "--images", "224", "--data-dir", str(fake_data.data_dir), "--out", str(out)]
    assert main([*args, "--only-with-images", "60x80,224"]) == 0
    assert read_catalog(out).ids == ["15970"]
    assert main(args) == 0
    assert read_catalog(out).ids == ["15970", "15972"]


def test_grocery_catalog(fake_data: FakeData, tmp_path: Path) -> None:
    report = build_grocery_catalog(tmp_path / "g", fake_data.data_dir, cache=fake_data.cache)
    assert report.products_written == 3 and report.images_ok == 3 and report.rows_rejected == 0
    catalog = read_catalog(tmp_path / "g")
    assert catalog.get("grocery-class-2").description


def test_build_dataset_catalog_dispatch(
    fake_data: FakeData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMESTYLE_CACHE", str(fake_data.cache))
    report = build_dataset_catalog("myntra", tmp_path / "m", fake_data.data_dir, limit=2, check_images=False)
    assert report.products_written == 2 and report.images_unchecked == 2
    assert build_dataset_catalog("grocery", tmp_path / "g", fake_data.data_dir).products_written == 3
    with pytest.raises(DatasetError, match="grocery"):
        build_dataset_catalog("imagenet", tmp_path / "x")


@pytest.mark.real
def test_real_catalogs(tmp_path: Path) -> None:
    data = real_data_or_skip(
        "myntra_styles_full.csv.gz", "myntra_small_images_60x80.tar.gz", "grocery_trainval.tar.gz"
    )
    report = build_myntra_catalog(tmp_path / "m", data, limit=200)
    assert report.products_written == 200 and report.images_ok + report.images_missing == 200
    assert report.images_corrupt == 0
    grocery = build_grocery_catalog(tmp_path / "g", data)
    assert grocery.products_written == 81 and grocery.images_ok == 81


def test_real_best_images(tmp_path: Path) -> None:
    """Every real product is kept; those with a 224 px photo (ids 10000-21539) point at it."""
    data = real_data_or_skip(
        "myntra_styles_full.csv.gz", "myntra_small_images_60x80.tar.gz", "myntra_224_images.tar.gz"
    )
    products, root, _ = myntra_products(data, images="best")
    small, _, _ = myntra_products(data)
    assert [p.id for p in products] == [p.id for p in small]
    sharp = [p for p in products if p.image != f"{p.id}.jpg"]
    assert len(sharp) == 9583 and all(10000 <= int(p.id) <= 21539 for p in sharp)
    assert all((root / p.image).is_file() for p in sharp[:50] if p.image)
