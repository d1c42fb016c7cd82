"""``embed --engine ray`` wall time with 1 and 2 local workers against the plain local path.

Run:
    .venv/bin/python benchmarks/bench_ray.py --n 3000 --repeats 2 --out benchmarks/results/ray_embed.json

Each run embeds the first ``--n`` Myntra products (no feature cache) with the same encoders: the local
``embed_catalog`` with ``--local-threads`` intra-op threads, then Ray Data with 1 and 2 actors of one
thread each (``ray.init(num_cpus=workers)``, started and stopped per run, startup included). Runs are
interleaved ``--repeats`` times; medians are reported, with the max abs difference to the local vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.catalog.store import Catalog, read_catalog
from samestyle.fsio import write_json
from samestyle.models import IMAGE_ENCODERS, TEXT_ENCODERS
from samestyle.pipeline.embed import embed_catalog
from samestyle.pipeline.ray_engine import embed_catalog_ray


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog", default=".cache/samestyle/work/myntra/catalog")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--image-encoder", default="efficientnet-lite0")
    parser.add_argument("--text-encoder", default="minilm-onnx")
    parser.add_argument("--local-threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    load_at_start = list(os.getloadavg())  # other jobs on the machine skew the wall times
    full = read_catalog(args.catalog)
    catalog = Catalog(products=full.products[: args.n], image_root=full.image_root)
    times: dict[str, list[float]] = {"local": [], "ray-1": [], "ray-2": []}
    diffs: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            start = time.perf_counter()
            local, _ = embed_catalog(
                catalog, Path(tmp) / "local",
                IMAGE_ENCODERS.build(args.image_encoder, num_threads=args.local_threads),
                TEXT_ENCODERS.build(args.text_encoder, num_threads=args.local_threads), None, progress=False,
            )  # fmt: skip
            times["local"].append(time.perf_counter() - start)
            for workers in (1, 2):
                start = time.perf_counter()
                emb, _ = embed_catalog_ray(
                    catalog, Path(tmp) / f"ray{workers}", args.image_encoder, args.text_encoder, None,
                    workers=workers, threads_per_worker=1,
                )  # fmt: skip
                times[f"ray-{workers}"].append(time.perf_counter() - start)
                diffs[f"ray-{workers}"] = max(
                    float(np.abs(emb.vectors[s] - local.vectors[s]).max()) for s in ("image", "text")
                )
            print(rep, {k: round(v[-1], 1) for k, v in times.items()}, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    result: dict[str, Any] = {
        "args": vars(args),
        "products": len(catalog),
        "seconds_median": med,
        "seconds_all": times,
        "products_per_s": {k: len(catalog) / v for k, v in med.items()},
        "speedup_2_over_1_workers": med["ray-1"] / med["ray-2"],
        "max_abs_diff_vs_local": diffs,
        "machine": {
            "load_average_1_5_15_at_start": load_at_start,
            "load_average_1_5_15_at_end": list(os.getloadavg()),
        },
    }
    write_json(args.out, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
