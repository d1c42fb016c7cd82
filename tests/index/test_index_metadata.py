"""MetadataStore and Filter: vectorised select() vs a plain-Python loop (hypothesis), parse, persistence."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samestyle.errors import ArtifactError, ConfigError
from samestyle.index import Filter, MetadataStore, UnknownIdError
from samestyle.types import ImageStatus, Product

LEVELS = ["Apparel", "apparel", "Topwear", "TOPWEAR", "Shoes", "Straße", "STRASSE"]
ATTR_KEYS = ["colour", "Colour", "size"]
ATTR_VALUES = ["Red", "red", "Blue", "M", ""]
SUPPLIERS = ["s1", "s2", "S1"]


def reference_match(p: Product, f: Filter) -> bool:
    """The obviously-correct loop that MetadataStore.select must agree with."""
    prefix = [c.casefold() for c in f.category]
    if prefix and [c.casefold() for c in p.category][: len(prefix)] != prefix:
        return False
    for key, value in f.attributes.items():
        pairs = [(k.casefold(), v.casefold()) for k, v in p.attributes.items()]
        if (key.casefold(), value.casefold()) not in pairs:
            return False
    if f.suppliers is not None and p.supplier_id not in f.suppliers:
        return False
    if p.supplier_id in f.exclude_suppliers or p.id in f.exclude_ids:
        return False
    if f.price_min is not None and (p.price is None or p.price < f.price_min):
        return False
    return not (f.price_max is not None and (p.price is None or p.price > f.price_max))


prices = st.one_of(st.none(), st.integers(0, 100).map(float), st.floats(0, 100, allow_nan=False))
products = st.lists(
    st.builds(
        lambda i, cat, attrs, sup, price: Product(
            f"p{i}", f"title {i}", category=cat, attributes=attrs, supplier_id=sup, price=price
        ),
        st.integers(0, 10_000),
        st.lists(st.sampled_from(LEVELS), max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(ATTR_KEYS), st.sampled_from(ATTR_VALUES), max_size=3),
        st.one_of(st.none(), st.sampled_from(SUPPLIERS)),
        prices,
    ),
    max_size=40,
    unique_by=lambda p: p.id,
)
filters = st.builds(
    Filter,
    category=st.lists(st.sampled_from(LEVELS), max_size=3).map(tuple),
    attributes=st.dictionaries(st.sampled_from(ATTR_KEYS), st.sampled_from(ATTR_VALUES), max_size=2),
    suppliers=st.one_of(st.none(), st.frozensets(st.sampled_from(SUPPLIERS))),
    exclude_suppliers=st.frozensets(st.sampled_from(SUPPLIERS), max_size=1),
    exclude_ids=st.frozensets(st.integers(0, 10_000).map(lambda i: f"p{i}"), max_size=3),
    price_min=st.one_of(st.none(), st.floats(0, 50, allow_nan=False)),
    price_max=st.one_of(st.none(), st.floats(50, 100, allow_nan=False)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(products, filters)
def test_select_matches_the_python_loop(items: list[Product], flt: Filter) -> None:
    store = MetadataStore.from_products(items)
    keys = dict(zip([p.id for p in items], store.keys_of([p.id for p in items]).tolist(), strict=True))
    allowed = store.select(flt)
    want = sorted(keys[p.id] for p in items if reference_match(p, flt))
    if flt.is_empty:
        assert allowed is None
    else:
        assert allowed is not None and allowed.labels.tolist() == want


def _catalogue() -> list[Product]:
    return [
        Product(
            "a",
            "Red tee",
            category=("Apparel", "Topwear", "Tshirts"),
            attributes={"baseColour": "Red"},
            supplier_id="s1",
            price=12.5,
            image_status=ImageStatus.OK,
        ),
        Product(
            "b",
            "Blue tee",
            category=("Apparel", "Topwear"),
            attributes={"baseColour": "Blue"},
            supplier_id="s2",
            price=30.0,
        ),
        Product(
            "c",
            "Red shoe",
            category=("Footwear",),
            attributes={"baseColour": "red", "size": "42"},
            supplier_id=None,
            price=None,
        ),
        Product("d", "Top hat", category=("Apparel", "Topwearish"), supplier_id="s1", price=50.0),
    ]


def _ids(store: MetadataStore, flt: Filter) -> list[str]:
    return [pid for pid, keep in zip(store.ids, store.mask(flt), strict=True) if keep]


def test_parse_and_select_examples() -> None:
    store = MetadataStore.from_products(_catalogue())
    assert _ids(store, Filter.parse("category=apparel/TOPWEAR")) == ["a", "b"]  # prefix by level, not text
    assert _ids(store, Filter.parse(["attr=baseColour:RED"])) == ["a", "c"]
    assert _ids(store, Filter.parse(["attr=baseColour:red", "attr=size:42"])) == ["c"]
    assert _ids(store, Filter.parse(["price=10..50"])) == ["a", "b", "d"]
    assert _ids(store, Filter.parse(["price=..20"])) == ["a"]
    assert _ids(store, Filter.parse(["price=30"])) == ["b"]
    assert _ids(store, Filter.parse(["supplier=s1,s2", "exclude-id=a"])) == ["b", "d"]
    assert _ids(store, Filter.parse(["exclude-supplier=s1"])) == ["b", "c"]
    assert store.select(Filter.parse([])) is None and store.select(None) is None
    assert Filter.parse("supplier=").suppliers == frozenset()  # explicit empty: nothing allowed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("colour=red", "KEY one of"),
        ("categroy=x", "Did you mean 'category'"),
        ("attr=red", "attr=NAME:VALUE"),
        ("price=ten..20", "price=MIN..MAX"),
        ("price=50..10", "empty"),
    ],
)
def test_parse_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Filter.parse([spec])


def test_upsert_remove_keep_keys_stable(tmp_path: Path) -> None:
    store = MetadataStore.from_products(_catalogue())
    keys = store.keys_of(["a", "b", "c", "d"]).tolist()
    assert keys == [0, 1, 2, 3]
    new_keys = store.upsert([Product("b", "Blue tee v2", category=("Footwear",)), Product("e", "New")])
    assert new_keys.tolist() == [1, 4] and len(store) == 5
    assert _ids(store, Filter(category=("footwear",))) == ["b", "c"]
    assert store.remove(["a", "zzz"]) == 1 and "a" not in store
    assert store.upsert([Product("a", "back")]).tolist() == [5]  # keys are never reused
    with pytest.raises(UnknownIdError, match="'zzz'"):
        store.keys_of(["zzz"])
    store.save(tmp_path)
    loaded = MetadataStore.load(tmp_path)
    assert loaded.ids == store.ids and loaded.next_key == 6
    (b,) = loaded.get(["b"])
    assert b.title == "Blue tee v2" and b.category == ("Footwear",)
    (a,) = MetadataStore.from_products(_catalogue()).get(["a"])
    assert a.attributes == {"baseColour": "Red"} and a.price == 12.5 and a.image_status == ImageStatus.OK
    with pytest.raises(ArtifactError, match="missing"):
        MetadataStore.load(tmp_path / "nope")


def test_select_is_vectorised_on_many_rows() -> None:
    rng = np.random.default_rng(0)
    n = 300_000
    cats = [["Apparel", "Topwear"], ["Apparel", "Bottomwear"], ["Footwear", "Shoes"], ["Home"]]
    colours = ["Red", "Blue", "Green", "Black"]
    pick_c, pick_col, prices = rng.integers(0, 4, n), rng.integers(0, 4, n), rng.uniform(0, 100, n)
    sup = np.arange(n) % 50
    table = pa.table(
        {
            "key": np.arange(n),
            "id": pa.array(np.char.add("p", np.arange(n).astype(str))),
            "title": pa.nulls(n, pa.string()),
            "category": pa.DictionaryArray.from_arrays(pick_c, pa.array(cats)).dictionary_decode(),
            "attributes": pa.MapArray.from_arrays(
                np.arange(n + 1), pa.array(["baseColour"] * n), pa.array(colours).take(pick_col)
            ),
            "supplier_id": pa.array(np.char.add("s", sup.astype(str))),
            "price": prices,
            "image_status": pa.nulls(n, pa.string()),
        }
    )
    store = MetadataStore(table)
    flt = Filter.parse(["category=Apparel", "attr=baseColour:red", "price=10..50", "exclude-supplier=s3"])
    store.select(flt)  # builds the encoded columns once
    start = time.perf_counter()
    allowed = store.select(flt)
    elapsed = time.perf_counter() - start
    want = (pick_c < 2) & (pick_col == 0) & (prices >= 10) & (prices <= 50) & (sup != 3)
    assert allowed is not None and allowed.labels.tolist() == np.flatnonzero(want).tolist()
    assert elapsed < 0.5  # a few ms in practice; loose bound for a shared machine
