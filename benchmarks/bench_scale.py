"""ANN at catalogue scale: build time, memory per product, single-query latency and recall@10 vs exact.

Run one configuration per process (so a long build can run in the background and memory is measured
cleanly), e.g.:

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scale.py --n 1000000 --config ivf-sq8 \
        --filter-shares 0.01 0.1 --category-shares 0.01 0.1 --widen-baseline \
        --out benchmarks/results/scale/1m_ivf-sq8.json

Configurations: ``flat`` (exact FAISS), ``hnsw`` (M=32, efC=100, efSearch=64), ``ivf-sq8``, ``ivf-fp16``,
``ivf-pq`` (64 B a vector), ``ivf-pq32`` (32 B), ``ivf-flat`` (all IVF with auto nlist and nprobe
calibrated for recall 0.95), ``pgvector`` (needs pgserver; HNSW m=16, ef_construction=64).
The catalogue is ``samestyle.bench.synthetic`` (clustered, low intrinsic dimension, unit vectors); it
and the exact ground truth are cached under ``--data-dir``. Builds use every core; searches run one query
per call on one FAISS thread (``VectorIndex.search``: validation and id mapping included). Filters keep a
random share of products (``--filter-shares``: ``filter_<share>``) or whole categories of the synthetic
catalogue drawn until they hold about that share (``--category-shares``: ``category_<share>``, the way a
metadata filter such as ``category=Shoes`` selects); their recall is against exact search over the
subset. Latency is reported as wall time and as the CPU time of the searching thread (``cpu_p50_ms``,
``cpu_p99_ms``), which leaves out the waits for a core on a shared machine. The 1-minute load average
is sampled every 2 s while the benchmark runs. ``--widen-baseline`` also times IVF's previous filter
rule (nprobe widened by 1 / allowed share) on the same index, and ``--array-baseline Q`` pgvector's
previous one (the allow-list as an array parameter) on the first Q queries, for a side-by-side.
``--e2e-index DIR`` also times a text query end to end: DIR's text encoder (``--e2e-text-encoder NAME``
overrides it) and trained joint text head, then the search on the built index (without ``--e2e-index``, a
random 384 -> 256 map stands in for the head).

pgvector builds take long: ``--pg-keep`` leaves the table in the database and ``--pg-table NAME`` reuses a
kept table that already holds the ``--n`` rows (only the searches run; ``build_s`` is then null).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.bench.load import LoadSampler
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


def _categories(gen: SyntheticCatalog, n: int, path: Path) -> np.ndarray:
    """The synthetic category of each of the ``n`` rows (regenerated once, then cached in ``path``)."""
    if not path.exists():
        cats = np.concatenate([gen.vectors(s, min(n, s + 65_536))[1] for s in range(0, n, 65_536)])
        np.save(path, cats)
    return np.load(path)


def _category_rows(cats: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Rows of whole categories, drawn in random order until they hold at least ``share`` of the rows."""
    counts = np.bincount(cats)
    order = rng.permutation(len(counts))
    take = order[: int(np.searchsorted(np.cumsum(counts[order]), share * len(cats))) + 1]
    return np.flatnonzero(np.isin(cats, take))


def _fingerprint(rows: np.ndarray | None) -> np.ndarray:
    if rows is None:
        return np.zeros(3, np.int64)
    r = rows.astype(np.int64)
    return np.array([len(r), int(r.sum()), int((r * 7919 % 1_000_003).sum())], np.int64)


def _truth(queries: np.ndarray, arr: np.ndarray, rows: np.ndarray | None, k: int) -> np.ndarray:
    import faiss

    if rows is None:
        return faiss.knn(queries, arr, k, metric=faiss.METRIC_INNER_PRODUCT)[1]
    sub = faiss.knn(queries, np.ascontiguousarray(arr[rows]), k, metric=faiss.METRIC_INNER_PRODUCT)[1]
    return rows[sub]


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
    rng = np.random.default_rng(args.seed + 1)
    allowed = {f"filter_{s:g}": np.flatnonzero(rng.random(args.n) < s) for s in args.filter_shares}
    if args.category_shares:
        cats = _categories(gen, args.n, data_dir / f"{stem}-categories.npy")
        cat_rng = np.random.default_rng(args.seed + 2)
        allowed.update({f"category_{s:g}": _category_rows(cats, s, cat_rng) for s in args.category_shares})
    truth: dict[str, np.ndarray] = {}
    for suffix, names in (("", ["unfiltered", *(a for a in allowed if a.startswith("filter_"))]),
                          ("-cat", [a for a in allowed if a.startswith("category_")])):  # fmt: skip
        gt_file = data_dir / f"{stem}-gt-q{args.queries}-k{args.k}{suffix}.npz"
        have = dict(np.load(gt_file)) if gt_file.exists() else {}
        # the allowed rows depend on the order of the shares (one generator): a fingerprint of the rows
        # each truth was computed for catches a different order (files without one are trusted)
        prints = {name: _fingerprint(allowed.get(name)) for name in names}
        stale = [
            n
            for n in names
            if n not in have or not np.array_equal(have.get(f"{n}:rows", prints[n]), prints[n])
        ]
        if stale:
            arr = np.ascontiguousarray(base)
            have.update({name: _truth(queries, arr, allowed.get(name), args.k) for name in stale})
            del arr
        if stale or any(f"{n}:rows" not in have for n in names):
            have.update({f"{name}:rows": prints[name] for name in names})
            np.savez(gt_file, **have)
        truth.update({name: have[name] for name in names})
    return base, queries, {name: (allowed.get(name), truth[name]) for name in truth}


def latency_recall(
    index: VectorIndex,
    queries: np.ndarray,
    k: int,
    allowed: AllowList | None,
    truth: np.ndarray,
    search: Callable[[np.ndarray], list[int]] | None = None,
) -> dict[str, float]:
    """p50/p99 wall ms of one query a call, the same for the calling thread's CPU time (what a query
    costs this process, without the waits for a core that other jobs cause; for pgvector the server's
    work is not in it), and recall@k against ``truth``."""

    def default(q: np.ndarray) -> list[int]:
        return [int(p) for p, _ in index.search(q[None, :], k, allowed)[0]]

    search = search or default
    for q in queries[:3]:
        search(q)
    times, cpu, found = [], [], 0
    for q, want in zip(queries, truth, strict=True):
        start, start_cpu = time.perf_counter(), time.thread_time()
        hits = search(q)
        times.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.thread_time() - start_cpu) * 1e3)
        found += len(set(hits) & set(want.tolist()))
    arr, cpu_arr = np.asarray(times), np.asarray(cpu)
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "cpu_p50_ms": float(np.percentile(cpu_arr, 50)),
        "cpu_p99_ms": float(np.percentile(cpu_arr, 99)),
        f"recall@{k}": found / truth.size,
    }


def widen_baseline(index: VectorIndex, k: int, allowed: AllowList) -> Callable[[np.ndarray], list[int]]:
    """The filtered IVF rule before the cell walk, for a side-by-side: nprobe widened by 1 / (allowed
    share) up to 1,024 cells, a fresh IDSelector a query, every cell rescanned for a short answer."""
    from samestyle.index.faiss_backend import make_selector

    ivf: Any = index
    n_allowed = len(allowed)

    def search(q: np.ndarray) -> list[int]:
        if n_allowed <= ivf.config.exact_filter_max:
            return [int(p) for p, _ in index.search(q[None, :], k, allowed)[0]]
        nprobe = max(ivf.nprobe, min(math.ceil(ivf.nprobe * len(index) / n_allowed), 1024))
        sel = make_selector(allowed.labels, ivf._map.next_label)
        labels = ivf._ivf_search(q[None, :], k, nprobe, sel)[1]
        if (labels >= 0).sum() < min(k, n_allowed):
            labels = ivf._ivf_search(q[None, :], k, ivf.nlist, sel)[1]
        return [int(ivf._map.id_of(int(lab))) for lab in labels[0] if lab >= 0]

    return search


def pg_array_baseline(index: VectorIndex, k: int, allowed: AllowList) -> Callable[[np.ndarray], list[int]]:
    """pgvector's filtered rule before the bitmap, for a side-by-side: at most 2,000 allowed rows
    exactly, else HNSW (ef_search widened by 1 / share, at most 1,000) with the labels
    as an array parameter, ``label = ANY($1)``, re-run exactly when short of k."""
    pg: Any = index
    n_allowed = len(allowed)
    ef = min(1000, math.ceil(max(pg.config.ef_search, k) * len(index) / n_allowed))

    def search(q: np.ndarray) -> list[int]:
        vec = "[" + ",".join(map(repr, q.tolist())) + "]"
        if n_allowed <= 2_000:  # the old exact_filter_max
            return [int(pg._map.id_of(int(lab))) for lab, _ in pg._query_exact(vec, k, allowed)]
        sql = (
            f"SELECT label, embedding <#> %s::vector AS d FROM {pg.table} "
            "WHERE label = ANY(%s) ORDER BY d LIMIT %s"
        )
        with pg._conn.transaction():
            pg._conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
            rows = pg._conn.execute(sql, (vec, allowed.labels.tolist(), k)).fetchall()
            if len(rows) < min(k, n_allowed):
                rows = pg._query_exact(vec, k, allowed)
        return [int(pg._map.id_of(int(lab))) for lab, _ in rows]

    return search


def build(args: argparse.Namespace, base: np.ndarray) -> tuple[VectorIndex, dict[str, Any]]:
    if args.config == "pgvector":
        from samestyle.index.pgvector_backend import PgVectorConfig

        # a fresh table (dropped at the end unless --pg-keep), or a kept one (--pg-table)
        backend, config = "pgvector", PgVectorConfig(dsn=args.dsn or "", table=args.pg_table or "")
    else:
        backend, config = CONFIGS[args.config]
    gc.collect()
    rss0 = rss_bytes()
    index = INDEX_BACKENDS.build(backend, dim=args.dim, config=config)
    ids, labels = [str(i) for i in range(args.n)], np.arange(args.n)
    info: dict[str, Any] = {"backend": backend}
    if args.pg_table and _table_rows(index) == args.n:
        # reuse the rows a --pg-keep run left: only the id map is filled (the bench's ids are row numbers)
        index._map.commit(ids, labels)
        info["build_s"], info["reused_table"] = None, args.pg_table
    else:
        start = time.perf_counter()
        # one bulk add, as ProductIndex.build does (IVF trains on the first add reaching min_train); ids
        # are the row numbers, so recall compares labels.
        index.add(ids, np.ascontiguousarray(base), labels=labels)
        info["build_s"] = time.perf_counter() - start
    gc.collect()
    info["rss_per_product_b"] = (rss_bytes() - rss0) / args.n
    faiss_index = getattr(index, "_index", None)
    if faiss_index is not None:
        import faiss

        info["index_bytes_per_product"] = len(faiss.serialize_index(faiss_index)) / args.n
    for attr in ("nlist", "nprobe", "filtered_target"):
        if hasattr(index, attr):
            info[attr] = getattr(index, attr)
    if hasattr(index, "storage_bytes"):
        info["index_bytes_per_product"] = index.storage_bytes() / args.n
    if backend == "pgvector":
        conn = index._conn  # type: ignore[attr-defined]
        info["table"] = index.table  # type: ignore[attr-defined]
        info["server_version"] = conn.execute("SHOW server_version").fetchone()[0]
        info["pgvector_version"] = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()[0]
    return index, info


def _table_rows(index: VectorIndex) -> int:
    table = getattr(index, "table", None)
    if table is None:
        return -1
    return int(index._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[attr-defined]


def e2e_text(args: argparse.Namespace, index: VectorIndex) -> dict[str, Any]:
    """A title -> the query vector -> search the built index, per query, timed end to end.

    With ``--e2e-index DIR`` the query vector is what ``samestyle search`` computes for a text query on that
    index: its text encoder (or ``--e2e-text-encoder``, one thread) and the trained joint model's text head
    (``SearchService.encode_text_query``). Without it, a random 384 -> dim linear map stands in for the head.
    """
    from samestyle.catalog.store import read_catalog
    from samestyle.models import TEXT_ENCODERS

    titles = [p.title for p in read_catalog(args.e2e_catalog).products[: args.queries]]
    encoder = TEXT_ENCODERS.build(args.e2e_text_encoder, num_threads=1) if args.e2e_text_encoder else None
    if args.e2e_index:
        from samestyle.search.service import SearchService

        service = SearchService.open(args.e2e_index)
        if encoder is not None:
            service.text_encoder = encoder

        def encode(title: str) -> np.ndarray:
            return service.encode_text_query(title, "joint-image")[0]

        head = f"joint run {service.model_run}"
    else:
        if encoder is None:
            raise SystemExit("--e2e-text-encoder or --e2e-index is needed for the end-to-end query")
        proj = np.random.default_rng(0).normal(size=(encoder.dim, args.dim)).astype(np.float32)

        def encode(title: str) -> np.ndarray:
            z = encoder.encode_texts([title]) @ proj
            return z / np.linalg.norm(z, axis=1, keepdims=True)

        head = "random linear stand-in"
    times, cpu = [], []
    for title in titles[:3] + titles:
        start, start_cpu = time.perf_counter(), time.process_time()  # the encoder may use its own thread
        z = encode(title)
        if z.shape[1] != args.dim:
            raise SystemExit(f"the query vector has {z.shape[1]} dimensions, the index {args.dim}")
        index.search(z, args.k)
        times.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
    arr, arr_cpu = np.asarray(times[3:]), np.asarray(cpu[3:])
    return {
        "encoder": args.e2e_text_encoder or "the index's",
        "head": head,
        "p50_ms": float(np.median(arr)),
        "p99_ms": float(np.percentile(arr, 99)),
        "cpu_p50_ms": float(np.median(arr_cpu)),
        "cpu_p99_ms": float(np.percentile(arr_cpu, 99)),
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
    parser.add_argument("--category-shares", type=float, nargs="*", default=[])
    parser.add_argument(
        "--widen-baseline", action="store_true", help="IVF: also time the pre-cell-walk filter rule"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=".cache/samestyle/bench/scale")
    parser.add_argument("--dsn", default=None, help="pgvector: a PostgreSQL DSN (default: start pgserver)")
    parser.add_argument("--pg-keep", action="store_true", help="pgvector: keep the table at the end")
    parser.add_argument(
        "--array-baseline",
        type=int,
        default=0,
        metavar="Q",
        help="pgvector: also time the old filter rule on Q queries",
    )
    parser.add_argument("--pg-table", default=None, help="pgvector: reuse this kept table (or build into it)")
    parser.add_argument("--e2e-text-encoder", default=None)
    parser.add_argument("--e2e-index", default=None, help="an index whose trained model encodes queries")
    parser.add_argument("--e2e-catalog", default=".cache/samestyle/work/myntra/catalog")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import faiss

    base, queries, truth = dataset(args)
    with LoadSampler() as load:
        index, result = build(args, base)
        log.info("%s built in %s s", args.config, result["build_s"])
        result["load_average_build"] = load.summary()
        faiss.omp_set_num_threads(1)
        n_build = len(load.samples)
        for name, (rows, want) in truth.items():
            allowed = None if rows is None else AllowList.from_labels(rows)
            result[name] = latency_recall(index, queries, args.k, allowed, want)
            if rows is not None:
                result[name]["allowed"] = len(rows)
            if allowed is not None and args.widen_baseline and result["backend"] == "faiss-ivf":
                baseline = widen_baseline(index, args.k, allowed)
                result[name]["widen_baseline"] = latency_recall(
                    index, queries, args.k, allowed, want, baseline
                )
            if allowed is not None and args.array_baseline and result["backend"] == "pgvector":
                few = args.array_baseline  # the old rule can take a second a query: time a few
                baseline = pg_array_baseline(index, args.k, allowed)
                result[name]["array_baseline"] = {
                    **latency_recall(index, queries[:few], args.k, allowed, want[:few], baseline),
                    "queries": few,
                }
            log.info("%s %s: %s", args.config, name, result[name])
        if args.e2e_text_encoder or args.e2e_index:
            result["e2e_text"] = e2e_text(args, index)
            log.info("e2e: %s", result["e2e_text"])
        searches = load.samples[n_build:] or [os.getloadavg()[0]]
        result["load_average_search"] = {
            "min": min(searches), "median": statistics.median(searches), "max": max(searches)
        }  # fmt: skip
    if hasattr(index, "drop") and not args.pg_keep:
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
