"""Mining precision on a SIMULATED click log over the Myntra catalogue, with each constraint ablated.

A log is simulated (samestyle.mining.simulator; not real user data), pairs are mined with all
constraints, with each one off, and with none, and every run is scored against the simulator's ground
truth:

* ``precision_style``: share of pairs whose two products are in the same true style group
  (gender + baseColour + leaf category, the most specific query template);
* ``precision_query``: share of pairs whose two products are both relevant to at least one issued query
  (a looser notion: both answer the same search).

Usage:
    .venv/bin/python benchmarks/bench_mining.py --sessions 20000 --seed 0 \\
        --out benchmarks/results/mining.json
"""

from __future__ import annotations

import argparse
import csv
import gzip
import logging
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from samestyle.catalog.store import Catalog, read_catalog
from samestyle.fsio import write_json
from samestyle.mining import MiningConfig, QueryTokenOverlap, SimulatorConfig, mine_pairs, simulate_clicks
from samestyle.mining.simulator import SimulatedLog
from samestyle.paths import cache_dir, shared_data_dir
from samestyle.types import Product

log = logging.getLogger("bench_mining")
ATTRIBUTES = ("gender", "baseColour", "season", "usage", "year")
CATEGORY = ("masterCategory", "subCategory", "articleType")


def load_catalog(csv_path: Path | None) -> tuple[Catalog, str]:
    """The ingested Myntra catalogue when it exists, else products built from the styles CSV."""
    ingested = cache_dir() / "catalogs" / "myntra-60x80"
    if csv_path is None and (ingested / "catalog.parquet").exists():
        return read_catalog(ingested), str(ingested)
    path = csv_path or shared_data_dir() / "myntra_styles_full.csv.gz"
    products: list[Product] = []
    seen: set[str] = set()
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            pid = (row.get("id") or "").strip()
            title = (row.get("productDisplayName") or "").strip()
            if not pid or not title or pid in seen:
                continue
            seen.add(pid)
            attrs = {k: row[k].strip() for k in ATTRIBUTES if (row.get(k) or "").strip()}
            if "year" in attrs:
                attrs["year"] = attrs["year"].removesuffix(".0")
            category = tuple(row[k].strip() for k in CATEGORY if (row.get(k) or "").strip())
            products.append(Product(id=pid, title=title, category=category, attributes=attrs))
    return Catalog(products), str(path)


def ablations() -> dict[str, tuple[MiningConfig, bool]]:
    """Run name -> (config, whether query relevance may look at attributes, not only the title)."""
    full = MiningConfig()
    off = {"use_category": False, "use_query_relevance": False, "use_similarity": False}
    runs = {
        "all constraints (defaults)": (full, True),
        "without category": (replace(full, use_category=False), True),
        "without query relevance": (replace(full, use_query_relevance=False), True),
        "without title similarity": (replace(full, use_similarity=False), True),
        "category only": (replace(full, **{**off, "use_category": True}), True),
        "query relevance only": (replace(full, **{**off, "use_query_relevance": True}), True),
        "title similarity only": (replace(full, **{**off, "use_similarity": True}), True),
        "no constraints (support only)": (replace(full, **off), True),
        "no constraints, no support (every co-clicked pair)": (
            replace(full, **off, min_co_sessions=None, min_product_sessions=1, max_products_per_query=None),
            True,
        ),
        "all, query relevance on title only": (full, False),
    }
    for threshold in (0.2, 0.4, 0.5):
        runs[f"all, min_similarity={threshold}"] = (replace(full, min_similarity=threshold), True)
    return runs


def run(sim: SimulatedLog, catalog: Catalog) -> list[dict[str, Any]]:
    rows = []
    for name, (cfg, use_attributes) in ablations().items():
        t0 = time.perf_counter()
        result = mine_pairs(sim.events, catalog, cfg, query_relevance=QueryTokenOverlap(use_attributes))
        seconds = time.perf_counter() - t0
        scores = sim.truth.evaluate(result.pairs)
        rows.append({"run": name, **scores, "seconds": round(seconds, 2), "stats": result.stats.to_dict()})
        log.info("%-52s pairs=%7d style=%.3f query=%.3f", name, scores["pairs"],
                 scores["precision_style"], scores["precision_query"])  # fmt: skip
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| run | pairs | products | precision: same style group | weighted | precision: same query |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['pairs']:,} | {r['products']:,} | {r['precision_style']:.3f} "
            f"| {r['precision_style_weighted']:.3f} | {r['precision_query']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path, default=None, help="Myntra styles CSV(.gz) instead of the cache")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mining.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    catalog, source = load_catalog(args.csv)
    t0 = time.perf_counter()
    sim = simulate_clicks(catalog, SimulatorConfig(sessions=args.sessions, seed=args.seed))
    sim_seconds = time.perf_counter() - t0
    rows = run(sim, catalog)
    write_json(
        args.out,
        {
            "benchmark": "mining precision on a SIMULATED click log",
            "command": " ".join(
                ["benchmarks/bench_mining.py", *(argv if argv is not None else sys.argv[1:])]
            ),
            "catalog": {"source": source, "products": len(catalog)},
            "simulator": {
                "config": asdict(SimulatorConfig(sessions=args.sessions, seed=args.seed)),
                "summary": sim.summary,
                "seconds": round(sim_seconds, 2),
            },
            "mining_defaults": asdict(MiningConfig()),
            "runs": rows,
        },
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
