"""Tiny generated catalogues and images (good and bad) for the catalogue tests. Everything is written
under a folder the test owns (``tmp_path``); nothing is downloaded."""

from __future__ import annotations

import csv
import io
import json
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

# A small catalogue with native types (ints, floats, None), written as CSV/JSONL/Parquet by the helpers.
SMALL_ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "title": "Blue denim jacket",
        "description": "Classic fit, two pockets",
        "category": "Apparel > Topwear > Jackets",
        "colour": "Blue",
        "year": 2012,
        "price": 59.5,
        "image": "img/1.png",
    },
    {
        "id": 2,
        "title": 'Red "summer" dress, midi',
        "description": "Line one\nline two",
        "category": "Apparel > Dress",
        "colour": "Red",
        "year": 2015,
        "price": 35.0,
        "image": "img/2.png",
    },
    {
        "id": 3,
        "title": "Café crème mug",
        "description": "",
        "category": "Home > Kitchen",
        "colour": None,
        "year": 2020,
        "price": None,
        "image": "img/3.png",
    },
    {
        "id": 40,
        "title": "Leather belt",
        "description": "Brown; 110 cm",
        "category": "Accessories",
        "colour": "Brown",
        "year": 2011,
        "price": 12.25,
        "image": "img/40.png",
    },
]
SMALL_COLUMNS = ("id", "title", "description", "category", "colour", "year", "price", "image")


def write_csv(
    path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] = SMALL_COLUMNS, delimiter: str = ","
) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return path


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def write_parquet(path: Path, rows: Sequence[dict[str, Any]], schema: pa.Schema | None = None) -> Path:
    pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), path)
    return path


def write_image(
    path: Path,
    mode: str = "RGB",
    size: tuple[int, int] = (8, 6),
    fmt: str = "PNG",
    color: Any = None,
    **save: Any,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    default: dict[str, Any] = {
        "1": 1,
        "L": 128,
        "P": 3,
        "I;16": 40000,
        "I": 40000,
        "F": 0.5,
        "CMYK": (0, 255, 255, 0),
        "RGBA": (255, 0, 0, 0),
        "LA": (0, 0),
        "PA": (3, 0),
    }
    im = Image.new(mode, size, color if color is not None else default.get(mode, (200, 30, 30)))
    if mode in ("P", "PA"):
        palette = [0, 0, 0] * 256
        palette[9:12] = [10, 200, 30]  # index 3 is green
        im.putpalette(palette)
    im.save(path, fmt, **save)
    return path


def truncated_jpeg(path: Path) -> Path:
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 80).convert("RGB").save(buf, "JPEG", quality=90)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def corrupt_png(path: Path) -> Path:
    """A PNG whose pixel data is damaged (right header, garbage in the compressed stream)."""
    path.write_bytes(_png(16, 16, b"\x78\x9c" + bytes(range(7, 60))))
    return path


def huge_png(path: Path, width: int = 12_000, height: int = 9_000) -> Path:
    """A valid single-colour greyscale PNG of ``width x height`` that is only ~100 KB on disk."""
    comp = zlib.compressobj(9)
    row = b"\x00" + b"\x7f" * width
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    path.write_bytes(_png(width, height, idat))
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width x height`` with almost no data: a decompression-bomb-style header."""
    path.write_bytes(_png(width, height, zlib.compress(b"\x00" * 64)))
    return path
