"""Readers query a ProductIndex while writers upsert and delete: no torn reads, no lost updates.

The writes are versioned so that every read can check itself (see reliability_concurrency.py): threads
sharing one ``ProductIndex``, and reader processes re-opening a folder while a writer process keeps saving
new generations of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from reliability_concurrency import (
    DIM,
    EYE,
    REMOVED,
    N,
    check_hits,
    check_loaded,
    new_index,
    products,
    vectors,
    write_version,
)

from samestyle.index.locking import ReadWriteLock
from samestyle.index.product_index import ProductIndex

HELPER = Path(__file__).with_name("reliability_concurrency.py")
BACKENDS = ["exact", "faiss-flat"]


def read_loop(
    index: ProductIndex, stop: threading.Event, errors: list[str], seen: set[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    while not stop.is_set():
        space, query = ("a", "b")[int(rng.integers(2))], int(rng.integers(DIM))
        try:
            hits = index.search(space, EYE[query], k=N + 5)[0]
        except Exception as exc:  # a torn state often shows as an exception
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        problem, version = check_hits(hits, space, query)
        if problem:
            errors.append(problem)
        seen.add(version)
        titles = {p.title for p in index.get_products(["p0", "p1", f"p{N // 2}"])}
        if len(titles) != 1:
            errors.append(f"get_products saw several versions: {sorted(titles)}")


def run_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"


@pytest.mark.parametrize("backend", BACKENDS)
def test_readers_never_see_a_torn_index_while_a_writer_upserts_and_deletes(
    tmp_path: Path, backend: str
) -> None:
    index = new_index(tmp_path / "idx", backend)
    stop, errors, seen, written = threading.Event(), [], set[int](), [0]

    def writer() -> None:
        """Writes until the readers saw 8 versions (and at least 30 were written), or for 30 s at most."""
        deadline = time.perf_counter() + 30
        version = 0
        try:
            while (version < 30 or len(seen) < 8) and time.perf_counter() < deadline:
                version += 1
                write_version(index, version)
        finally:
            written[0] = version
            stop.set()

    readers = [lambda s=s: read_loop(index, stop, errors, seen, s) for s in range(3)]  # type: ignore[misc]
    run_threads([writer, *readers])
    assert not errors, f"{len(errors)} torn reads, first: {errors[:3]}"
    assert written[0] >= 30 and len(seen) >= 8  # the readers really ran during many writes
    final, _ = check_hits(index.search("a", EYE[written[0] % DIM], k=N)[0], "a", written[0] % DIM)
    assert final is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_writers_lose_no_update(tmp_path: Path, backend: str) -> None:
    """Two writers upsert and remove their own products at the same time: every last write survives."""
    index = new_index(tmp_path / "idx", backend)
    rounds = 61  # the last round upserts (a multiple of 4 would end on a removal)
    errors: list[str] = []

    def writer(prefix: str) -> Callable[[], None]:
        def run() -> None:
            ids = range(40)
            try:
                for version in range(1, rounds + 1):
                    index.upsert_products(products(version, ids, prefix), vectors(version, len(ids)))
                    if version % 4 == 0:
                        index.remove_products([f"{prefix}{i}" for i in range(30, 40)])
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

        return run

    run_threads([writer("x"), writer("y"), writer("z")])
    assert not errors, errors[:3]
    assert len(index) == N + 3 * 40
    for prefix in "xyz":
        ids = [f"{prefix}{i}" for i in range(40)]
        assert {p.title for p in index.metadata.get(ids)} == {f"v{rounds}"}
        for space, vecs in vectors(rounds, 40).items():
            assert np.allclose(index.get_vectors(space, ids), vecs), (
                f"{prefix}: lost vector update in {space}"
            )
    keys = index.metadata.table.column("key").to_pylist()
    assert len(set(keys)) == len(keys)  # no key handed out twice


def test_writing_groups_several_updates_for_readers(tmp_path: Path) -> None:
    """``writing()`` makes an upsert and a removal one step; ``reading()`` holds several reads together."""
    index = new_index(tmp_path / "idx", "exact")
    stop, errors, seen = threading.Event(), [], set[int]()

    def writer() -> None:
        try:
            for version in range(1, 100):
                with index.writing():
                    index.upsert_products(products(version), vectors(version, N))
                    index.remove_products([f"p{i}" for i in range(N - REMOVED, N)])
        finally:
            stop.set()

    def grouped_reader() -> None:
        while not stop.is_set():
            with index.reading():
                n, hits = len(index), index.search("a", EYE[0], k=N)[0]
            if n != N - REMOVED or len(hits) != n:  # between a grouped upsert and removal: never
                errors.append(f"{n} products, {len(hits)} hits")

    run_threads([writer, grouped_reader, lambda: read_loop(index, stop, errors, seen, 7)])
    assert not errors, errors[:3]


def test_read_write_lock_rules() -> None:
    lock = ReadWriteLock()
    reader_upgrades = pytest.raises(RuntimeError, match="holds it for reading")
    with lock.read(), lock.read(), reader_upgrades, lock.write():  # reads nest; a reader cannot write
        pass
    with lock.write(), lock.write(), lock.read():  # a writer may write and read again
        pass
    order: list[str] = []
    with lock.read():  # a writer waits for the readers, then runs alone
        thread = threading.Thread(target=lambda: (lock.write().__enter__(), order.append("w")))
        thread.start()
        time.sleep(0.05)
        order.append("r")
    thread.join(timeout=5)
    assert order == ["r", "w"]


def test_reader_processes_always_load_a_complete_generation(tmp_path: Path) -> None:
    """A writer process upserts, deletes and saves while two reader processes re-open the folder."""
    path, stop = tmp_path / "idx", tmp_path / "stop"
    new_index(path, "faiss-flat").save()

    def start(role: str, arg: Path | int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(HELPER), role, str(path), str(arg)], stdout=subprocess.PIPE, text=True
        )

    writer = start("writer", stop)
    readers = [start("reader", 25) for _ in range(2)]
    results = [json.loads(p.communicate(timeout=150)[0]) for p in readers]
    stop.touch()
    written = json.loads(writer.communicate(timeout=150)[0])
    assert writer.returncode == 0 and all(p.returncode == 0 for p in readers)
    for r in results:
        assert r["n_errors"] == 0, r["errors"]
        assert r["opens"] >= 25 and r["versions"] >= 4, r  # it really read while the writer saved
    assert written["saves"] >= 4, written
    final = ProductIndex.open(path)
    problem, version = check_loaded(final)
    assert problem is None and version == written["saves"]
