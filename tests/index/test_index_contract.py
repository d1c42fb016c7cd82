"""The contract every registered VectorIndex backend must meet (one parametrised suite, as in timm)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from samestyle.errors import ArtifactError
from samestyle.index import (
    INDEX_BACKENDS,
    AllowList,
    ExactIndex,
    IndexInputError,
    UnknownIdError,
    VectorIndex,
    choose_backend,
)

BACKENDS = INDEX_BACKENDS.names()
DIM = 16


def test_registry_lists_every_backend() -> None:
    assert BACKENDS == ["exact", "faiss-flat", "faiss-hnsw", "faiss-ivf", "pgvector"]
    assert choose_backend(10_000, 256) == "faiss-flat"
    assert choose_backend(44_439, 1280) == "faiss-flat"  # the full Myntra image space stays exact
    assert choose_backend(150_000, 1280) == "faiss-hnsw"
    assert choose_backend(300_000, 256) == "faiss-hnsw"
    assert choose_backend(1_000_000, 256) == "faiss-ivf"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "pgvector":  # a real PostgreSQL server, started once per session
        request.getfixturevalue("pg_dsn")
    return str(request.param)


def _filled(backend: str, unit, n: int = 300) -> tuple[VectorIndex, list[str], np.ndarray]:
    vecs = unit(n, DIM, seed=1)
    ids = [f"sku-{i}" for i in range(n)]
    index = INDEX_BACKENDS.build(backend, dim=DIM)
    index.add(ids, vecs)
    return index, ids, vecs


def test_add_and_search_returns_string_ids_best_first(backend: str, unit) -> None:
    index, ids, vecs = _filled(backend, unit)
    assert len(index) == 300 and "sku-7" in index and "nope" not in index and index.dim == DIM
    hits = index.search(vecs[:5], k=4)
    assert len(hits) == 5
    for i, row in enumerate(hits):
        assert len(row) == 4
        assert row[0][0] == ids[i] and row[0][1] == pytest.approx(1.0, abs=1e-5)
        assert all(isinstance(pid, str) and isinstance(s, float) for pid, s in row)
        assert [s for _, s in row] == sorted((s for _, s in row), reverse=True)
    assert index.search(vecs[0], k=1)[0][0][0] == ids[0]  # a [dim] query is one query


def test_k_larger_than_size_and_empty_index(backend: str, unit) -> None:
    empty = INDEX_BACKENDS.build(backend, dim=DIM)
    assert len(empty) == 0
    assert empty.search(unit(2, DIM), k=5) == [[], []]
    small = INDEX_BACKENDS.build(backend, dim=DIM)
    small.add(["a", "b", "c"], unit(3, DIM))
    hits = small.search(unit(2, DIM, seed=9), k=10)
    assert [sorted(pid for pid, _ in row) for row in hits] == [["a", "b", "c"]] * 2


def test_bad_input_gives_clear_errors(backend: str, unit) -> None:
    index, ids, vecs = _filled(backend, unit, n=20)
    with pytest.raises(IndexInputError, match="16-d"):
        index.add(["x"], unit(1, DIM + 1))
    with pytest.raises(IndexInputError, match="16-d"):
        index.search(unit(1, 8), k=3)
    with pytest.raises(IndexInputError, match="L2-normalised"):
        index.add(["x"], 2 * unit(1, DIM))
    with pytest.raises(IndexInputError, match="NaN"):
        index.search(np.full((1, DIM), np.nan, np.float32), k=3)
    with pytest.raises(IndexInputError, match="already in the index"):
        index.add([ids[0]], vecs[:1])
    with pytest.raises(IndexInputError, match="unique"):
        index.add(["x", "x"], unit(2, DIM))
    with pytest.raises(IndexInputError, match="2 vectors for 1 ids"):
        index.add(["x"], unit(2, DIM))
    with pytest.raises(IndexInputError, match="positive"):
        index.search(vecs[:1], k=0)
    with pytest.raises(UnknownIdError, match="'missing'"):
        index.get_vectors(["missing"])
    assert len(index) == 20  # failed calls changed nothing


def test_upsert_replaces_and_adds(backend: str, unit) -> None:
    index, ids, vecs = _filled(backend, unit, n=50)
    new = unit(2, DIM, seed=42)
    index.upsert([ids[3], "fresh"], new)
    assert len(index) == 51
    atol = getattr(index, "reconstruct_atol", 1e-6)  # compressed codes (IVF-SQ8) decode approximately
    np.testing.assert_allclose(index.get_vectors([ids[3], "fresh"]), new, atol=atol)
    assert index.search(new[:1], k=1)[0][0][0] == ids[3]
    assert ids[3] not in [pid for pid, _ in index.search(vecs[3:4], k=3)[0][:1]]


def test_remove(backend: str, unit) -> None:
    index, ids, vecs = _filled(backend, unit, n=60)
    assert index.remove([ids[0], ids[1], "unknown", ids[0]]) == 2
    assert len(index) == 58 and ids[0] not in index
    found = {pid for row in index.search(vecs[:2], k=58) for pid, _ in row}
    assert not found & {ids[0], ids[1]} and len(found) == 58
    assert index.remove(["unknown"]) == 0
    index.add([ids[0]], vecs[:1])  # a removed id can come back
    assert index.search(vecs[:1], k=1)[0][0][0] == ids[0]


def test_filter_is_applied_inside_the_search(backend: str, unit) -> None:
    """0.5% of 4000 items allowed: exactly k hits, all allowed, equal to exact search on the subset."""
    n, k = 4000, 10
    vecs = unit(n, DIM, seed=3, clusters=20)
    ids = [f"p{i}" for i in range(n)]
    index = INDEX_BACKENDS.build(backend, dim=DIM)
    index.add(ids, vecs)
    keep = np.random.default_rng(0).choice(n, 20, replace=False)
    allowed = index.allow([ids[i] for i in keep] + ["not-there"])
    queries = unit(25, DIM, seed=4, clusters=20)
    hits = index.search(queries, k, allowed)
    reference = ExactIndex(DIM)
    reference.add([ids[i] for i in keep], vecs[keep])
    expected = reference.search(queries, k)
    for got, want, q in zip(hits, expected, queries, strict=True):
        assert len(got) == k
        assert {pid for pid, _ in got} <= {ids[i] for i in keep}
        if getattr(index, "reconstruct_atol", 0.0) > 1e-5:  # compressed codes: same quality, ties may swap
            true = {ids[i]: vecs[i] for i in keep}
            got_true = [float(true[pid] @ q) for pid, _ in got]
            np.testing.assert_allclose(got_true, [s for _, s in want], atol=0.02)
        else:
            assert [pid for pid, _ in got] == [pid for pid, _ in want]
    assert index.search(queries[:2], k, AllowList.from_labels([])) == [[], []]


def test_explicit_labels_and_allowlists(backend: str, unit) -> None:
    index = INDEX_BACKENDS.build(backend, dim=DIM)
    vecs = unit(4, DIM)
    index.add(["a", "b", "c", "d"], vecs, labels=[10, 20, 30, 40])
    assert index.labels(["c", "a"]).tolist() == [30, 10]
    hits = index.search(vecs[:1], k=4, allowed=AllowList.from_labels([20, 30, 999]))
    assert sorted(pid for pid, _ in hits[0]) == ["b", "c"]
    with pytest.raises(IndexInputError, match="already used"):
        index.add(["e"], vecs[:1], labels=[20])
    with pytest.raises(IndexInputError, match="label"):
        index.upsert(["a"], vecs[:1], labels=[11])


def test_save_load_round_trip(backend: str, unit, tmp_path: Path) -> None:
    index, ids, _ = _filled(backend, unit)
    index.upsert([ids[5]], unit(1, DIM, seed=77))
    index.remove(ids[:3])
    queries = unit(7, DIM, seed=5)
    before = index.search(queries, k=5)
    index.save(tmp_path / "space")
    loaded = VectorIndex.load(tmp_path / "space")
    assert type(loaded) is type(index) and loaded.config == index.config
    assert len(loaded) == len(index) and sorted(loaded.ids) == sorted(index.ids)
    after = loaded.search(queries, k=5)
    assert [[p for p, _ in r] for r in after] == [[p for p, _ in r] for r in before]
    np.testing.assert_allclose(
        loaded.get_vectors(ids[3:9]),
        index.get_vectors(ids[3:9]),
        atol=getattr(index, "reconstruct_atol", 1e-6),
    )
    loaded.add(["later"], unit(1, DIM, seed=8))  # labels keep counting after a reload
    assert loaded.labels(["later"])[0] not in set(loaded.labels(ids[3:]).tolist())


def test_load_errors(backend: str, unit, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"no index\.json"):
        VectorIndex.load(tmp_path / "nothing")
    index, _, _ = _filled(backend, unit, n=10)
    index.save(tmp_path / "space")
    other = "exact" if backend != "exact" else "faiss-flat"
    with pytest.raises(ArtifactError, match="not"):
        INDEX_BACKENDS.get(other).load(tmp_path / "space")  # type: ignore[attr-defined]
    (tmp_path / "space" / "ids.parquet").unlink()
    with pytest.raises(ArtifactError, match="incomplete"):
        VectorIndex.load(tmp_path / "space")
