"""End to end: catalogue files + images -> catalogue folder, with every problem in the rejects."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import pytest
from catalog_fakes import (
    SMALL_ROWS,
    corrupt_png,
    huge_png,
    truncated_jpeg,
    write_csv,
    write_image,
    write_jsonl,
    write_parquet,
)

from samestyle.catalog.images import check_image
from samestyle.catalog.ingest import IngestReport, ingest, ingest_products
from samestyle.catalog.store import read_catalog, read_rejects
from samestyle.catalog.validate import ColumnMapping
from samestyle.errors import CatalogError
from samestyle.paths import shared_data_dir
from samestyle.types import ImageStatus, Product

BOMB_WARNING = "ignore::PIL.Image.DecompressionBombWarning"


def _small_images(folder: Path) -> None:
    for row in SMALL_ROWS:
        write_image(folder / row["image"], color=(row["id"] * 5, 20, 30))


def test_csv_jsonl_and_parquet_give_identical_products(tmp_path: Path) -> None:
    _small_images(tmp_path)
    files = [
        write_csv(tmp_path / "p.csv", SMALL_ROWS),
        write_jsonl(tmp_path / "p.jsonl", SMALL_ROWS),
        write_parquet(tmp_path / "p.parquet", SMALL_ROWS),
        write_csv(tmp_path / "p.tsv", SMALL_ROWS, delimiter="\t"),
    ]
    catalogs = []
    for i, path in enumerate(files):
        report = ingest([path], tmp_path / f"out{i}")
        assert (report.products_written, report.rows_rejected, report.images_ok) == (4, 0, 4)
        catalogs.append(read_catalog(tmp_path / f"out{i}").products)
    assert catalogs[0] == catalogs[1] == catalogs[2] == catalogs[3]
    first = catalogs[0][0]
    assert (first.id, first.price, first.category, first.image_status) == (
        "1",
        59.5,
        ("Apparel", "Topwear", "Jackets"),
        ImageStatus.OK,
    )
    assert dict(catalogs[0][2].attributes) == {"year": "2020"} and catalogs[0][2].price is None


def test_round_trip_through_the_store(tmp_path: Path) -> None:
    _small_images(tmp_path)
    report = ingest([write_csv(tmp_path / "p.csv", SMALL_ROWS)], tmp_path / "cat")
    catalog = read_catalog(tmp_path / "cat")
    again = ingest_products(catalog.products, tmp_path / "cat2", catalog.image_root, "copy")
    assert read_catalog(tmp_path / "cat2").products == catalog.products
    assert again.products_written == report.products_written == 4
    assert catalog.image_root == tmp_path.resolve()
    image = catalog.image_path(catalog.get("40"))
    assert image is not None and image.exists()
    assert catalog.get("40").image_sha256 == check_image(image).sha256
    assert catalog.meta["source"]["mapping"]["title"] == "title"


def _bad_corpus(root: Path) -> Path:
    """A CSV catalogue with bad rows and bad images; returns the CSV path."""
    img = root / "img"
    write_image(img / "ok.jpg", fmt="JPEG")
    write_image(img / "png_named.jpg", fmt="PNG")
    write_image(img / "cmyk.jpg", "CMYK", fmt="JPEG")
    write_image(img / "pal.png", "P")
    write_image(img / "deep.png", "I;16")
    write_image(img / "alpha.png", "RGBA")
    truncated_jpeg(img / "trunc.jpg")
    corrupt_png(img / "broken.png")
    (img / "zero.jpg").write_bytes(b"")
    (img / "text.jpg").write_text("not an image at all")
    huge_png(img / "huge.png")
    lines = [
        "id,name,image,price",
        "1,Good jpeg,img/ok.jpg,10",
        "2,Png named jpg,img/png_named.jpg,11",
        "3,CMYK,img/cmyk.jpg,12",
        "4,Palette,img/pal.png,13",
        "5,Sixteen bit,img/deep.png,14",
        "6,Alpha,img/alpha.png,abc",
        "7,Truncated,img/trunc.jpg,1",
        "8,Corrupt,img/broken.png,1",
        "9,Zero bytes,img/zero.jpg,1",
        "10,Text as jpg,img/text.jpg,1",
        "11,Huge,img/huge.png,1",
        "12,Missing image,img/none.jpg,1",
        "13,Remote,https://cdn.example.com/13.jpg,1",
        "14," + "Long title " * 200 + ",img/ok.jpg,1",
        ",No id,img/ok.jpg,1",
        "1,Duplicate id,img/ok.jpg,1",
        '17,"Broken quote,img/ok.jpg,1',
        "18,No image,,1",
    ]
    data = (
        "\n".join(lines).encode("utf-8") + b"\n19,Caf\xe9 latin-1,img/ok.jpg,1\n20,Last good,img/ok.jpg,2\n"
    )
    path = root / "products.csv"
    path.write_bytes(data)
    return path


@pytest.mark.filterwarnings(BOMB_WARNING)
@pytest.mark.parametrize("workers", [1, 4])
def test_bad_input_corpus(tmp_path: Path, workers: int) -> None:
    path = _bad_corpus(tmp_path)
    report = ingest([path], tmp_path / "cat", ColumnMapping.parse(["title=name"]), workers=workers)
    catalog = read_catalog(tmp_path / "cat")
    kept = {p.id: p for p in catalog}
    assert sorted(kept, key=int) == [str(i) for i in (*range(1, 15), 18, 20)]  # every good row survives
    status = {pid: str(p.image_status) for pid, p in kept.items()}
    assert status == {
        "1": "ok",
        "2": "ok",
        "3": "ok",
        "4": "ok",
        "5": "ok",
        "6": "ok",
        "7": "corrupt",
        "8": "corrupt",
        "9": "corrupt",
        "10": "corrupt",
        "11": "too_large",
        "12": "missing",
        "13": "missing",
        "14": "ok",
        "18": "missing",
        "20": "ok",
    }
    assert kept["6"].price is None and kept["20"].price == 2.0
    rejects = read_rejects(tmp_path / "cat" / "rejects.csv")
    assert all(r.file == str(path) for r in rejects)
    where = {(r.row, r.field, r.fatal) for r in rejects}
    expected = {
        (6, "price", False),
        (7, "image", False),
        (8, "image", False),
        (9, "image", False),
        (10, "image", False),
        (11, "image", False),
        (12, "image", False),
        (13, "image", False),
        (14, "title", False),
        (15, "id", True),
        (16, "id", True),
        (17, "name", True),
        (18, "image", False),
        (19, "name", True),
    }
    assert where == expected
    by_row = {r.row: r.reason for r in rejects}
    assert "duplicate id '1' (first seen at" in by_row[16] and "row 1)" in by_row[16]
    assert "truncated" in by_row[7] and "0 bytes" in by_row[9] and "not an image" in by_row[10]
    assert "over the limit" in by_row[11] and "not found" in by_row[12] and "remote" in by_row[13]
    assert "not valid utf-8" in by_row[19]
    assert (report.rows_read, report.products_written, report.rows_rejected) == (20, 16, 4)
    assert (report.images_ok, report.images_missing, report.images_corrupt, report.images_too_large) == (
        8,
        3,
        4,
        1,
    )
    assert report.flagged == 10 and report.rejects_file == tmp_path / "cat" / "rejects.csv"
    assert catalog.meta["rejected_rows"] == 4 and len(report.sample_rejects) == 10


def test_images_unchecked_when_checks_are_off(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", SMALL_ROWS)  # images do not even exist
    report = ingest([path], tmp_path / "cat", check_images=False)
    assert report.images_unchecked == 4 and report.flagged == 0
    assert {p.image_status for p in read_catalog(tmp_path / "cat")} == {ImageStatus.UNCHECKED}


def test_image_root_and_files_in_several_folders(tmp_path: Path) -> None:
    _small_images(tmp_path / "pics")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_csv(tmp_path / "a" / "p.csv", SMALL_ROWS[:2])
    b = write_jsonl(tmp_path / "b" / "p.jsonl", SMALL_ROWS[2:])
    rooted = ingest([a, b], tmp_path / "cat", image_root=tmp_path / "pics")
    assert rooted.images_ok == 4
    catalog = read_catalog(tmp_path / "cat")
    assert catalog.get("1").image == "img/1.png" and catalog.image_root == (tmp_path / "pics").resolve()
    _small_images(tmp_path / "a")
    _small_images(tmp_path / "b")
    spread = ingest([a, b], tmp_path / "cat2")  # default root: each file's folder -> stored absolute
    assert spread.images_ok == 4
    catalog2 = read_catalog(tmp_path / "cat2")
    assert catalog2.image_root is None
    assert catalog2.get("3").image == str((tmp_path / "b" / "img" / "3.png").resolve())


def test_empty_catalogue(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    report = ingest([tmp_path / "empty.csv"], tmp_path / "cat")
    assert (report.rows_read, report.products_written, report.rows_rejected) == (0, 0, 0)
    assert "empty file" in report.sample_rejects[0]
    assert len(read_catalog(tmp_path / "cat")) == 0


def test_whole_file_errors_write_nothing(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("sku,name\n1,Hat\n")
    with pytest.raises(CatalogError, match=r"missing column 'id'.*--column id=sku"):
        ingest([tmp_path / "p.csv"], tmp_path / "cat")
    with pytest.raises(CatalogError, match=r"nope\.jsonl: no such catalogue file"):
        ingest([tmp_path / "nope.jsonl"], tmp_path / "cat")
    with pytest.raises(CatalogError, match="no catalogue files"):
        ingest([], tmp_path / "cat")
    assert not (tmp_path / "cat").exists()


def test_ingest_products_like_a_dataset_adapter(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png")
    products = [
        Product(id="a", title="A", image="a.png"),
        Product(id="b", title="B", image="gone.png"),
        Product(id="a", title="dup"),
        Product(id="c", title="", image="a.png"),
        Product(id="d", title="No image"),
    ]
    from samestyle.types import Reject

    earlier = [Reject("styles.csv", 7, "id", "bad row in the adapter's own reader")]
    report = ingest_products(products, tmp_path / "cat", tmp_path, {"dataset": "toy"}, rejects=earlier)
    assert isinstance(report, IngestReport)
    catalog = read_catalog(tmp_path / "cat")
    assert [p.id for p in catalog] == ["a", "b", "d"]
    assert [str(p.image_status) for p in catalog] == ["ok", "missing", "missing"]
    rejects = read_rejects(tmp_path / "cat" / "rejects.csv")
    assert {(r.file, r.row, r.field, r.fatal) for r in rejects} == {
        ("styles.csv", 7, "id", True),
        ("toy", 3, "id", True),
        ("toy", 4, "title", True),
        ("toy", 2, "image", False),
    }
    assert catalog.meta["source"] == {"dataset": "toy"}
    assert (report.rows_read, report.rows_rejected) == (6, 3)


@pytest.mark.real
def test_real_myntra_thumbnails_check_fast(tmp_path: Path) -> None:
    archive = shared_data_dir() / "myntra_small_images_60x80.tar.gz"
    if not archive.exists():
        pytest.skip(f"{archive} not present")
    rows = []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".jpg"):
                tar.extract(member, tmp_path, filter="data")
                rows.append({"id": Path(member.name).stem, "title": "t", "image": member.name})
            if len(rows) == 300:
                break
    path = write_csv(tmp_path / "p.csv", rows, ("id", "title", "image"))
    start = time.perf_counter()
    report = ingest([path], tmp_path / "cat", workers=2)
    assert report.images_ok == 300, report.sample_rejects
    assert time.perf_counter() - start < 10
