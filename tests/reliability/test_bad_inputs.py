"""Bad input through the whole pipeline (CLI, fake encoders): every good row is processed, every bad one is
reported with its file, row and field, and no command ends in a traceback.

What the catalogue and click-log unit tests already pin (tests/catalog: the ingest corpus of bad images and
rows, loaders, validation; tests/mining: bad click-log lines) is not repeated here. This file adds what they
do not reach: the bad corpus *past* ingest (embed, index, search, with and without image checks), images
they lack (truncated PNG, garbled JPEG scan data, JPEG named .png, animated GIF named .jpg, 1x1, LA and
1-bit, a 3.6-gigapixel header), a 200 KB CSV field, damaged compressed files and Parquet row groups, odd
Parquet types, wrong-typed Parquet click logs, and an empty catalogue through every command.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import gzip
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "catalog"))
from catalog_fakes import corrupt_png, huge_png, png_header_only, truncated_jpeg, write_image

from samestyle.catalog.ingest import ingest
from samestyle.catalog.store import read_catalog, read_rejects
from samestyle.cli import main
from samestyle.errors import CatalogError
from samestyle.index.product_index import ProductIndex
from samestyle.mining.clicklog import ClickLogError, read_click_log
from samestyle.pipeline.embeddings import EmbeddingSet

BOMB_WARNING = "ignore::PIL.Image.DecompressionBombWarning"


def _garbled_jpeg(path: Path) -> None:
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 80).convert("RGB").save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    data[len(data) // 2 : len(data) // 2 + 300] = bytes(300)  # zeros in the scan data: decodes, garbled
    path.write_bytes(bytes(data))


def _truncated_png(path: Path) -> None:
    write_image(path, "RGBA", size=(40, 30))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _animated_gif(path: Path) -> None:
    frames = [Image.new("P", (8, 8), i) for i in range(3)]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:])


# image file -> (how to make it, usable for an image vector?)
IMAGES: dict[str, tuple[Callable[[Path], Any], bool]] = {
    "ok.jpg": (lambda p: write_image(p, fmt="JPEG"), True),
    "cmyk.jpg": (lambda p: write_image(p, "CMYK", fmt="JPEG"), True),
    "palette.png": (lambda p: write_image(p, "P"), True),
    "sixteen.png": (lambda p: write_image(p, "I;16"), True),
    "alpha.png": (lambda p: write_image(p, "RGBA"), True),
    "grey-alpha.png": (lambda p: write_image(p, "LA"), True),
    "one-bit.png": (lambda p: write_image(p, "1"), True),
    "jpeg-named.png": (lambda p: write_image(p, fmt="JPEG"), True),
    "anim-gif-named.jpg": (_animated_gif, True),
    "one-pixel.png": (lambda p: write_image(p, size=(1, 1)), True),
    "garbled-scan.jpg": (_garbled_jpeg, True),  # decodable: a garbled picture is still a picture
    "truncated.jpg": (truncated_jpeg, False),
    "truncated.png": (_truncated_png, False),
    "corrupt.png": (corrupt_png, False),
    "zero.jpg": (lambda p: p.write_bytes(b""), False),
    "text.jpg": (lambda p: p.write_text("not an image"), False),
    "108-megapixels.png": (huge_png, False),
    "bomb-header.png": (lambda p: png_header_only(p, 60_000, 60_000), False),
    "absent.png": (lambda p: None, False),
}
LONG_TITLE = "very long title " * 12_500  # 200,000 characters: over the csv module's default field limit


def _corpus(root: Path) -> tuple[Path, dict[str, bool], set[int]]:
    """The CSV, ``{good id: has a usable image}``, and the data rows that must be dropped."""
    img = root / "img"
    img.mkdir(parents=True)
    for name, (make, _) in IMAGES.items():
        make(img / name)
    rows = [["id", "name", "image", "price"]]
    good: dict[str, bool] = {}
    for i, (name, (_, usable)) in enumerate(IMAGES.items()):
        rows.append([f"g{i}", f"product with {name.replace('.', ' ')} number {i}", name, str(i)])
        good[f"g{i}"] = usable
    rows += [
        ["long", LONG_TITLE, "ok.jpg", "1"],  # kept, title cut
        ["mixed", "Ünïcödé ✓ Ελληνικά עברית 中文 \u200b emoji 👗", "ok.jpg", "₹1,299.00"],  # kept
        ["noprice", "a product with a bad price", "ok.jpg", "cheap"],  # kept without a price
        ["", "row without an id", "ok.jpg", "1"],  # dropped
        ["g0", "a duplicate id", "ok.jpg", "1"],  # dropped
        ["   ", "an id of spaces", "ok.jpg", "1"],  # dropped
    ]
    good.update({"long": True, "mixed": True, "noprice": True})
    dropped = {len(rows) - 3, len(rows) - 2, len(rows) - 1}  # data rows (1-based, header not counted)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    data = buf.getvalue().encode("utf-8")
    data += b'quote,"an unbalanced quote,ok.jpg,1\n'  # dropped (row len(rows))
    data += b"latin,caf\xe9 cr\xe8me,ok.jpg,1\n"  # dropped: not UTF-8 (row len(rows) + 1)
    data += b"last,the last good row,ok.jpg,2\n"
    dropped |= {len(rows), len(rows) + 1}
    good["last"] = True
    path = root / "products.csv"
    path.write_bytes(data)
    return path, good, dropped


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def _fake_embed(
    capsys: pytest.CaptureFixture[str], cat: str | Path, emb: str | Path, cache: Path
) -> tuple[int, str, str]:
    """``samestyle embed`` with the fake encoders and the feature cache in ``cache``."""
    fakes = ("--image-encoder", "fake", "--text-encoder", "fake", "--cache", str(cache))
    return _cli(capsys, "embed", "--catalog", str(cat), "--out", str(emb), *fakes)


@pytest.mark.filterwarnings(BOMB_WARNING)
@pytest.mark.parametrize("check_images", [True, False])
def test_bad_corpus_through_ingest_embed_index_and_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], check_images: bool
) -> None:
    path, good, dropped = _corpus(tmp_path)
    cat, emb, idx = tmp_path / "cat", tmp_path / "emb", tmp_path / "idx"
    flags = [] if check_images else ["--no-check-images"]
    mapping = ["--column", "title=name", "--image-root", str(tmp_path / "img")]
    assert _cli(capsys, "ingest", str(path), "--out", str(cat), *mapping, *flags)[0] == 0
    catalog = read_catalog(cat)
    assert sorted(catalog.ids) == sorted(good)  # every good row, and only those
    assert len(catalog.get("long").title) == 1000 and catalog.get("mixed").price == 1299.0
    rejects = read_rejects(cat / "rejects.csv")
    assert all(r.file == str(path) and r.row is not None for r in rejects)
    assert {r.row for r in rejects if r.fatal} == dropped  # each dropped row, by number
    assert all(r.field for r in rejects)  # every reject names its field
    flagged = {(r.product_id, r.field) for r in rejects if not r.fatal}
    assert {("long", "title"), ("noprice", "price")} <= flagged
    if check_images:  # unusable images are flagged at ingest, naming the field
        bad_images = {pid for pid, usable in good.items() if not usable}
        assert {pid for pid, f in flagged if f == "image"} == bad_images

    code, out, err = _fake_embed(capsys, cat, emb, tmp_path / "cache")
    assert code == 0, err
    vectors = EmbeddingSet.load(emb)
    has_image = dict(zip(vectors.ids, vectors.present["image"].tolist(), strict=True))
    assert has_image == good  # every usable image has a vector, no other
    assert vectors.present["text"].all()

    assert _cli(capsys, "index", "--catalog", str(cat), "--embeddings", str(emb), "--out", str(idx))[0] == 0
    index = ProductIndex.open(idx)
    assert len(index) == len(good) and set(index.space("image").ids) == {p for p, u in good.items() if u}
    code, out, _ = _cli(capsys, "search", "--index", str(idx), "--text", "the last good row", "--json")
    assert code == 0 and json.loads(out)[0]["id"] == "last"
    code, out, _ = _cli(capsys, "search", "--index", str(idx), "--image", str(tmp_path / "img" / "cmyk.jpg"))
    assert code == 0 and out.strip()
    code, _, err = _cli(capsys, "search", "--index", str(idx), "--image", str(tmp_path / "img" / "zero.jpg"))
    assert code == 2 and "zero.jpg" in err and "0 bytes" in err  # a bad query image: one clear line


def test_empty_catalogue_through_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.csv").write_text("id,title\n", encoding="utf-8")
    cat, emb, idx = (str(tmp_path / n) for n in ("cat", "emb", "idx"))
    assert _cli(capsys, "ingest", str(tmp_path / "empty.csv"), "--out", cat)[0] == 0
    assert read_catalog(cat).products == []
    assert _fake_embed(capsys, cat, emb, tmp_path / "cache")[0] == 0
    assert _cli(capsys, "index", "--catalog", cat, "--embeddings", emb, "--out", idx)[0] == 0
    code, out, _ = _cli(capsys, "search", "--index", idx, "--text", "anything", "--json")
    assert code == 0 and json.loads(out) == []
    code, _, err = _cli(
        capsys,
        "train",
        "--out",
        str(tmp_path / "run"),
        "--set",
        f'data.catalog="{cat}"',
        "--set",
        f'data.embeddings="{emb}"',
    )
    assert code == 2 and "split" in err and "0 products" in err
    log = tmp_path / "clicks.jsonl"
    log.write_text("", encoding="utf-8")
    code, out, _ = _cli(
        capsys, "mine", "--catalog", cat, "--log", str(log), "--out", str(tmp_path / "p.parquet")
    )
    assert code == 0 and "mined 0 pairs" in out
    code, _, err = _cli(capsys, "simulate-clicks", "--catalog", cat, "--out", str(tmp_path / "sim.jsonl"))
    assert code == 2 and err.startswith("error: ")


def test_catalogue_without_any_usable_image_refuses_to_train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "".join(f"{i},item {i} kind {i % 5} colour {i % 3},gone{i}.jpg\n" for i in range(80))
    (tmp_path / "p.csv").write_text("id,title,image\n" + rows, encoding="utf-8")
    cat, emb = str(tmp_path / "cat"), str(tmp_path / "emb")
    assert _cli(capsys, "ingest", str(tmp_path / "p.csv"), "--out", cat)[0] == 0
    assert _fake_embed(capsys, cat, emb, tmp_path / "cache")[0] == 0
    code, _, err = _cli(
        capsys,
        "train",
        "--out",
        str(tmp_path / "run"),
        "--set",
        f'data.catalog="{cat}"',
        "--set",
        f'data.embeddings="{emb}"',
        "--set",
        "train.epochs=1",
    )
    assert code == 2 and "usable image" in err and "rejects.csv" in err


# ---- damaged containers: keep what can be read, name where it broke ---------------------------------


def _lines(n: int, fmt: str) -> bytes:
    if fmt == "csv":
        return ("id,title\n" + "".join(f"{i},title {i}\n" for i in range(n))).encode()
    return "".join(json.dumps({"id": i, "title": f"title {i}"}) + "\n" for i in range(n)).encode()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_truncated_gzip_catalogue_keeps_the_rows_before_the_damage(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"p.{fmt}.gz"
    path.write_bytes(gzip.compress(_lines(5000, fmt))[:-300])
    report = ingest([path], tmp_path / "cat", check_images=False)
    catalog = read_catalog(tmp_path / "cat")
    kept = len(catalog)
    assert 4000 < kept < 5000 and catalog.ids == [str(i) for i in range(kept)]  # every row before it
    (reject,) = read_rejects(tmp_path / "cat" / "rejects.csv")
    assert reject.file == str(path) and reject.row == kept + 1 and reject.fatal
    assert "damaged after line" in reject.reason and report.rows_rejected == 1
    for name, content in (
        ("h.csv.gz", b"id,title" + b"x" * 5000),
        ("blank-first.csv.gz", b"\n" + b"x" * 100),
    ):
        (tmp_path / name).write_bytes(gzip.compress(content)[:-5])  # cut before the end of the header
        with pytest.raises(
            CatalogError, match=rf"{name}: (damaged before the end of the header|cannot open)"
        ):
            ingest([tmp_path / name], tmp_path / "cat2", check_images=False)


def test_utf16_catalogue_cut_mid_character(tmp_path: Path) -> None:
    """A UTF-16 file (Excel's "Unicode text") cut in the middle of a character: an error or a reject naming
    the file, never a UnicodeDecodeError (found by the fuzz campaign)."""
    rows = "id\ttitle\n" + "".join(f"{i}\ttitle {i}\n" for i in range(3000))
    data = rows.encode("utf-16")
    (tmp_path / "small.tsv").write_bytes(data[:7])  # the byte-order mark, "id<tab>" and half a character
    with pytest.raises(CatalogError, match=r"small\.tsv: damaged before the end of the header"):
        ingest([tmp_path / "small.tsv"], tmp_path / "cat1", check_images=False)
    (tmp_path / "big.tsv").write_bytes(data[:-1])
    ingest([tmp_path / "big.tsv"], tmp_path / "cat2", check_images=False)
    kept = read_catalog(tmp_path / "cat2").ids
    assert 2000 < len(kept) < 3000 and kept == [str(i) for i in range(len(kept))]
    (reject,) = read_rejects(tmp_path / "cat2" / "rejects.csv")
    assert reject.row == len(kept) + 1 and "UnicodeDecodeError" in reject.reason


def test_damaged_parquet_row_group_costs_only_its_rows(tmp_path: Path) -> None:
    table = pa.table(
        {"id": [str(i) for i in range(12_000)], "title": [f"title number {i}" * 3 for i in range(12_000)]}
    )
    pq.write_table(table, tmp_path / "p.parquet", row_group_size=4000)
    meta = pq.ParquetFile(tmp_path / "p.parquet").metadata.row_group(1).column(1)
    data = bytearray((tmp_path / "p.parquet").read_bytes())
    start = meta.data_page_offset + 64
    data[start : start + 2000] = bytes(2000)  # zeros inside row group 1's title pages
    (tmp_path / "p.parquet").write_bytes(bytes(data))
    ingest([tmp_path / "p.parquet"], tmp_path / "cat", check_images=False)
    ids = read_catalog(tmp_path / "cat").ids
    assert ids == [str(i) for i in (*range(4000), *range(8000, 12_000))]
    (reject,) = read_rejects(tmp_path / "cat" / "rejects.csv")
    assert reject.row == 4001 and "rows 4001..8000" in reject.reason and "row group 1" in reject.reason


def test_huge_csv_field_is_cut_not_dropped(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text(f"id,title\n1,{LONG_TITLE}\n2,ok\n", encoding="utf-8")
    ingest([tmp_path / "p.csv"], tmp_path / "cat", check_images=False)
    assert [len(p.title) for p in read_catalog(tmp_path / "cat")] == [1000, 2]
    (reject,) = read_rejects(tmp_path / "cat" / "rejects.csv")
    assert (reject.row, reject.field, reject.fatal) == (1, "title", False)


# ---- Parquet catalogues and click logs with odd column types ------------------------------------------

PARQUET_CATALOGUES: dict[str, tuple[pa.Table, list[str], list[tuple[int, str]]]] = {
    # name: (table, ids kept, (row, field) rejected)
    "struct title": (pa.table({"id": ["a", "b"], "title": [{"x": 1}, {"x": 2}]}), ["a", "b"], []),
    "binary title": (
        pa.table({"id": ["a", "b"], "title": pa.array([b"caf\xc3\xa9", b"\xff\xfe"], pa.binary())}),
        ["a", "b"],
        [],
    ),
    "int list category": (
        pa.table(
            {
                "id": ["a", "b"],
                "title": ["t", "u"],
                "category": pa.array([[1, 2], None], pa.list_(pa.int64())),
            }
        ),
        ["a", "b"],
        [],
    ),
    "timestamp id": (
        pa.table({"id": pa.array([dt.datetime(2020, 1, 1), None], pa.timestamp("s")), "title": ["t", "u"]}),
        ["2020-01-01 00:00:00"],
        [(2, "id")],
    ),
    "decimal price": (
        pa.table(
            {
                "id": ["a", "b"],
                "title": ["t", "u"],
                "price": pa.array([decimal.Decimal("1.50"), decimal.Decimal("-2")]),
            }
        ),
        ["a", "b"],
        [(2, "price")],
    ),
    "dictionary strings": (
        pa.table(
            {
                "id": pa.array(["a", "b"]).dictionary_encode(),
                "title": pa.array(["t", "u"]).dictionary_encode(),
            }
        ),
        ["a", "b"],
        [],
    ),
    "large strings": (
        pa.table(
            {"id": pa.array(["a", "b"], pa.large_string()), "title": pa.array(["t", "u"], pa.large_string())}
        ),
        ["a", "b"],
        [],
    ),
    "null-typed image": (
        pa.table({"id": ["a", "b"], "title": ["t", "u"], "image": pa.array([None, None], pa.null())}),
        ["a", "b"],
        [(1, "image"), (2, "image")],
    ),
    "nested lists": (
        pa.table({"id": ["a", "b"], "title": ["t", "u"], "deep": [[[1]], [[2, 3]]]}),
        ["a", "b"],
        [],
    ),
    "NaN float id": (pa.table({"id": [float("nan"), 1.0], "title": ["t", "u"]}), ["1"], [(1, "id")]),
    "bool title": (pa.table({"id": ["a", "b"], "title": [True, False]}), ["a", "b"], []),
    "int image": (
        pa.table({"id": ["a", "b"], "title": ["t", "u"], "image": [1, 2]}),
        ["a", "b"],
        [(1, "image"), (2, "image")],
    ),
    "struct attributes": (
        pa.table({"id": ["a", "b"], "title": ["t", "u"], "attributes": [{"k": "v", "n": 1}, None]}),
        ["a", "b"],
        [],
    ),
    "list price": (
        pa.table({"id": ["a", "b"], "title": ["t", "u"], "price": [[1.0], [2.0, 3.0]]}),
        ["a", "b"],
        [(1, "price"), (2, "price")],
    ),
}


@pytest.mark.parametrize("name", list(PARQUET_CATALOGUES))
def test_parquet_catalogue_with_odd_types(tmp_path: Path, name: str) -> None:
    table, kept, rejected = PARQUET_CATALOGUES[name]
    pq.write_table(table, tmp_path / "p.parquet")
    ingest([tmp_path / "p.parquet"], tmp_path / "cat", image_root=tmp_path)
    assert read_catalog(tmp_path / "cat").ids == kept
    rejects = read_rejects(tmp_path / "cat" / "rejects.csv")
    assert sorted((r.row or 0, r.field or "") for r in rejects) == rejected
    assert all(r.file == str(tmp_path / "p.parquet") for r in rejects)


_CLICKS = {
    "session_id": ["s1", "s2"],
    "query": ["q", "q"],
    "product_id": ["a", "b"],
    "event": ["click", "click"],
    "position": [1, 2],
    "timestamp": [1.0e9, 1.1e9],
}
CLICK_LOGS: dict[str, tuple[dict[str, Any], list[str], list[tuple[int, str]]]] = {
    # name: (columns replaced, product ids kept, (row, field) rejected)
    "string positions": ({"position": ["1", "x"]}, [], [(1, "position"), (2, "position")]),
    "bool timestamps": ({"timestamp": [True, False]}, [], [(1, "timestamp"), (2, "timestamp")]),
    "list product ids": ({"product_id": [["a"], ["b"]]}, [], [(1, "product_id"), (2, "product_id")]),
    "struct product ids": ({"product_id": [{"x": 1}, {"x": 2}]}, [], [(1, "product_id"), (2, "product_id")]),
    "int session ids": ({"session_id": [1, 2]}, ["a", "b"], []),
    "string timestamps": ({"timestamp": ["2024-01-01", "nope"]}, ["a"], [(2, "timestamp")]),
    "date timestamps": (
        {"timestamp": pa.array([dt.date(2024, 1, 1), None], pa.date32())},
        [],
        [(1, "timestamp"), (2, "timestamp")],
    ),
    "NaN position": ({"position": [1.0, float("nan")]}, ["a"], [(2, "position")]),
    "negative position": ({"position": [2**40, -1]}, ["a"], [(2, "position")]),
    "int events": ({"event": [1, 2]}, [], [(1, "event"), (2, "event")]),
    "binary queries": ({"query": pa.array([b"q", b"\xff"], pa.binary())}, [], [(1, "query"), (2, "query")]),
    "dictionary events": ({"event": pa.array(["click", "order"]).dictionary_encode()}, ["a", "b"], []),
}


@pytest.mark.parametrize("name", list(CLICK_LOGS))
def test_parquet_click_log_with_wrong_types(tmp_path: Path, name: str) -> None:
    columns, kept, rejected = CLICK_LOGS[name]
    pq.write_table(pa.table({**_CLICKS, **columns}), tmp_path / "log.parquet")
    events, rejects = read_click_log(tmp_path / "log.parquet")
    assert [e.product_id for e in events] == kept
    assert [(r.row, r.field) for r in rejects] == rejected
    assert all(r.file == str(tmp_path / "log.parquet") and r.reason for r in rejects)


def test_click_log_gzip_damage_and_byte_order_mark(tmp_path: Path) -> None:
    good = json.dumps(
        {"session_id": "s", "query": "q", "product_id": "p", "event": "click", "position": 1, "timestamp": 1}
    ).encode()
    (tmp_path / "bom.jsonl").write_bytes(
        b"\xef\xbb\xbf" + good + b"\n" + good + b"\n"
    )  # as Windows tools write
    events, rejects = read_click_log(tmp_path / "bom.jsonl")
    assert len(events) == 2 and rejects == []
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress((good + b"\n") * 3000)[:-100])
    events, rejects = read_click_log(tmp_path / "cut.jsonl.gz")
    assert len(events) > 2000 and len(rejects) == 1 and rejects[0].row == len(events) + 1
    assert "damaged after line" in rejects[0].reason
    (tmp_path / "junk.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    with pytest.raises(ClickLogError, match=r"junk\.jsonl\.gz: not a readable gzip file"):
        read_click_log(tmp_path / "junk.jsonl.gz")
