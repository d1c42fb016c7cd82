"""Online A/B test end to end with SIMULATED visitors: two arms served side by side on loopback.

The service runs in this process (uvicorn on 127.0.0.1, a free port) with two arms split by a hash of the
visitor id; :func:`samestyle.serve.visitors.simulate_visitors` (issue B's user model) searches over HTTP and
posts clicks, carts and orders; the service's event log is then read back for ``ab_report`` (CTR and
conversion with delta-method 95% intervals) and mined into training pairs (``mine_pairs``), closing the
loop. The simulator also knows the true relevance, so each arm's offline precision@k is reported: the
arm that shows more relevant products must win online.

    .venv/bin/python benchmarks/bench_abtest.py --index .cache/samestyle/work/myntra/index-joint \\
        --catalog .cache/samestyle/work/myntra/catalog --sessions 4000 \\
        --arm frozen=.cache/samestyle/work/myntra/index-joint@text \\
        --arm joint=.cache/samestyle/work/myntra/index-joint@joint-fused \\
        --work .cache/samestyle/work/abtest --out benchmarks/results/serve_abtest.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx
import torch

from samestyle.catalog.store import read_catalog
from samestyle.fsio import write_json
from samestyle.mining.clicklog import read_click_log
from samestyle.mining.miner import MiningConfig, mine_pairs
from samestyle.serve import ServeSettings, VariantSpec, create_app
from samestyle.serve.abtest import ab_report
from samestyle.serve.live import running
from samestyle.serve.state import open_variants
from samestyle.serve.visitors import VisitorConfig, simulate_visitors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True, help="(unused when --arm names the indexes) default index")
    ap.add_argument("--catalog", required=True)
    ap.add_argument(
        "--arm", action="append", required=True, help="NAME=INDEX_DIR[@SPACE]; the first is control"
    )
    ap.add_argument("--sessions", type=int, default=4000)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", required=True, help="folder for the event log and the mined pairs")
    ap.add_argument("--out", help="JSON results")
    args = ap.parse_args()
    if args.sessions > 50_000:
        raise SystemExit("keep it bounded: at most 50,000 sessions")
    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    events = work / "events.jsonl"
    events.unlink(missing_ok=True)
    arms = tuple(VariantSpec.parse(a) for a in args.arm)
    settings = ServeSettings(
        catalog_dir=Path(args.catalog), events_path=events, variants=arms, experiment=f"bench-{args.seed}"
    )
    catalog = read_catalog(args.catalog)
    app = create_app(open_variants(Path(args.index), settings), settings)
    start = time.monotonic()
    with running(app) as url, httpx.Client(base_url=url, timeout=60.0) as http:
        while http.get("/readyz").status_code != 200:
            time.sleep(0.5)
        ready_s = time.monotonic() - start

        def progress(done: int) -> None:
            if done % 500 == 0:
                print(f"{done} sessions, {time.monotonic() - start:.0f}s", file=sys.stderr, flush=True)

        cfg = VisitorConfig(sessions=args.sessions, k=args.k, seed=args.seed)
        run = simulate_visitors(http, catalog, cfg, progress=progress)
    seconds = time.monotonic() - start
    log, rejects = read_click_log(events)
    report = ab_report(log, control=arms[0].name)
    mined = mine_pairs(log, catalog, MiningConfig())
    from samestyle.mining.pairs import write_pairs

    write_pairs(mined.pairs, work / "pairs.parquet")
    result = {
        "simulated": True,
        "arms": [{"name": a.name, "index": str(a.index_dir), "space": a.space} for a in arms],
        "sessions": args.sessions,
        "k": args.k,
        "seed": args.seed,
        "seconds": round(seconds, 1),
        "startup_s": round(ready_s, 1),
        "events_logged": len(log),
        "bad_log_lines": len(rejects),
        "visitor_run": run.to_dict(),
        "report": report.to_dict(),
        "mining": {"pairs": len(mined.pairs), **mined.stats.to_dict()},
    }
    print(report.to_markdown())
    print(json.dumps({k: v for k, v in result.items() if k != "report"}, indent=2))
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
