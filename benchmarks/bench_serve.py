"""Bounded load test of ``samestyle serve`` on loopback: N concurrent clients for S seconds.

Starts the service as a subprocess on 127.0.0.1 (a free port), waits for /readyz, then runs ``--clients``
concurrent clients (asyncio + httpx) for ``--seconds``, each sending a mix of text queries (built from
catalogue attributes, e.g. "men navy blue shirts"), product-id queries (/api/similar, random catalogue
products) and image uploads (random catalogue photos), and reports requests/s, p50/p90/p99 latency per
kind and overall, and the error count (any non-200 answer or transport error). The load generator runs
on the same machine as the server, so on a small (2-core, shared) machine the numbers are pessimistic.

    .venv/bin/python benchmarks/bench_serve.py --index .cache/samestyle/work/myntra/index-joint \\
        --catalog .cache/samestyle/work/myntra/catalog --clients 50 --seconds 60 \\
        --out benchmarks/results/serve_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from samestyle.catalog.store import read_catalog
from samestyle.fsio import write_json

MAX_REQUESTS = 200_000  # a hard bound besides the duration
ERRORS: dict[str, int] = {}  # transport errors by exception type


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_workload(catalog_dir: str, seed: int, n: int = 2000) -> dict[str, list[Any]]:
    catalog = read_catalog(catalog_dir)
    rng = random.Random(seed)
    products = catalog.products
    texts = []
    for p in rng.sample(products, min(n, len(products))):
        a = p.attributes
        parts = [a.get("gender", ""), a.get("baseColour", ""), p.category[-1] if p.category else ""]
        texts.append(" ".join(x for x in parts if x).lower() or p.title)
    ids = [p.id for p in rng.sample(products, min(n, len(products)))]
    images = []
    for p in rng.sample([p for p in products if p.has_image], min(200, len(products))):
        path = catalog.image_path(p)
        if path is not None and path.is_file():
            images.append(path.read_bytes())
    return {"text": texts, "similar": ids, "image": images}


async def client_loop(
    http: httpx.AsyncClient,
    base: str,
    work: dict[str, list[Any]],
    mix: dict[str, float],
    deadline: float,
    rng: random.Random,
    out: list[tuple[str, float, int]],
    k: int,
) -> None:
    kinds, weights = list(mix), list(mix.values())
    visitor = f"load-{rng.randrange(10**9)}"
    while time.monotonic() < deadline and len(out) < MAX_REQUESTS:
        kind = rng.choices(kinds, weights)[0]
        start = time.perf_counter()
        status = -1
        try:
            headers = {"X-Visitor-Id": visitor}
            if kind == "text":
                resp = await http.get(
                    f"{base}/api/search", params={"text": rng.choice(work["text"]), "k": k}, headers=headers
                )
            elif kind == "similar":
                resp = await http.get(
                    f"{base}/api/similar", params={"id": rng.choice(work["similar"]), "k": k}, headers=headers
                )
            else:
                files = {"image": ("q.jpg", rng.choice(work["image"]), "image/jpeg")}
                resp = await http.post(
                    f"{base}/api/search/image", files=files, data={"k": str(k)}, headers=headers
                )
            status = resp.status_code
        except httpx.HTTPError as exc:
            status = -1
            ERRORS[type(exc).__name__] = ERRORS.get(type(exc).__name__, 0) + 1
        out.append((kind, time.perf_counter() - start, status))


def summarise(samples: list[tuple[str, float, int]], seconds: float) -> dict[str, Any]:
    def stats(rows: list[tuple[str, float, int]]) -> dict[str, Any]:
        lat = sorted(r[1] * 1000 for r in rows)
        if not lat:
            return {"requests": 0}
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [lat[0]] * 99
        return {
            "requests": len(rows),
            "errors": sum(1 for r in rows if r[2] != 200),
            "rps": round(len(rows) / seconds, 1),
            "p50_ms": round(q[49], 1),
            "p90_ms": round(q[89], 1),
            "p99_ms": round(q[98], 1),
            "max_ms": round(lat[-1], 1),
        }

    by_kind = {kind: stats([r for r in samples if r[0] == kind]) for kind in sorted({r[0] for r in samples})}
    statuses: dict[str, int] = {}
    for r in samples:
        statuses[str(r[2])] = statuses.get(str(r[2]), 0) + 1
    return {
        "overall": stats(samples),
        "by_kind": by_kind,
        "status_counts": statuses,
        "transport_errors": dict(ERRORS),
    }


async def run_load(base: str, work: dict[str, list[Any]], args: argparse.Namespace) -> dict[str, Any]:
    mix = {"text": args.text_share, "similar": args.similar_share, "image": args.image_share}
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    samples: list[tuple[str, float, int]] = []
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as http:
        start = time.monotonic()
        deadline = start + args.seconds
        await asyncio.gather(
            *(
                client_loop(http, base, work, mix, deadline, random.Random(args.seed + i), samples, args.k)
                for i in range(args.clients)
            )
        )
        elapsed = time.monotonic() - start
    return {"seconds": round(elapsed, 1), **summarise(samples, elapsed)}


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 300.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2.0).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not become ready in time")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True)
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--text-share", type=float, default=0.5)
    ap.add_argument("--similar-share", type=float, default=0.3)
    ap.add_argument("--image-share", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="JSON results file")
    args = ap.parse_args()
    if args.seconds > 600 or args.clients > 500:
        raise SystemExit("keep the load test bounded: at most 600 s and 500 clients")

    work = build_workload(args.catalog, args.seed)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "samestyle",
        "serve",
        "--index",
        args.index,
        "--catalog",
        args.catalog,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--threads",
        str(args.threads),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(cmd, env=env)
    try:
        ready_s = wait_ready(base, proc)
        result = asyncio.run(run_load(base, work, args))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    report = {
        "index": args.index,
        "clients": args.clients,
        "duration_s": args.seconds,
        "k": args.k,
        "mix": {"text": args.text_share, "similar": args.similar_share, "image": args.image_share},
        "server_threads": args.threads,
        "startup_to_ready_s": round(ready_s, 1),
        "cpu_count": os.cpu_count(),
        "load_average_after": os.getloadavg(),
        **result,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
