"""Product metadata beside the vectors: a Parquet table, and :class:`Filter` -> :class:`AllowList`.

Every product has an int64 *key* (stable across upserts, never reused); a ``ProductIndex`` uses the
keys as the labels of every vector space, so one ``select`` serves all of them. Filtering is vectorised:
string columns are dictionary-encoded once (cached until the next change), so a filter on 1M products
costs a few array gathers.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from samestyle.errors import ArtifactError
from samestyle.fsio import atomic_path
from samestyle.index.filters import Filter
from samestyle.index.labels import AllowList, IndexInputError, UnknownIdError
from samestyle.types import Product

log = logging.getLogger(__name__)

METADATA_FILE = "metadata.parquet"
NEXT_KEY = b"samestyle.next_key"
SEP = "\x1f"  # joins category levels and attribute key/value; assumed absent from the text itself
SCHEMA = pa.schema(
    [
        ("key", pa.int64()),
        ("id", pa.string()),
        ("title", pa.string()),
        ("category", pa.list_(pa.string())),
        ("attributes", pa.map_(pa.string(), pa.string())),
        ("supplier_id", pa.string()),
        ("price", pa.float64()),
        ("image_status", pa.string()),
    ]
)


@dataclass(frozen=True)
class _Columns:
    """Dictionary-encoded, case-folded views of the table, for vectorised filtering."""

    keys: np.ndarray  # [N] int64, ascending
    cat_codes: np.ndarray  # [N] code of each row's category path
    cat_prefix_codes: dict[tuple[str, ...], np.ndarray]  # case-folded prefix -> codes of paths under it
    n_cats: int
    pair_rows: np.ndarray  # [P] row of each (attribute, value) pair, grouped by pair code
    pair_starts: np.ndarray  # [n_pairs + 1] CSR offsets into pair_rows per code
    pair_codes: dict[tuple[str, str], np.ndarray]  # case-folded (key, value) -> codes
    supplier_codes: np.ndarray  # [N] code of each row's supplier, -1 for none
    supplier_code: dict[str, int]
    prices: np.ndarray  # [N] float64, NaN for none


def _encode(arr: pa.Array) -> tuple[np.ndarray, list[str]]:
    """Dictionary-encode a string array: (codes [N] int64, -1 for null; values)."""
    enc = pc.dictionary_encode(arr)
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, enc.dictionary.to_pylist()


def _category_columns(table: pa.Table) -> tuple[np.ndarray, dict[tuple[str, ...], np.ndarray], int]:
    joined = pc.fill_null(pc.binary_join(table.column("category").combine_chunks(), SEP), "")
    codes, values = _encode(joined)
    under: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for code, raw in enumerate(values):
        path = tuple(part.casefold() for part in raw.split(SEP)) if raw else ()
        for depth in range(1, len(path) + 1):
            under[path[:depth]].append(code)
    return codes, {p: np.asarray(c, np.int64) for p, c in under.items()}, len(values)


def _attribute_columns(table: pa.Table) -> tuple[np.ndarray, np.ndarray, dict[tuple[str, str], np.ndarray]]:
    arr = table.column("attributes").combine_chunks()
    offsets = arr.offsets.to_numpy().astype(np.int64)
    parents = np.repeat(np.arange(len(arr), dtype=np.int64), np.diff(offsets))  # [P]
    lo, hi = int(offsets[0]), int(offsets[-1])
    keys, items = arr.keys.slice(lo, hi - lo), pc.fill_null(arr.items.slice(lo, hi - lo), "")
    codes, values = _encode(pc.binary_join_element_wise(keys, items, SEP))
    valid = arr.is_valid().to_numpy(zero_copy_only=False)[parents] if len(parents) else np.zeros(0, bool)
    codes, parents = codes[valid], parents[valid]
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(values) + 1))
    by_pair: dict[tuple[str, str], list[int]] = defaultdict(list)
    for code, raw in enumerate(values):
        key, _, value = raw.partition(SEP)
        by_pair[(key.casefold(), value.casefold())].append(code)
    return parents[order], starts, {p: np.asarray(c, np.int64) for p, c in by_pair.items()}


def _build_columns(table: pa.Table) -> _Columns:
    cat_codes, cat_prefix, n_cats = _category_columns(table)
    pair_rows, pair_starts, pair_codes = _attribute_columns(table)
    sup_codes, sup_values = _encode(table.column("supplier_id").combine_chunks())
    prices = pc.fill_null(table.column("price").combine_chunks(), float("nan")).to_numpy(zero_copy_only=False)
    return _Columns(
        keys=table.column("key").to_numpy().astype(np.int64),
        cat_codes=cat_codes,
        cat_prefix_codes=cat_prefix,
        n_cats=n_cats,
        pair_rows=pair_rows,
        pair_starts=pair_starts,
        pair_codes=pair_codes,
        supplier_codes=sup_codes,
        supplier_code={s: i for i, s in enumerate(sup_values)},
        prices=np.asarray(prices, np.float64),
    )


def products_table(products: Sequence[Product], keys: Sequence[int] | np.ndarray) -> pa.Table:
    """The metadata columns of ``products`` (with their ``keys``) as a table in :data:`SCHEMA`."""
    cols = {
        "key": np.asarray(keys, np.int64),
        "id": [p.id for p in products],
        "title": [p.title for p in products],
        "category": [list(p.category) for p in products],
        "attributes": [list(p.attributes.items()) for p in products],
        "supplier_id": [p.supplier_id for p in products],
        "price": [None if p.price is None else float(p.price) for p in products],
        "image_status": [str(p.image_status) for p in products],
    }
    return pa.table(cols, schema=SCHEMA)


class MetadataStore:
    """Filterable product metadata (id, title, category path, attributes, supplier, price, image status).

    Example:
        >>> store = MetadataStore.from_products([Product("p1", "Red tee", category=("Apparel", "Topwear"))])
        >>> store.select(Filter.parse(["category=apparel"])).labels.tolist()
        [0]
    """

    def __init__(self, table: pa.Table | None = None, next_key: int | None = None) -> None:
        table = SCHEMA.empty_table() if table is None else table.select(SCHEMA.names).cast(SCHEMA)
        self._table = table.sort_by("key").combine_chunks()
        keys = self._table.column("key").to_numpy()
        self.next_key = max(int(keys.max()) + 1 if len(keys) else 0, next_key or 0)
        self._cols: _Columns | None = None
        self._row_of: dict[str, int] | None = None
        if pc.count_distinct(self._table.column("id")).as_py() != len(self._table):
            raise IndexInputError("metadata has duplicate product ids")

    @classmethod
    def from_products(cls, products: Iterable[Product]) -> MetadataStore:
        store = cls()
        store.upsert(products)
        return store

    @property
    def table(self) -> pa.Table:
        """The metadata as an Arrow table, sorted by key (do not mutate)."""
        return self._table

    def __len__(self) -> int:
        return self._table.num_rows

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._rows()

    @property
    def ids(self) -> list[str]:
        return self._table.column("id").to_pylist()

    def _rows(self) -> dict[str, int]:
        if self._row_of is None:
            self._row_of = {pid: i for i, pid in enumerate(self._table.column("id").to_pylist())}
        return self._row_of

    def _columns(self) -> _Columns:
        if self._cols is None:
            self._cols = _build_columns(self._table)
        return self._cols

    def _row_indices(self, ids: Sequence[str]) -> np.ndarray:
        rows = self._rows()
        try:
            return np.fromiter((rows[i] for i in ids), dtype=np.int64, count=len(ids))
        except KeyError as exc:
            raise UnknownIdError(f"product {exc.args[0]!r} has no metadata in this index") from None

    def keys_of(self, ids: Sequence[str]) -> np.ndarray:
        """Keys [N] of ``ids``; raises ``UnknownIdError`` for an id without metadata."""
        return self._columns().keys[self._row_indices(ids)]

    def get(self, ids: Sequence[str]) -> list[Product]:
        """Products of ``ids`` rebuilt from the metadata (no description or image reference)."""
        recs = self._table.take(pa.array(self._row_indices(ids))).to_pylist()
        return [Product.from_record(rec) for rec in recs]

    def upsert(self, products: Iterable[Product]) -> np.ndarray:
        """Add or replace products (an existing id keeps its key). Returns their keys [N]."""
        products = list(products)
        ids = [p.id for p in products]
        if len(set(ids)) != len(ids):
            raise IndexInputError("upsert_products() got the same product id twice")
        rows = self._rows()
        old_keys = self._columns().keys
        keys = np.empty(len(ids), np.int64)
        fresh = self.next_key
        for n, pid in enumerate(ids):
            if pid in rows:
                keys[n] = old_keys[rows[pid]]
            else:
                keys[n], fresh = fresh, fresh + 1
        kept = self._table.filter(pc.invert(pc.is_in(self._table.column("id"), pa.array(ids, pa.string()))))
        self._set_table(pa.concat_tables([kept, products_table(products, keys)]))
        self.next_key = fresh
        return keys

    def remove(self, ids: Iterable[str]) -> int:
        """Drop the products whose ids are present; returns how many were dropped."""
        gone = [i for i in dict.fromkeys(ids) if i in self._rows()]
        if gone:
            drop = pc.is_in(self._table.column("id"), pa.array(gone, pa.string()))
            self._set_table(self._table.filter(pc.invert(drop)))
        return len(gone)

    def _set_table(self, table: pa.Table) -> None:
        self._table = table.sort_by("key").combine_chunks()
        self._cols, self._row_of = None, None

    def select(self, flt: Filter | None) -> AllowList | None:
        """Keys of the products ``flt`` keeps, or None when there is no filter (everything allowed)."""
        if flt is None or flt.is_empty:
            return None
        return AllowList(self._columns().keys[self.mask(flt)])

    def mask(self, flt: Filter) -> np.ndarray:
        """Boolean [N] over rows (key order): which products ``flt`` keeps."""
        c = self._columns()
        keep = np.ones(len(self), dtype=bool)
        if flt.category:
            ok = np.zeros(c.n_cats, dtype=bool)
            ok[c.cat_prefix_codes.get(tuple(p.casefold() for p in flt.category), [])] = True
            keep &= ok[c.cat_codes]
        for key, value in flt.attributes.items():
            codes = c.pair_codes.get((key.casefold(), value.casefold()), np.zeros(0, np.int64))
            has = np.zeros(len(self), dtype=bool)
            for code in codes.tolist():
                has[c.pair_rows[c.pair_starts[code] : c.pair_starts[code + 1]]] = True
            keep &= has
        if flt.suppliers is not None:
            keep &= self._supplier_mask(c, flt.suppliers)
        if flt.exclude_suppliers:
            keep &= ~self._supplier_mask(c, flt.exclude_suppliers)
        if flt.price_min is not None:
            keep &= c.prices >= flt.price_min  # a product without a price fails any price bound
        if flt.price_max is not None:
            keep &= c.prices <= flt.price_max
        if flt.exclude_ids:
            rows = self._rows()
            keep[[rows[i] for i in flt.exclude_ids if i in rows]] = False
        return keep

    @staticmethod
    def _supplier_mask(c: _Columns, suppliers: Iterable[str]) -> np.ndarray:
        ok = np.zeros(len(c.supplier_code) + 1, dtype=bool)  # slot 0: no supplier
        ok[[c.supplier_code[s] + 1 for s in suppliers if s in c.supplier_code]] = True
        return ok[c.supplier_codes + 1]

    def save(self, directory: str | Path) -> Path:
        """Write ``metadata.parquet`` (atomically) into ``directory``; returns the file."""
        target = Path(directory) / METADATA_FILE
        table = self._table.replace_schema_metadata({NEXT_KEY: str(self.next_key).encode()})
        with atomic_path(target) as tmp:
            pq.write_table(table, tmp)
        return target

    @classmethod
    def load(cls, directory: str | Path) -> MetadataStore:
        path = Path(directory) / METADATA_FILE
        if not path.exists():
            raise ArtifactError(f"{path}: missing; the index is incomplete, rebuild it")
        try:
            table = pq.read_table(path)
            next_key = int((table.schema.metadata or {}).get(NEXT_KEY, b"0"))
            return cls(table, next_key)
        except (pa.ArrowException, KeyError, ValueError) as exc:
            raise ArtifactError(f"{path}: unreadable product metadata ({exc}); rebuild the index") from None


__all__ = ["METADATA_FILE", "Filter", "MetadataStore", "products_table"]
