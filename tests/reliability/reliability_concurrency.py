"""Shared by the concurrency tests and their processes: versioned writes and self-checking reads.

Every write of version ``v`` gives *all* products the title ``"v<v>"`` and, in space ``a``, the unit vector
``e[v % DIM]`` (in space ``b``, ``e[(v + 1) % DIM]``), in one ``upsert_products`` call; every third version
is followed by a ``remove_products`` of the last ``REMOVED`` products. So one search can check itself:
all its hits must carry the same version, each score must be the one that version's vector gives, and the
hit count must be the whole catalogue or the catalogue minus the removed products.

Run as a script it is one of the two processes of the cross-process test::

    python reliability_concurrency.py writer INDEX STOP_FILE  # upserts, deletes, saves until STOP_FILE exists
    python reliability_concurrency.py reader INDEX OPENS      # re-opens the folder, checks every load

and prints a JSON summary on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from samestyle.index.product_index import ProductIndex
from samestyle.types import Hit, Product

DIM = 8
N = 120
REMOVED = 20
EYE = np.eye(DIM, dtype=np.float32)


def products(version: int, ids: range = range(N), prefix: str = "p") -> list[Product]:
    return [Product(f"{prefix}{i}", f"v{version}", category=("A", f"c{i % 3}")) for i in ids]


def vectors(version: int, n: int) -> dict[str, np.ndarray]:
    return {
        "a": np.repeat(EYE[version % DIM][None], n, 0),
        "b": np.repeat(EYE[(version + 1) % DIM][None], n, 0),
    }


def new_index(path: Path, backend: str) -> ProductIndex:
    index = ProductIndex.create(path, products(0))
    ids = [f"p{i}" for i in range(N)]
    for space, vecs in vectors(0, N).items():
        index.add_space(space, ids, vecs, backend=backend)
    return index


def write_version(index: ProductIndex, version: int) -> None:
    index.upsert_products(products(version), vectors(version, N))
    if version % 3 == 0:
        index.remove_products([f"p{i}" for i in range(N - REMOVED, N)])


def check_hits(hits: list[Hit], space: str, query: int) -> tuple[str | None, int]:
    """(what is wrong with one search result or None, its version)."""
    titles = {h.product.title if h.product else None for h in hits}
    if len(titles) != 1 or None in titles:
        return f"hits from several versions or without metadata: {sorted(map(str, titles))}", -1
    version = int(str(titles.pop())[1:])
    shift = 0 if space == "a" else 1
    expected = 1.0 if (version + shift) % DIM == query else 0.0
    if any(abs(h.score - expected) > 1e-5 for h in hits):
        return f"version {version}: scores {sorted({round(h.score, 3) for h in hits})} != {expected}", version
    if len(hits) not in (N, N - REMOVED):
        return f"version {version}: {len(hits)} hits, expected {N} or {N - REMOVED}", version
    return None, version


def check_loaded(index: ProductIndex) -> tuple[str | None, int]:
    """(what is wrong with a freshly opened index or None, its version): one version everywhere."""
    titles = set(index.metadata.table.column("title").to_pylist())
    if len(titles) != 1:
        return f"metadata holds several versions: {sorted(titles)}", -1
    version = int(titles.pop()[1:])
    for space in ("a", "b"):
        if len(index.space(space)) != len(index):
            return f"version {version}: space {space} has {len(index.space(space))} of {len(index)}", version
        query = (version + (space == "b")) % DIM
        problem, seen = check_hits(index.search(space, EYE[query], k=N + 5)[0], space, query)
        if problem or seen != version:
            return problem or f"search saw version {seen} in an index of version {version}", version
    return None, version


MAX_SECONDS = 90.0  # a cap for a very busy machine; the loops below end on counts, not on time


def writer(path: Path, stop_file: Path) -> dict[str, object]:
    """Upsert, delete and save new generations until ``stop_file`` appears."""
    index = ProductIndex.open(path)
    deadline, version = time.perf_counter() + MAX_SECONDS, 0
    while not stop_file.exists() and time.perf_counter() < deadline:
        version += 1
        write_version(index, version)
        index.save()
    return {"saves": version}


def reader(path: Path, opens_wanted: int) -> dict[str, object]:
    """Re-open and check the index until it did ``opens_wanted`` loads and saw 4 versions."""
    deadline, opens, errors, seen = time.perf_counter() + MAX_SECONDS, 0, [], set()
    while (opens < opens_wanted or len(seen) < 4) and time.perf_counter() < deadline:
        try:
            index = ProductIndex.open(path)
        except Exception as exc:
            errors.append(f"open: {type(exc).__name__}: {exc}")
            continue
        opens += 1
        problem, version = check_loaded(index)
        if problem:
            errors.append(problem)
        seen.add(version)
    return {"opens": opens, "errors": errors[:20], "n_errors": len(errors), "versions": len(seen)}


if __name__ == "__main__":
    role, folder, arg = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    print(json.dumps(writer(folder, Path(arg)) if role == "writer" else reader(folder, int(arg))))
