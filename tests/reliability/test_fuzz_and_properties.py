"""Bounded fuzzing of the catalogue and click-log parsers, and properties of loaders, mining and metrics.

Fuzz: any bytes under any catalogue or click-log file name end in a result or in the documented error type
(``CatalogError`` / ``ClickLogError``), never another exception; every line is accounted for; garbage
lines never cost a good row. Properties: what the loaders write they read back unchanged; CSV, JSONL and
Parquet give the same catalogue; mining does not depend on the order of the log; ranking metrics ignore
strictly increasing score transforms and the order of the gallery. (The loop-twin, monotone-recall and
miner-validity properties live in tests/eval and tests/mining; they are not repeated.)

Examples are derandomised so every run tries the same inputs; the counts are in docs/reliability.md.
``RELIABILITY_SCALE=10`` multiplies them (with fresh random inputs) for a longer campaign.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samestyle.catalog.ingest import ingest
from samestyle.catalog.store import read_catalog, read_rejects, write_catalog
from samestyle.catalog.values import clean_line
from samestyle.errors import CatalogError
from samestyle.eval import metrics as M
from samestyle.mining import ClickEvent, EventType, MiningConfig, mine_pairs
from samestyle.mining.clicklog import ClickLogError, read_click_log, write_click_log
from samestyle.types import ImageStatus, Product

SCALE = float(os.environ.get("RELIABILITY_SCALE", "1"))


@pytest.fixture(autouse=True, scope="module")
def _no_fsync() -> Iterator[None]:
    """fsync is what makes a write survive power loss, not what these tests look at: it costs ~80% of an
    ingest of a few rows here, so it is skipped in this module (the crash tests keep it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", lambda fd: None)
        yield


def budget(examples: int) -> settings:
    """``examples`` derandomised examples (times ``RELIABILITY_SCALE``, then random ones)."""
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        derandomize=SCALE == 1,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="samestyle-fuzz-") as tmp:
        yield Path(tmp)


# bytes that stress parsers: quotes, separators, line ends, bad UTF-8, byte-order marks, NUL, JSON syntax
_TOKENS = [
    b'"',
    b",",
    b"\t",
    b";",
    b"\n",
    b"\r\n",
    b"\r",
    b"\xff",
    b"\xc3",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\x00",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b'"id"',
    b'"title"',
    b"id,title",
    b"1",
    b"-",
    b"null",
    b"true",
    b"caf\xc3\xa9",
    b"\xe2\x80\x8b",
    b" ",
    b"\\",
    b"x" * 300,
]
garbage = st.one_of(
    st.binary(max_size=600),
    st.lists(st.one_of(st.sampled_from(_TOKENS), st.binary(max_size=8)), max_size=80).map(b"".join),
)


def _run_ingest(name: str, data: bytes) -> tuple[Any, list[Product], list[Any]]:
    """(report or None for the documented error, products, rejects) of ingesting ``data`` as ``name``."""
    with scratch() as tmp:
        path = tmp / name
        path.write_bytes(data)
        try:
            report = ingest([path], tmp / "cat", check_images=False)
        except CatalogError as exc:
            assert str(path) in str(exc)  # the documented error, naming the file
            return None, [], []
        rejects = read_rejects(tmp / "cat" / "rejects.csv")
        assert all(r.file == str(path) and r.reason for r in rejects)
        return report, read_catalog(tmp / "cat").products, rejects


@budget(150)
@given(
    data=garbage, name=st.sampled_from(["f.csv", "f.tsv", "f.jsonl", "f.csv.gz", "f.jsonl.gz", "f.parquet"])
)
def test_fuzz_catalogue_parsers(data: bytes, name: str) -> None:
    if name.endswith(".gz") and data[:1] != b"\x1f":
        data = gzip.compress(data)[: max(10, len(data))]  # mostly valid gzip, sometimes cut short
    report, products, _ = _run_ingest(name, data)
    if report is None:
        return
    ids = [p.id for p in products]
    assert len(set(ids)) == len(ids) and all(ids) and all(p.title for p in products)
    assert report.products_written + report.rows_rejected <= max(report.rows_read, 1) + 1


@budget(80)
@given(
    good=st.lists(st.text(st.characters(categories=["L", "N", "Zs"]), min_size=1, max_size=30), max_size=8),
    junk=st.lists(
        st.binary(max_size=60).filter(lambda b: b"\n" not in b and not b.strip().startswith(b"{")), max_size=8
    ),
    seed=st.integers(0, 2**16),
)
def test_garbage_lines_never_cost_a_good_jsonl_row(good: list[str], junk: list[bytes], seed: int) -> None:
    rows = [json.dumps({"id": f"good-{i}", "title": t}).encode() for i, t in enumerate(good)]
    lines = rows + junk
    random.Random(seed).shuffle(lines)
    _, products, _ = _run_ingest("f.jsonl", b"\n".join(lines) + b"\n")
    kept = {p.id: p.title for p in products}
    expected = {f"good-{i}": clean_line(t) for i, t in enumerate(good) if clean_line(t)}
    assert {k: v for k, v in kept.items() if k.startswith("good-")} == expected


@budget(80)
@given(
    good=st.lists(
        st.text(
            st.characters(categories=["L", "N", "Zs", "P"], exclude_characters='"-'), min_size=1, max_size=30
        ),
        max_size=8,
    ),
    junk=st.lists(st.binary(max_size=60).filter(lambda b: not set(b) & set(b'\n\r"-')), max_size=8),
    seed=st.integers(0, 2**16),
)
def test_garbage_lines_never_cost_a_good_csv_row(good: list[str], junk: list[bytes], seed: int) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    rows = []
    for i, title in enumerate(good):
        buf.seek(0), buf.truncate()
        writer.writerow([f"good-{i}", title])
        rows.append(buf.getvalue().rstrip("\n").encode())
    lines = rows + junk
    random.Random(seed).shuffle(lines)
    report, products, _ = _run_ingest("f.csv", b"id,title\n" + b"\n".join(lines) + b"\n")
    assert report is not None
    kept = {p.id: p.title for p in products if p.id.startswith("good-")}
    assert kept == {f"good-{i}": clean_line(t) for i, t in enumerate(good) if clean_line(t)}


@budget(150)
@given(data=garbage, gz=st.booleans())
def test_fuzz_click_log_bytes(data: bytes, gz: bool) -> None:
    with scratch() as tmp:
        path = tmp / ("log.jsonl.gz" if gz else "log.jsonl")
        path.write_bytes(gzip.compress(data) if gz else data)
        events, rejects = read_click_log(path)
    unmarked = data.removeprefix(b"\xef\xbb\xbf")  # a leading byte-order mark is not a line of its own
    lines = [line for line in unmarked.split(b"\n") if line.strip()]
    assert len(events) + len(rejects) == len(lines)  # every line: an event or a reject naming it
    assert all(r.file == str(path) and r.row is not None and r.reason for r in rejects)


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
FIELDS = ("session_id", "query", "product_id", "event", "position", "timestamp", "visitor_id", "variant")
plausible = {
    "session_id": st.text(max_size=6) | st.integers(),
    "query": st.text(max_size=12),
    "product_id": st.text(max_size=6),
    "event": st.sampled_from([*EventType, "CLICK", " cart ", "view"]),
    "position": st.integers(-2, 30) | st.floats(),
    "timestamp": st.floats()
    | st.integers()
    | st.sampled_from(["2024-05-01T10:00:00Z", "2024-13-01", "1714557600"]),
}


@budget(150)
@given(
    st.lists(
        st.fixed_dictionaries({}, optional={f: plausible.get(f, json_value) | json_value for f in FIELDS}),
        max_size=12,
    )
)
def test_fuzz_click_log_records(records: list[dict[str, Any]]) -> None:
    with scratch() as tmp:
        path = tmp / "log.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
        events, rejects = read_click_log(path)
        assert len(events) + len(rejects) == len(records)
        assert all(r.field is None or r.field in FIELDS for r in rejects)
        for ev in events:
            assert ev.session_id and ev.product_id and isinstance(ev.event, EventType)
            assert np.isfinite(ev.timestamp) and (ev.position is None or ev.position >= 1)
        if events:  # what was read can be written and read back
            back, none = read_click_log(write_click_log(events, tmp / "again.parquet"))
            assert none == [] and back == events


ARROW_TYPES = [
    pa.string(),
    pa.int64(),
    pa.float64(),
    pa.bool_(),
    pa.binary(),
    pa.list_(pa.string()),
    pa.struct([("x", pa.int32())]),
    pa.timestamp("ms"),
    pa.date32(),
    pa.null(),
]


@budget(150)
@given(
    st.dictionaries(st.sampled_from(FIELDS), st.sampled_from(ARROW_TYPES), min_size=1), st.integers(0, 2**16)
)
def test_fuzz_click_log_parquet_types(types: dict[str, pa.DataType], seed: int) -> None:
    rng = np.random.default_rng(seed)
    samples: dict[str, list[Any]] = {
        "string": ["s1", "click", "", "2024-05-01"],
        "int64": [1, 0, -3, 1714557600],
        "double": [1.0, float("nan"), 2.5],
        "bool": [True, False],
        "binary": [b"x", b"\xff"],
        "timestamp[ms]": [None],
        "date32[day]": [None],
    }
    columns = {}
    for name, typ in types.items():
        values = samples.get(str(typ), [None])
        columns[name] = pa.array([values[int(rng.integers(len(values)))] for _ in range(4)], typ)
    with scratch() as tmp:
        pq.write_table(pa.table(columns), tmp / "log.parquet")
        try:
            events, rejects = read_click_log(tmp / "log.parquet")
        except ClickLogError as exc:
            assert "missing column" in str(exc)
            return
    assert len(events) + len(rejects) == 4


# ---- loaders: what is written is read back ------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
products_st = st.lists(
    st.builds(
        Product,
        id=st.text(min_size=1, max_size=8),
        title=_text.filter(bool),
        description=_text,
        category=st.lists(_text, max_size=3).map(tuple),
        attributes=st.dictionaries(_text, _text, max_size=3),
        image=st.none() | _text,
        supplier_id=st.none() | _text,
        price=st.none() | st.floats(0, 1e9),
        image_status=st.sampled_from(list(ImageStatus)),
        image_sha256=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    ),
    max_size=10,
    unique_by=lambda p: p.id,
)


@budget(40)
@given(products_st)
def test_catalogue_store_round_trip(products: list[Product]) -> None:
    with scratch() as tmp:
        write_catalog(tmp / "cat", products, image_root=tmp, source={"name": "prop"})
        back = read_catalog(tmp / "cat")
    assert (
        back.products == products
        and back.image_root == tmp.resolve()
        and back.meta["products"] == len(products)
    )


row_st = st.fixed_dictionaries(
    {
        "title": _text.filter(lambda t: clean_line(t) != ""),
        "colour": _text,
        "price": st.none() | st.floats(0, 1e6),
    }
)


@budget(40)
@given(st.lists(row_st, max_size=8))
def test_csv_jsonl_and_parquet_give_the_same_catalogue(rows: list[dict[str, Any]]) -> None:
    with scratch() as tmp:
        _same_catalogue_from_three_formats(tmp, rows)


def _same_catalogue_from_three_formats(tmp: Path, rows: list[dict[str, Any]]) -> None:
    records = [{"id": f"p{i}", **r} for i, r in enumerate(rows)]
    columns = ["id", "title", "colour", "price"]
    with open(tmp / "p.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows([["" if r[c] is None else r[c] for c in columns] for r in records])
    (tmp / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    schema = pa.schema(
        [("id", pa.string()), ("title", pa.string()), ("colour", pa.string()), ("price", pa.float64())]
    )
    pq.write_table(pa.Table.from_pylist(records, schema=schema), tmp / "p.parquet")
    catalogs = []
    for name in ("p.csv", "p.jsonl", "p.parquet"):
        ingest([tmp / name], tmp / name.replace(".", "-"), check_images=False)
        catalogs.append(
            [(p.id, p.title, dict(p.attributes), p.price) for p in read_catalog(tmp / name.replace(".", "-"))]
        )
    assert catalogs[0] == catalogs[1] == catalogs[2]
    assert [c[0] for c in catalogs[0]] == [r["id"] for r in records]


events_st = st.lists(
    st.builds(
        ClickEvent,
        session_id=_text.map(str.strip).filter(bool),
        query=_text.map(str.strip),
        product_id=_text.map(str.strip).filter(bool),
        event=st.sampled_from(list(EventType)),
        timestamp=st.floats(-1e10, 1e10),
        position=st.integers(1, 10_000),
        visitor_id=st.none() | _text.map(str.strip).filter(bool),
        variant=st.none() | _text.map(str.strip).filter(bool),
    ),
    max_size=10,
)


@budget(60)
@given(events_st, st.sampled_from(["log.jsonl", "log.jsonl.gz", "log.parquet"]))
def test_click_log_round_trip(events: list[ClickEvent], name: str) -> None:
    with scratch() as tmp:
        back, rejects = read_click_log(write_click_log(events, tmp / name))
    assert rejects == [] and back == events


# ---- mining: the log's row order does not matter -------------------------------------------------------

CATALOG_PRODUCTS = [
    Product(f"p{i}", ["blue shirt", "red shirt", "blue shoe"][i % 3], category=("A", "x")) for i in range(6)
]


@budget(60)
@given(
    st.lists(
        st.builds(
            ClickEvent,
            session_id=st.sampled_from(["s1", "s2", "s3"]),
            query=st.sampled_from(["blue shirt", "shirt"]),
            product_id=st.sampled_from([p.id for p in CATALOG_PRODUCTS]),
            event=st.sampled_from(list(EventType)),
            timestamp=st.integers(0, 10**6).map(float),
            position=st.integers(1, 5),
        ),
        max_size=40,
        unique_by=lambda e: e.timestamp,
    ),
    st.integers(0, 2**16),
)
def test_mining_ignores_the_order_of_the_log(events: list[ClickEvent], seed: int) -> None:
    from samestyle.catalog.store import Catalog

    catalog = Catalog(CATALOG_PRODUCTS)
    cfg = MiningConfig(min_co_sessions=1, use_similarity=False)
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    assert mine_pairs(events, catalog, cfg).pairs == mine_pairs(shuffled, catalog, cfg).pairs


# ---- metrics: invariances the loop twins do not cover ---------------------------------------------------


@st.composite
def scored(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    q, g = draw(st.integers(1, 5)), draw(st.integers(2, 9))
    scores = np.array(draw(st.lists(st.integers(-3, 3), min_size=q * g, max_size=q * g)), float).reshape(q, g)
    gains = np.array(draw(st.lists(st.integers(0, 2), min_size=q * g, max_size=q * g)), float).reshape(q, g)
    return scores, gains, draw(st.integers(1, g + 1))


def _all_metrics(scores: np.ndarray, gains: np.ndarray, k: int) -> list[float]:
    rel = gains > 0
    ranks = M.ranks_of_relevant(scores, rel)
    return [
        M.recall_at_k(ranks, k),
        M.mrr(ranks),
        M.precision_at_k(scores, rel, k),
        M.ndcg_at_k(scores, gains, k),
        M.average_precision(scores, rel, k),
    ]


@budget(60)
@given(scored(), st.integers(0, 2**16))
def test_metrics_ignore_increasing_transforms_and_gallery_order(
    case: tuple[np.ndarray, np.ndarray, int], seed: int
) -> None:
    scores, gains, k = case
    base = _all_metrics(scores, gains, k)
    assert np.allclose(_all_metrics(3 * scores + 7, gains, k), base)  # strictly increasing: same ranking
    assert np.allclose(_all_metrics(np.exp(scores), gains, k), base)
    perm = np.random.default_rng(seed).permutation(scores.shape[1])
    assert np.allclose(_all_metrics(scores[:, perm], gains[:, perm], k), base)
    qperm = np.random.default_rng(seed + 1).permutation(scores.shape[0])
    assert np.allclose(_all_metrics(scores[qperm], gains[qperm], k), base)


@budget(60)
@given(scored())
def test_metrics_respond_to_a_new_best_or_worst_item(case: tuple[np.ndarray, np.ndarray, int]) -> None:
    scores, gains, k = case
    worst = _all_metrics(
        np.hstack([scores, np.full((len(scores), 1), -10.0)]),
        np.hstack([gains, np.zeros((len(gains), 1))]),
        k,
    )
    ranks = M.ranks_of_relevant(scores, gains > 0)
    assert np.allclose(
        worst[:2], [M.recall_at_k(ranks, k), M.mrr(ranks)]
    )  # an irrelevant last item changes no rank
    best = np.hstack([scores, np.full((len(scores), 1), 10.0)]), np.hstack([gains, np.ones((len(gains), 1))])
    assert (M.ranks_of_relevant(best[0], best[1] > 0) == 1).all()  # a relevant top item is found first
    assert M.recall_at_k(M.ranks_of_relevant(best[0], best[1] > 0), 1) == 1.0
