"""Ray Serve replicas of the query service: requests/s and p50/p99 with 1 vs 2 replicas (and plain uvicorn).

For each engine it starts ``samestyle serve`` as a subprocess on a free loopback port (``--engine local``:
one uvicorn process; ``--engine ray --replicas N``: a private local Ray with Serve's HTTP proxy in front
of N replicas, each loading the index and encoders), waits for ``/readyz``, then runs the closed-loop
load generator of ``bench_serve.py`` (``--clients`` concurrent asyncio clients for ``--seconds``; text
queries and similar-product queries by default, no image uploads) and stops the server. The engines run
one after the other, in round-robin repeats, and the load average is sampled during each run.

The load generator shares the machine with the replicas (and, on the shared 2-core VM, with other jobs),
so requests/s is a lower bound and the 2-replica speed-up is capped by the free cores.

    .venv/bin/python benchmarks/bench_ray_serve.py --index .cache/samestyle/work/myntra/index-joint \\
        --catalog .cache/samestyle/work/myntra/catalog --clients 8 --seconds 30 \\
        --out benchmarks/results/ray_serve.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench_serve import build_workload, free_port, run_load, wait_ready
from samestyle.bench.load import LoadSampler
from samestyle.fsio import write_json

ENGINES = {"uvicorn": ["--engine", "local"], "ray-1": ["--engine", "ray", "--replicas", "1"]}
ENGINES["ray-2"] = ["--engine", "ray", "--replicas", "2"]


def run_engine(name: str, args: argparse.Namespace, work: dict[str, list[Any]]) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "samestyle", "serve", "--index", args.index, "--catalog", args.catalog]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--threads", str(args.threads), *ENGINES[name]]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        ready_s = wait_ready(base, proc, timeout=args.start_timeout)
        asyncio.run(run_load(base, work, argparse.Namespace(**{**vars(args), "seconds": 3.0})))  # warm
        with LoadSampler() as load:
            result = asyncio.run(run_load(base, work, args))
    finally:
        proc.send_signal(signal.SIGINT)  # the Ray engine shuts Serve and its local Ray down on Ctrl-C
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {"engine": name, "startup_to_ready_s": round(ready_s, 1), "load_average": load.summary(), **result}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default=".cache/samestyle/work/myntra/index-joint")
    ap.add_argument("--catalog", default=".cache/samestyle/work/myntra/catalog")
    ap.add_argument("--engines", nargs="+", default=["ray-1", "ray-2", "uvicorn"], choices=list(ENGINES))
    ap.add_argument("--repeats", type=int, default=1, help="round-robin repeats of every engine")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--text-share", type=float, default=0.5)
    ap.add_argument("--similar-share", type=float, default=0.5)
    ap.add_argument("--image-share", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in each server process / replica")
    ap.add_argument("--start-timeout", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="JSON results file")
    args = ap.parse_args()
    if args.seconds * args.repeats * len(args.engines) > 1200 or args.clients > 200:
        raise SystemExit("keep the load test bounded: at most 20 minutes of load and 200 clients")

    work = build_workload(args.catalog, args.seed)
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for name in args.engines:
            run = {"repeat": repeat, **run_engine(name, args, work)}
            runs.append(run)
            o = run["overall"]
            print(f"{name} (repeat {repeat}): {o['rps']} req/s, p50 {o['p50_ms']} ms, p99 {o['p99_ms']} ms, "
                  f"errors {o['errors']}, load {run['load_average']}", flush=True)  # fmt: skip
    medians = {}
    for name in args.engines:
        mine = [r["overall"] for r in runs if r["engine"] == name]
        medians[name] = {key: statistics.median(m[key] for m in mine) for key in ("rps", "p50_ms", "p99_ms")}
    report = {
        "index": args.index,
        "clients": args.clients,
        "seconds": args.seconds,
        "k": args.k,
        "mix": {"text": args.text_share, "similar": args.similar_share, "image": args.image_share},
        "threads_per_process": args.threads,
        "cpu_count": os.cpu_count(),
        "shared_machine": True,
        "medians": medians,
        "runs": runs,
    }
    print(json.dumps(medians, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
