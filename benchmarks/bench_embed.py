"""Catalogue embedding throughput (image + text products/s) per runtime and precision, side by side.

Run:
    .venv/bin/python benchmarks/bench_embed.py --n 1024 --eager-n 96 --repeats 3 \
        --out benchmarks/results/embed.json

Each pipeline is the real ``extract_features`` path (decode + preprocess in a thread pool one batch
ahead of inference, batches of 64, no feature cache) over the first products of the Myntra catalogue,
image pass then text pass, as ``samestyle embed`` runs them; products/s = n / (image s + text s).
Pipelines run round-robin ``--repeats`` times (so they share the machine's load) and the median is kept.
Eager torch is slow, so it runs on ``--eager-n`` products. On a shared machine wall-clock rates depend
on the other jobs, so the process CPU time is recorded too: products per CPU-second x 2 is what two
dedicated cores would reach at best (a projection, labelled as such). Also records max |cos - 1|
against the ONNX fp32 vectors of the same products, the CPU's matrix units and the oneDNN kernels
(AMX or not) of the OpenVINO encoders.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.catalog.store import Catalog, read_catalog
from samestyle.features.extract import extract_features
from samestyle.fsio import write_json
from samestyle.models import IMAGE_ENCODERS, TEXT_ENCODERS
from samestyle.models.quantize import cpu_bf16_capabilities, openvino_kernels

PIPELINES = {
    "eager-torch-fp32": ("efficientnet-lite0-torch", "minilm"),
    "onnx-fp32": ("efficientnet-lite0", "minilm-onnx"),
    "bf16-openvino": ("efficientnet-lite0-bf16", "minilm-bf16"),
    "bf16-image+int8-text": ("efficientnet-lite0-bf16", "minilm-onnx-int8"),
}


def subset(catalog: Catalog, n: int) -> Catalog:
    """The first ``n`` products that have an image."""
    return Catalog(products=[p for p in catalog.products if p.has_image][:n], image_root=catalog.image_root)


def run_once(
    catalog: Catalog, encoders: tuple[Any, Any], threads: int
) -> tuple[float, float, np.ndarray, np.ndarray]:
    image_enc, text_enc = encoders
    start, cpu = time.perf_counter(), time.process_time()
    img = extract_features(catalog, image_enc, None, progress=False, decode_workers=threads)
    text = extract_features(catalog, text_enc, None, progress=False)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return len(catalog) / seconds, len(catalog) / cpu_seconds, img.vectors, text.vectors


def cos_gap(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return float(1.0 - cos.min())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog", default=".cache/samestyle/work/myntra/catalog")
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--eager-n", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pipelines", default=",".join(PIPELINES))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(args.threads)
    load_at_start = list(os.getloadavg())  # other jobs on the machine skew wall-clock rates
    full = read_catalog(args.catalog)
    names = args.pipelines.split(",")
    encoders = {
        name: (
            IMAGE_ENCODERS.build(PIPELINES[name][0], num_threads=args.threads),
            TEXT_ENCODERS.build(PIPELINES[name][1], num_threads=args.threads),
        )
        for name in names
    }
    cats = {name: subset(full, args.eager_n if name.startswith("eager") else args.n) for name in names}
    rates: dict[str, list[float]] = {name: [] for name in names}
    cpu_rates: dict[str, list[float]] = {name: [] for name in names}
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in names:  # warm-up (graph compilation, first-batch allocations)
        run_once(subset(full, 64), encoders[name], args.threads)
    for _ in range(args.repeats):
        for name in names:
            rate, cpu_rate, img, text = run_once(cats[name], encoders[name], args.threads)
            rates[name].append(rate)
            cpu_rates[name].append(cpu_rate)
            vectors[name] = (img, text)
            print(f"{name}: {rate:.1f} products/s wall, {cpu_rate:.1f} per CPU-second", flush=True)
    kernels = {}
    for name in names:  # which oneDNN kernels (AMX or not) the OpenVINO encoders run
        for enc in encoders[name]:
            if getattr(enc, "_compiled", None) is not None:
                kernels[enc.name] = openvino_kernels(enc._compiled)
    ref = vectors.get("onnx-fp32")
    results: dict[str, Any] = {}
    for name in names:
        results[name] = {
            "image_encoder": PIPELINES[name][0],
            "text_encoder": PIPELINES[name][1],
            "products": len(cats[name]),
            "products_per_s_median": statistics.median(rates[name]),
            "products_per_s_all": rates[name],
            # CPU time of the process (all threads): what 2 dedicated cores would reach at best
            "products_per_cpu_s_median": statistics.median(cpu_rates[name]),
            "projected_products_per_s_on_2_free_cores": 2 * statistics.median(cpu_rates[name]),
        }
        if ref is not None:
            results[name]["image_max_cos_gap_vs_onnx_fp32"] = cos_gap(vectors[name][0], ref[0])
            results[name]["text_max_cos_gap_vs_onnx_fp32"] = cos_gap(vectors[name][1], ref[1])
    if "eager-torch-fp32" in results:
        base = results["eager-torch-fp32"]["products_per_s_median"]
        for name in names:
            results[name]["speedup_vs_eager"] = results[name]["products_per_s_median"] / base
    out = {
        "args": vars(args),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1_5_15_at_start": load_at_start,
            "load_average_1_5_15_at_end": list(os.getloadavg()),
            **cpu_bf16_capabilities(),
        },
        "results": results,
        "openvino_kernels": kernels,
    }
    write_json(Path(args.out), out)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
