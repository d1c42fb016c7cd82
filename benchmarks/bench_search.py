"""Query latency of SearchService on a built index: text, image and product-id queries (warm, in process),
plus the wall time of one `samestyle search` CLI call (a fresh process: model loading included).

    .venv/bin/python benchmarks/bench_search.py --index .cache/samestyle/work/myntra/index --out FILE
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from samestyle.fsio import write_json

QUERIES = [
    "navy blue checked casual shirt for men",
    "black leather wallet",
    "women red kurta",
    "white sports shoes",
    "analog watch with steel strap",
    "pink lipstick",
    "blue denim jeans",
    "green printed t-shirt",
    "brown leather belt",
    "silver earrings",
]


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", required=True)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import faiss

    from samestyle.search.service import SearchService

    faiss.omp_set_num_threads(1)
    service = SearchService.open(args.index)
    service.search_text("warm up")  # loads the encoder (and the joint model)
    text_ms: list[float] = []
    for _ in range(args.repeats):
        for q in QUERIES:
            t = time.perf_counter()
            service.search_text(q, k=10)
            text_ms.append((time.perf_counter() - t) * 1000)
    ids = service.index.space(service.index.spaces()[0]).ids[:200]
    pid_ms = []
    for pid in ids:
        t = time.perf_counter()
        service.similar(pid, k=10)
        pid_ms.append((time.perf_counter() - t) * 1000)
    cli_s = []
    for q in QUERIES[:3]:
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "samestyle", "search", "--index", args.index, "--text", q, "--json"],
            check=True,
            capture_output=True,
        )
        cli_s.append(time.perf_counter() - t)
    result = {
        "index": args.index,
        "products": len(service.index),
        "spaces": service.index.spaces(),
        "text_query_ms": {"p50": statistics.median(text_ms), "p99": _pct(text_ms, 99), "n": len(text_ms)},
        "product_id_query_ms": {"p50": statistics.median(pid_ms), "p99": _pct(pid_ms, 99), "n": len(pid_ms)},
        "cli_call_s": {"median": statistics.median(cli_s), "n": len(cli_s)},
    }
    write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
