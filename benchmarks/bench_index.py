"""Index backends on synthetic clustered unit vectors: build time, single-query latency, HNSW recall.

Run:
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_index.py --n 100000 --dim 256 \
        --out benchmarks/results/index.json

FAISS builds with all cores and searches with ``--search-threads`` (default 1: on a small shared
machine two OpenMP threads per single query made flat search ~4x slower). NumPy's BLAS threads follow
``OPENBLAS_NUM_THREADS``; both settings are recorded in the output.

Latency is per call of ``VectorIndex.search`` with one query (validation and id mapping included),
unfiltered and with random filters keeping ``--filter-shares`` of the vectors. Recall@k is HNSW's
overlap with exact search over the same allowed set. ``--metadata-rows`` also times
``MetadataStore.select`` on a synthetic table of that many products.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from samestyle.fsio import write_json
from samestyle.index import INDEX_BACKENDS, AllowList, Filter, MetadataStore, VectorIndex

log = logging.getLogger("bench_index")


def clustered(n: int, dim: int, clusters: int, spread: float, seed: int) -> np.ndarray:
    """[n, dim] unit vectors scattered around ``clusters`` random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + spread * rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def latency(index: VectorIndex, queries: np.ndarray, k: int, allowed: AllowList | None) -> dict[str, float]:
    """p50/p99/mean milliseconds of single-query searches (after two warm-up calls)."""
    for q in queries[:2]:
        index.search(q[None, :], k, allowed)
    times = []
    for q in queries:
        start = time.perf_counter()
        index.search(q[None, :], k, allowed)
        times.append((time.perf_counter() - start) * 1e3)
    arr = np.asarray(times)
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
    }


def recall(got: list[list[tuple[str, float]]], want: list[list[tuple[str, float]]]) -> float:
    found = sum(len({p for p, _ in g} & {p for p, _ in w}) for g, w in zip(got, want, strict=True))
    return found / max(1, sum(len(w) for w in want))


def bench_backends(args: argparse.Namespace) -> dict[str, Any]:
    import faiss

    default_threads = faiss.omp_get_max_threads()
    both = clustered(args.n + args.queries, args.dim, args.clusters, args.spread, args.seed)
    base, queries = both[: args.n], both[args.n :]
    ids = [f"p{i}" for i in range(args.n)]
    rng = np.random.default_rng(args.seed + 1)
    filters = {
        f"filter_{share:g}": AllowList.from_labels(np.flatnonzero(rng.random(args.n) < share))
        for share in args.filter_shares
    }
    results: dict[str, Any] = {}
    exact_hits: dict[str, list[list[tuple[str, float]]]] = {}
    for name in args.backends:
        index = INDEX_BACKENDS.build(name, dim=args.dim)
        faiss.omp_set_num_threads(args.build_threads or default_threads)
        start = time.perf_counter()
        index.add(ids, base)
        faiss.omp_set_num_threads(args.search_threads or default_threads)
        row: dict[str, Any] = {
            "build_s": time.perf_counter() - start,
            "unfiltered": latency(index, queries, args.k, None),
        }
        for label, allowed in filters.items():
            row[label] = {"allowed": len(allowed), **latency(index, queries, args.k, allowed)}
        cases: list[tuple[str, AllowList | None]] = [("unfiltered", None), *filters.items()]
        for label, case in cases:
            hits = index.search(queries, args.k, case)
            if name == "exact":
                exact_hits[label] = hits
            elif label in exact_hits:
                row[label][f"recall@{args.k}"] = recall(hits, exact_hits[label])
        results[name] = row
        log.info("%s: %s", name, json.dumps(row))
    return results


def bench_metadata(rows: int, seed: int) -> dict[str, Any]:
    """Time ``MetadataStore.select`` for a 4-condition filter over ``rows`` synthetic products."""
    rng = np.random.default_rng(seed)
    cats = pa.array([["Apparel", "Topwear"], ["Apparel", "Bottomwear"], ["Footwear", "Shoes"], ["Home"]])
    colours = pa.array(["Red", "Blue", "Green", "Black", "White"])
    table = pa.table(
        {
            "key": np.arange(rows),
            "id": pa.array([f"p{i}" for i in range(rows)]),
            "title": pa.nulls(rows, pa.string()),
            "category": cats.take(rng.integers(0, 4, rows)),
            "attributes": pa.MapArray.from_arrays(
                np.arange(rows + 1), pa.array(["baseColour"] * rows), colours.take(rng.integers(0, 5, rows))
            ),
            "supplier_id": pa.array([f"s{i}" for i in rng.integers(0, 500, rows)]),
            "price": rng.uniform(1, 200, rows),
            "image_status": pa.nulls(rows, pa.string()),
        }
    )
    store = MetadataStore(table)
    flt = Filter.parse(
        ["category=apparel/topwear", "attr=baseColour:red", "price=10..50", "exclude-supplier=s7"]
    )
    start = time.perf_counter()
    allowed: AllowList | None = store.select(flt)
    first = time.perf_counter() - start
    times = []
    for _ in range(20):
        start = time.perf_counter()
        allowed = store.select(flt)
        times.append((time.perf_counter() - start) * 1e3)
    return {
        "rows": rows,
        "allowed": len(allowed or []),
        "first_select_s (builds encoded columns)": first,
        "select_p50_ms": float(np.percentile(times, 50)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=1.0, help="noise around a centre (1.0: cos ~0.5)")
    parser.add_argument("--filter-shares", type=float, nargs="*", default=[0.01, 0.1, 0.3])
    parser.add_argument("--backends", nargs="*", default=["exact", "faiss-flat", "faiss-hnsw"])
    parser.add_argument("--build-threads", type=int, default=0, help="FAISS threads to build (0: all)")
    parser.add_argument("--search-threads", type=int, default=1, help="FAISS threads to search (0: all)")
    parser.add_argument("--metadata-rows", type=int, default=1_000_000, help="0 to skip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write (default: stdout only)")
    args = parser.parse_args()
    log.addHandler(logging.StreamHandler())
    log.setLevel(logging.INFO)
    if "exact" in args.backends:
        args.backends = ["exact", *[b for b in args.backends if b != "exact"]]  # the reference goes first
    import faiss

    report = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "faiss": faiss.__version__,
            "faiss_omp_threads": faiss.omp_get_max_threads(),
            "numpy": np.__version__,
            "env_threads": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
            "load_avg_at_start": os.getloadavg(),
        },
        "backends": bench_backends(args),
    }
    if args.metadata_rows:
        report["metadata"] = bench_metadata(args.metadata_rows, args.seed)
    text = json.dumps(report, indent=2)
    if args.out:
        write_json(args.out, report)
    print(text)


if __name__ == "__main__":
    main()
