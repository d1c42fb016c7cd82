"""The catalogue on disk: ``catalog.parquet`` + ``rejects.csv`` + ``catalog.json`` in one folder.

Every file is written atomically. ``catalog.parquet`` is the commit point: it carries its own metadata
(the ``catalog.json`` content, in the Parquet schema metadata), so a reader never pairs new products with
an older ``catalog.json`` (or none) when a writer dies between the two files. ``rejects.csv`` is written
before it and ``catalog.json``, a readable copy of the metadata, after it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from samestyle.errors import ArtifactError
from samestyle.fsio import atomic_path, read_json, write_json, write_text
from samestyle.types import ImageStatus, Product, Reject

CATALOG_FILE = "catalog.parquet"
REJECTS_FILE = "rejects.csv"
META_FILE = "catalog.json"
META_KEY = b"samestyle.catalog"  # catalog.json's content, inside catalog.parquet's schema metadata
FORMAT_VERSION = 1
REJECT_COLUMNS = ("file", "row", "field", "reason", "product_id", "fatal")

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("title", pa.string()),
        ("description", pa.string()),
        ("category", pa.list_(pa.string())),
        ("attributes", pa.map_(pa.string(), pa.string())),
        ("image", pa.string()),
        ("supplier_id", pa.string()),
        ("price", pa.float64()),
        ("image_status", pa.string()),
        ("image_sha256", pa.string()),
    ]
)


@dataclass
class Catalog:
    """Products in catalogue order, with the folder their relative image paths are resolved against."""

    products: list[Product]
    image_root: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    _by_id: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {p.id: i for i, p in enumerate(self.products)}

    def __len__(self) -> int:
        return len(self.products)

    def __iter__(self) -> Iterator[Product]:
        return iter(self.products)

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._by_id

    def get(self, product_id: str) -> Product:
        try:
            return self.products[self._by_id[product_id]]
        except KeyError:
            raise KeyError(f"product id '{product_id}' is not in the catalogue") from None

    def position(self, product_id: str) -> int:
        return self._by_id[product_id]

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.products]

    def image_path(self, product: Product) -> Path | None:
        """Absolute path of a product's image, or None when it has none."""
        if product.image is None:
            return None
        path = Path(product.image)
        if not path.is_absolute() and self.image_root is not None:
            path = self.image_root / path
        return path


def products_table(products: Iterable[Product]) -> pa.Table:
    records = [p.to_record() for p in products]
    cols: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for rec in records:
        for name in SCHEMA.names:
            value = rec[name]
            if name == "attributes":
                value = list(value.items())
            cols[name].append(value)
    return pa.table(cols, schema=SCHEMA)


def table_products(table: pa.Table) -> list[Product]:
    return [Product.from_record(rec) for rec in table.to_pylist()]


def rejects_csv(rejects: Sequence[Reject]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(REJECT_COLUMNS)
    for r in rejects:
        writer.writerow(
            [
                r.file,
                "" if r.row is None else r.row,
                r.field or "",
                r.reason,
                r.product_id or "",
                int(r.fatal),
            ]
        )
    return buf.getvalue()


def read_rejects(path: str | Path) -> list[Reject]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [
            Reject(
                file=row["file"],
                row=int(row["row"]) if row["row"] else None,
                field=row["field"] or None,
                reason=row["reason"],
                product_id=row["product_id"] or None,
                fatal=row["fatal"] == "1",
            )
            for row in csv.DictReader(fh)
        ]


def write_catalog(
    out_dir: str | Path,
    products: Sequence[Product],
    rejects: Sequence[Reject] = (),
    image_root: str | Path | None = None,
    source: dict[str, Any] | None = None,
) -> Path:
    """Write a catalogue folder atomically (data files first, ``catalog.json`` last). Returns the folder.

    Args:
        out_dir: folder to write (created).
        products: the accepted products, ids unique.
        rejects: every problem found, fatal (row dropped) or not (row kept, flagged).
        image_root: folder relative image paths resolve against.
        source: free-form provenance (input files, column mapping, dataset name) saved in the metadata.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = [p.id for p in products]
    if len(set(ids)) != len(ids):
        raise ArtifactError(f"{out}: refusing to write a catalogue with duplicate product ids")
    write_text(out / REJECTS_FILE, rejects_csv(rejects))
    status_counts: dict[str, int] = {}
    for p in products:
        status_counts[str(p.image_status)] = status_counts.get(str(p.image_status), 0) + 1
    meta = {
        "format_version": FORMAT_VERSION,
        "products": len(products),
        "rejected_rows": sum(1 for r in rejects if r.fatal),
        "flagged": sum(1 for r in rejects if not r.fatal),
        "image_status": status_counts,
        "image_root": str(Path(image_root).resolve()) if image_root is not None else None,
        "source": source or {},
    }
    table = products_table(products)
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta, sort_keys=True, default=str).encode()})
    with atomic_path(out / CATALOG_FILE) as tmp:
        pq.write_table(table, tmp)  # the commit point
    write_json(out / META_FILE, meta)
    return out


def read_catalog(path: str | Path) -> Catalog:
    """Load a catalogue folder written by :func:`write_catalog` (or a bare ``catalog.parquet``)."""
    path = Path(path)
    folder = path.parent if path.suffix == ".parquet" else path
    data = folder / CATALOG_FILE
    if not data.exists():
        raise ArtifactError(f"{folder}: no {CATALOG_FILE} here; create one with 'samestyle ingest'")
    table = pq.read_table(data)
    meta: dict[str, Any] = {}
    embedded = (table.schema.metadata or {}).get(META_KEY)
    if embedded is not None:  # written with the products: always theirs
        meta = json.loads(embedded)
    elif (folder / META_FILE).exists():  # a catalogue written before the metadata moved into the Parquet
        try:
            meta = read_json(folder / META_FILE)
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{folder / META_FILE}: not valid JSON ({exc})") from None
    if meta and meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{folder / META_FILE}: catalogue format {meta.get('format_version')} is not supported "
            f"(this samestyle reads {FORMAT_VERSION}); re-run 'samestyle ingest'"
        )
    root = meta.get("image_root")
    return Catalog(table_products(table), Path(root) if root else None, meta)


__all__ = [
    "CATALOG_FILE",
    "META_FILE",
    "REJECTS_FILE",
    "Catalog",
    "ImageStatus",
    "read_catalog",
    "read_rejects",
    "write_catalog",
]
