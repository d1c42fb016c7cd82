"""Cost of the trainable towers on real Myntra products: activation extraction, cache size, training step.

For each cached input kind (``pooled`` via ``extract_features``; ``map``, ``act16``, ``act15``, ``act12``
via ``features.activations``) on the first ``--n`` Myntra products with a 60x80 photo:

* ``extract_products_per_s``: cold extraction into an empty float16 ``FeatureCache`` (decode + lower
  ONNX graph + cache write); ``cached_products_per_s``: the same call again (all cache hits);
* ``cache_bytes_per_product``: shard bytes on disk / rows.

For each tower (``pooled``, ``attnpool``, ``finetune`` with ``train_blocks`` 0, 1, 2, 4 and avg or attn
pooling) on a batch of ``--batch`` real cached rows: ``train_ms`` (forward + backward of
``out.pow(2).mean()``, train mode), ``eval_ms`` (no-grad forward), and the trainable parameter count.
The text towers (top 1 / 2 MiniLM layers on 32-token hidden states) are timed the same way.

Timings are medians of ``--repeats`` after one warm-up, on a shared 2-core VM: rough.

Usage:
    .venv/bin/python benchmarks/bench_towers.py --n 2000 --out benchmarks/results/towers.json
"""

from __future__ import annotations

import argparse
import logging
import platform
import shutil
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samestyle.catalog.store import Catalog
from samestyle.datasets.myntra import MYNTRA_CSV, myntra_image_root, read_myntra_csv
from samestyle.features.activations import (
    ActivationExtractor,
    activation_cache,
    extract_activations,
    extract_text_hidden,
)
from samestyle.features.cache import FeatureCache
from samestyle.features.extract import extract_features
from samestyle.fsio import write_json
from samestyle.models.image import OnnxEfficientNetLite0
from samestyle.models.text_towers import MiniLMHiddenStates, TextTowerConfig, build_text_tower
from samestyle.models.towers import TowerConfig, build_tower, tower_input_kind
from samestyle.paths import cache_dir, shared_data_dir

log = logging.getLogger("bench_towers")

TOWERS: list[tuple[str, TowerConfig]] = [
    ("pooled", TowerConfig()),
    ("attnpool", TowerConfig(kind="attnpool")),
    ("finetune-k0-avg", TowerConfig(kind="finetune", train_blocks=0)),
    ("finetune-k0-attn", TowerConfig(kind="finetune", train_blocks=0, pool="attn")),
    ("finetune-k1-avg", TowerConfig(kind="finetune", train_blocks=1)),
    ("finetune-k1-attn", TowerConfig(kind="finetune", train_blocks=1, pool="attn")),
    ("finetune-k2-avg", TowerConfig(kind="finetune", train_blocks=2)),
    ("finetune-k4-avg", TowerConfig(kind="finetune", train_blocks=4)),
]


def myntra_catalog(n: int) -> Catalog:
    """The first ``n`` Myntra products whose 60x80 photo exists."""
    root = myntra_image_root("60x80")
    has_photo = lambda i: (root / f"{i}.jpg").exists()  # noqa: E731
    products, _, _ = read_myntra_csv(shared_data_dir() / MYNTRA_CSV, keep=has_photo, limit=n)
    return Catalog(products, image_root=root)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 1)


def cache_bytes(cache: FeatureCache) -> int:
    return sum(p.stat().st_size for p in cache.dir.glob("part-*.npy"))


def bench_extraction(catalog: Catalog, kinds: list[str], threads: int, work: Path) -> tuple[dict, dict]:
    """Cold and cached extraction per kind. Returns (results, sample rows per kind)."""
    results: dict[str, Any] = {}
    rows: dict[str, np.ndarray] = {}
    for kind in kinds:
        shutil.rmtree(work / kind, ignore_errors=True)
        if kind == "pooled":
            enc = OnnxEfficientNetLite0(num_threads=threads)
            cache = FeatureCache(work / kind, enc.name, enc.dim)
            run: Callable[[], Any] = partial(extract_features, catalog, enc, cache, progress=False)
        else:
            ex = ActivationExtractor(kind, num_threads=threads)
            cache = activation_cache(work / kind, ex)
            run = partial(extract_activations, catalog, ex, cache, progress=False)
        start = time.perf_counter()
        out = run()
        cold = time.perf_counter() - start
        start = time.perf_counter()
        run()
        warm = time.perf_counter() - start
        present = out.present
        values = out.vectors if kind == "pooled" else out.values
        rows[kind] = np.ascontiguousarray(values[present][:512])
        results[kind] = {
            "products": len(catalog),
            "present": int(present.sum()),
            "dim": int(values.shape[1]),
            "extract_products_per_s": round(len(catalog) / cold, 1),
            "cached_products_per_s": round(len(catalog) / warm, 1),
            "cache_bytes_per_product": round(cache_bytes(cache) / max(1, len(cache)), 0),
            "cache_dtype": cache.dtype,
            "full_myntra_44446_gb": round(44446 * cache_bytes(cache) / max(1, len(cache)) / 1e9, 2),
        }
        log.info("%s: %s", kind, results[kind])
    return results, rows


def time_tower(tower: torch.nn.Module, x: torch.Tensor, repeats: int) -> dict[str, Any]:
    def train_step() -> None:
        tower.train()
        tower.zero_grad(set_to_none=True)
        tower(x).pow(2).mean().backward()

    def eval_step() -> None:
        tower.eval()
        with torch.no_grad():
            tower(x)

    trainable = sum(p.numel() for p in tower.parameters() if p.requires_grad)
    return {"train_ms": median_ms(train_step, repeats) if trainable else 0.0,
            "eval_ms": median_ms(eval_step, repeats), "trainable_params": trainable}  # fmt: skip


def bench_towers(rows: dict[str, np.ndarray], batch: int, repeats: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, cfg in TOWERS:
        kind = tower_input_kind(cfg)
        if kind not in rows:
            continue
        x = torch.from_numpy(rows[kind][:batch])
        results[name] = {"input": kind, "batch": len(x), **time_tower(build_tower(cfg), x, repeats)}
        log.info("%s: %s", name, results[name])
    return results


def bench_text(catalog: Catalog, batch: int, repeats: int, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    sub = Catalog(catalog.products[: batch * 2], catalog.image_root)
    for k in (1, 2):
        cfg = TextTowerConfig(kind="finetune", train_layers=k)
        lower = MiniLMHiddenStates(cfg)
        shutil.rmtree(work / f"text{k}", ignore_errors=True)
        cache = activation_cache(work / f"text{k}", lower)
        start = time.perf_counter()
        hidden = extract_text_hidden(sub, lower, cache, progress=False)
        rate = len(sub) / (time.perf_counter() - start)
        x = torch.from_numpy(hidden.values[:batch])
        lengths = hidden.values[:, -cfg.max_length :].astype(np.float32).sum(axis=1)
        results[f"text-finetune-k{k}"] = {
            "input": lower.kind,
            "extract_texts_per_s": round(rate, 1),
            "cache_bytes_per_product": round(cache_bytes(cache) / max(1, len(cache)), 0),
            "median_tokens": float(np.median(lengths)),
            "max_tokens": float(lengths.max()),
            **time_tower(build_text_tower(cfg), x, repeats),
        }
        log.info("text k=%d: %s", k, results[f"text-finetune-k{k}"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="products")
    parser.add_argument("--batch", type=int, default=256, help="tower batch size")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime and torch threads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--kinds", default="pooled,map,act16,act15,act14,act12", help="cached inputs to extract"
    )
    parser.add_argument("--no-text", action="store_true", help="skip the text towers")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/towers.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("samestyle").setLevel(logging.ERROR)  # missing-photo warnings
    torch.set_num_threads(args.threads)
    work = cache_dir() / "bench" / "towers"
    catalog = myntra_catalog(args.n)
    extraction, rows = bench_extraction(catalog, args.kinds.split(","), args.threads, work)
    report = {
        "setup": {
            "products": len(catalog),
            "batch": args.batch,
            "threads": args.threads,
            "repeats": args.repeats,
            "torch": torch.__version__,
            "machine": platform.machine(),
            "note": "shared 2-core VM; timings are rough",
        },
        "extraction": extraction,
        "towers": bench_towers(rows, args.batch, args.repeats),
    }
    if not args.no_text:
        report["text_towers"] = bench_text(catalog, args.batch, args.repeats, work)
    shutil.rmtree(work, ignore_errors=True)
    write_json(args.out, report)
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
