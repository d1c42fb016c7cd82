"""Encoder throughput on real Myntra products: EfficientNet-Lite0 (eager torch, ONNX Runtime at 1 and 2
threads), MiniLM text (torch), and whole-catalogue extraction with and without pipelined decoding.

Images are the first N photos of ``myntra_small_images_60x80.tar.gz`` (extracted once under
``cache_dir()/bench/myntra-60x80``); texts are the same products' titles from the styles CSV. Every
figure is products per second, the median of ``--repeats`` timed runs after one warm-up batch.

* ``preprocess_only``: decode + pad + resize + scale, one thread;
* ``*_infer``: model only, on already preprocessed pixels;
* ``*_e2e``: from file paths (decode + preprocess + model) through ``encode_images``, inline;
* ``extract_onnx_*``: ``features.extract_features`` (no cache) with 0 or 2 decode threads;
* ``text_minilm_torch_*``: titles through ``MiniLMTextEncoder.encode_texts``.

Cases run round-robin (every case once per round), so load from other jobs on a shared machine spreads
over all of them instead of skewing one.

Usage:
    .venv/bin/python benchmarks/bench_encoders.py --n 500 --threads 1,2 --out benchmarks/results/encoders.json
"""

from __future__ import annotations

import argparse
import csv
import gzip
import logging
import os
import platform
import statistics
import sys
import tarfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.catalog.store import Catalog
from samestyle.features import extract_features
from samestyle.fsio import write_json, write_text
from samestyle.models import MiniLMTextEncoder, OnnxEfficientNetLite0, TorchEfficientNetLite0
from samestyle.models.image import available_cores
from samestyle.models.preprocess import preprocess_batch
from samestyle.paths import cache_dir, shared_data_dir
from samestyle.types import Product

log = logging.getLogger("bench_encoders")


def extract_images(n: int) -> list[Path]:
    """Paths of the first ``n`` images of the 60x80 tarball, extracting them once into the cache."""
    dest = cache_dir() / "bench" / "myntra-60x80"
    listing = dest / "first.txt"
    if listing.exists():
        names = listing.read_text().split()
        if len(names) >= n:
            return [dest / name for name in names[:n]]
    paths: list[Path] = []
    with tarfile.open(shared_data_dir() / "myntra_small_images_60x80.tar.gz") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".jpg"):
                tar.extract(member, dest, filter="data")
                paths.append(dest / member.name)
                if len(paths) == n:
                    break
    write_text(listing, "\n".join(str(p.relative_to(dest)) for p in paths) + "\n")
    return paths


def titles(ids: list[str]) -> list[str]:
    """Product titles for ``ids`` from the styles CSV (the id itself when a title is missing)."""
    wanted, found = set(ids), {}
    with gzip.open(shared_data_dir() / "myntra_styles_full.csv.gz", "rt", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("id") in wanted:
                found[row["id"]] = row.get("productDisplayName") or row["id"]
    return [found.get(i, i) for i in ids]


Case = tuple[Callable[[], object], int]
"""A benchmark case: what to run and how many products one run processes."""


def with_torch_threads(threads: int, fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` run with ``torch.set_num_threads(threads)`` (torch's pool is process-wide)."""

    def run() -> object:
        import torch

        torch.set_num_threads(threads)
        return fn()

    return run


def run_round_robin(cases: dict[str, Case], repeats: int) -> dict[str, Any]:
    """Time ``repeats`` rounds, each running every case once, so a burst of load from other jobs on a
    shared machine hits all cases alike (encoders are warmed up when built). Median products/s."""
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(repeats):
        for name, (fn, n) in cases.items():
            start = time.perf_counter()
            fn()
            rates[name].append(n / (time.perf_counter() - start))
        log.info("round %d/%d done", r + 1, repeats)
    return {
        name: {
            "products_per_s": round(statistics.median(v), 1),
            "min": round(min(v), 1),
            "max": round(max(v), 1),
            "runs_products_per_s": [round(x, 1) for x in v],
        }
        for name, v in rates.items()
    }


def image_cases(paths: list[Path], threads: list[int], bs: int) -> dict[str, Case]:
    """Eager torch and ONNX (model only and from files), and extraction with 0 / 2 decode threads."""
    n = len(paths)
    pixels = preprocess_batch(paths)
    cases: dict[str, Case] = {"preprocess_only": (partial(preprocess_batch, paths), n)}
    eager = TorchEfficientNetLite0()
    eager.encode_pixels(pixels[:bs], bs)  # warm-up
    for t in threads:
        cases[f"image_torch_eager_{t}t_infer"] = (
            with_torch_threads(t, partial(eager.encode_pixels, pixels, bs)),
            n,
        )
    for t in threads:
        enc = OnnxEfficientNetLite0(num_threads=t)
        enc.encode_pixels(pixels[:bs], bs)
        cases[f"image_onnx_{t}t_infer"] = (partial(enc.encode_pixels, pixels, bs), n)
        cases[f"image_onnx_{t}t_e2e"] = (partial(enc.encode_images, paths, bs), n)
    catalog = Catalog([Product(id=p.stem, title=p.stem, image=str(p)) for p in paths])
    for t in threads:
        enc = OnnxEfficientNetLite0(num_threads=t)
        enc.encode_pixels(pixels[:bs], bs)
        for workers in (0, 2):
            run = partial(extract_features, catalog, enc, None, bs, progress=False, decode_workers=workers)
            cases[f"extract_onnx_{t}t_decode{workers}"] = (run, n)
    return cases


def text_cases(texts: list[str], threads: list[int], bs: int) -> dict[str, Case]:
    enc = MiniLMTextEncoder()
    enc.encode_texts(texts[:bs], bs)
    return {
        f"text_minilm_torch_{t}t": (with_torch_threads(t, partial(enc.encode_texts, texts, bs)), len(texts))
        for t in threads
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="products (images + titles)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts to try")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/encoders.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    threads = [int(t) for t in args.threads.split(",")]
    paths = extract_images(args.n)
    log.info("benchmarking on %d images / titles, threads %s", len(paths), threads)
    cases = image_cases(paths, threads, args.batch_size)
    cases.update(text_cases(titles([p.stem for p in paths]), threads, args.batch_size))
    results = run_round_robin(cases, args.repeats)
    for name, res in results.items():
        log.info("%-36s %8.1f products/s", name, res["products_per_s"])
    report = {
        "benchmark": "encoders",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "n": len(paths),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "machine": {
            "cores_available": available_cores(),
            "platform": platform.platform(),
            "note": "shared machine (other jobs running): treat as rough",
        },
        "results": results,
        "embedding_check": {"onnx_vs_torch_max_abs_diff": onnx_vs_torch(paths[:8])},
    }
    write_json(args.out, report)
    log.info("wrote %s", args.out)
    return 0


def onnx_vs_torch(paths: list[Path]) -> float:
    """Largest absolute difference between the ONNX and eager pooled vectors on a few images."""
    a = OnnxEfficientNetLite0(num_threads=1).encode_images(paths)
    b = TorchEfficientNetLite0().encode_images(paths)
    return float(np.abs(a - b).max())


if __name__ == "__main__":
    sys.exit(main())
