"""ANN at catalogue scale: build time, memory per product, single-query latency and recall@10 vs exact.

Run one configuration per process (so a long build can run in the background and memory is measured
cleanly), e.g.:

    OPENBLAS_NUM_THREADS=2 .venv/bin/python benchmarks/bench_scale.py --n 1000000 --config ivf-sq8 \
        --out benchmarks/results/scale/1m_ivf-sq8.json

Configurations: ``flat`` (exact FAISS), ``hnsw`` (M=32, efC=100, efSearch=64), ``ivf-sq8``, ``ivf-fp16``,
``ivf-pq`` (64 B a vector), ``ivf-pq32`` (32 B), ``ivf-flat`` (all IVF with auto nlist and nprobe
calibrated for recall 0.95), ``pgvector`` (needs pgserver; HNSW m=16, ef_construction=64).
The catalogue is ``samestyle.bench.synthetic`` (clustered, low intrinsic dimension, unit vectors); it
and the exact ground truth are cached under ``--data-dir``. Builds use every core; searches run one query
per call on one FAISS thread (``VectorIndex.search``: validation and id mapping included). Filters keep a
random share of products (``--filter-shares``); their recall is against exact search over the subset.
``--e2e-text-encoder NAME`` also times encode(text) -> 384->256 projection -> search on the built index.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.bench.synthetic import SyntheticCatalog, SyntheticSpec
from samestyle.fsio import write_json
from samestyle.index import INDEX_BACKENDS, AllowList, HNSWConfig, IVFConfig, VectorIndex

log = logging.getLogger("bench_scale")

CONFIGS: dict[str, tuple[str, Any]] = {
    "flat": ("faiss-flat", None),
    "hnsw": ("faiss-hnsw", HNSWConfig()),
    "ivf-sq8": ("faiss-ivf", IVFConfig(codec="sq8")),
    "ivf-fp16": ("faiss-ivf", IVFConfig(codec="fp16")),
    "ivf-flat": ("faiss-ivf", IVFConfig(codec="flat")),
    "ivf-pq": ("faiss-ivf", IVFConfig(codec="pq")),
    "ivf-pq32": ("faiss-ivf", IVFConfig(codec="pq", pq_m=32)),
}


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def dataset(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(base [n, d] memmap, queries [q, d], ground truth {name: (allowed labels or None, top-k labels)})."""
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    spec = SyntheticSpec(dim=args.dim, seed=args.seed)
    gen = SyntheticCatalog(spec)
    stem = f"synthetic-{args.n}x{args.dim}-s{args.seed}"
    base_file = data_dir / f"{stem}.npy"
    if not base_file.exists():
        start = time.perf_counter()
        gen.write(base_file, args.n)
        log.info("wrote %s in %.1fs", base_file, time.perf_counter() - start)
    base = np.load(base_file, mmap_mode="r")
    queries = gen.queries(args.queries)
    gt_file = data_dir / f"{stem}-gt-q{args.queries}-k{args.k}.npz"
    rng = np.random.default_rng(args.seed + 1)
    allowed = {f"filter_{s:g}": np.flatnonzero(rng.random(args.n) < s) for s in args.filter_shares}
    if not gt_file.exists():
        import faiss

        arr = np.ascontiguousarray(base)
        truth = {"unfiltered": faiss.knn(queries, arr, args.k, metric=faiss.METRIC_INNER_PRODUCT)[1]}
        for name, rows in allowed.items():
            sub = faiss.knn(
                queries, np.ascontiguousarray(arr[rows]), args.k, metric=faiss.METRIC_INNER_PRODUCT
            )[1]
            truth[name] = rows[sub]
        np.savez(gt_file, **truth)
        del arr
    gt = dict(np.load(gt_file))
    if any(name not in gt for name in allowed):
        raise SystemExit(f"{gt_file} lacks some --filter-shares; delete it to recompute")
    return base, queries, {name: (allowed.get(name), gt[name]) for name in ["unfiltered", *allowed]}


def latency_recall(
    index: VectorIndex, queries: np.ndarray, k: int, allowed: AllowList | None, truth: np.ndarray
) -> dict[str, float]:
    for q in queries[:3]:
        index.search(q[None, :], k, allowed)
    times, found = [], 0
    for q, want in zip(queries, truth, strict=True):
        start = time.perf_counter()
        hits = index.search(q[None, :], k, allowed)[0]
        times.append((time.perf_counter() - start) * 1e3)
        found += len({int(p) for p, _ in hits} & set(want.tolist()))
    arr = np.asarray(times)
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        f"recall@{k}": found / truth.size,
    }


def build(args: argparse.Namespace, base: np.ndarray) -> tuple[VectorIndex, dict[str, Any]]:
    if args.config == "pgvector":
        from samestyle.index.pgvector_backend import PgVectorConfig

        backend, config = "pgvector", PgVectorConfig(dsn=args.dsn or "")  # a fresh table, dropped at the end
    else:
        backend, config = CONFIGS[args.config]
    gc.collect()
    rss0 = rss_bytes()
    index = INDEX_BACKENDS.build(backend, dim=args.dim, config=config)
    start = time.perf_counter()
    # one bulk add, as ProductIndex.build does (IVF trains on the first add reaching min_train); ids are
    # the row numbers, so recall compares labels.
    index.add([str(i) for i in range(args.n)], np.ascontiguousarray(base), labels=np.arange(args.n))
    if hasattr(index, "finish_build"):
        index.finish_build()
    build_s = time.perf_counter() - start
    gc.collect()
    info: dict[str, Any] = {
        "backend": backend,
        "build_s": build_s,
        "rss_per_product_b": (rss_bytes() - rss0) / args.n,
    }
    faiss_index = getattr(index, "_index", None)
    if faiss_index is not None:
        import faiss

        info["index_bytes_per_product"] = len(faiss.serialize_index(faiss_index)) / args.n
    for attr in ("nlist", "nprobe"):
        if hasattr(index, attr):
            info[attr] = getattr(index, attr)
    if hasattr(index, "storage_bytes"):
        info["index_bytes_per_product"] = index.storage_bytes() / args.n
    return index, info


def e2e_text(args: argparse.Namespace, index: VectorIndex) -> dict[str, Any]:
    """encode one title -> linear 384 -> dim projection -> normalise -> search, per query."""
    from samestyle.catalog.store import read_catalog
    from samestyle.models import TEXT_ENCODERS

    encoder = TEXT_ENCODERS.build(args.e2e_text_encoder, num_threads=1)
    titles = [p.title for p in read_catalog(args.e2e_catalog).products[: args.queries]]
    proj = np.random.default_rng(0).normal(size=(encoder.dim, args.dim)).astype(np.float32)
    times = []
    for title in titles[:3] + titles:
        start = time.perf_counter()
        z = encoder.encode_texts([title]) @ proj
        index.search(z / np.linalg.norm(z, axis=1, keepdims=True), args.k)
        times.append((time.perf_counter() - start) * 1e3)
    arr = np.asarray(times[3:])
    return {
        "encoder": args.e2e_text_encoder,
        "p50_ms": float(np.median(arr)),
        "p99_ms": float(np.percentile(arr, 99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--config", default="ivf-sq8", choices=[*CONFIGS, "pgvector"])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--filter-shares", type=float, nargs="*", default=[0.01, 0.1])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=".cache/samestyle/bench/scale")
    parser.add_argument("--dsn", default=None, help="pgvector: a PostgreSQL DSN (default: start pgserver)")
    parser.add_argument("--e2e-text-encoder", default=None)
    parser.add_argument("--e2e-catalog", default=".cache/samestyle/work/myntra/catalog")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import faiss

    base, queries, truth = dataset(args)
    index, result = build(args, base)
    log.info("%s built in %.1fs", args.config, result["build_s"])
    faiss.omp_set_num_threads(1)
    for name, (rows, want) in truth.items():
        allowed = None if rows is None else AllowList.from_labels(rows)
        result[name] = latency_recall(index, queries, args.k, allowed, want)
        if rows is not None:
            result[name]["allowed"] = len(rows)
        log.info("%s %s: %s", args.config, name, result[name])
    if args.e2e_text_encoder:
        result["e2e_text"] = e2e_text(args, index)
        log.info("e2e: %s", result["e2e_text"])
    if hasattr(index, "drop"):
        index.drop()
    out = {
        "args": vars(args),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "shared": True},
        "result": result,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, out)
    print(json.dumps(out["result"], indent=1))


if __name__ == "__main__":
    main()
