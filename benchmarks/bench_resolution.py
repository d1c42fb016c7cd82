"""Resolution A/B: the same Myntra products with 60x80 thumbnails (upscaled) vs their 224 px photos.

Both arms hold exactly the products that have a photo in both image sets (9,572 of the 9,583 224 px ids:
11 have no 60x80 photo), the same fixed split (``data.split = "myntra"``, KAGL products held out), the
same frozen encoders (BF16 OpenVINO, whose retrieval cost is negligible: BENCHMARKS.md "Issue F"), the
same recipe (``configs/myntra.toml``, 1 thread) and the same evaluation; only the photos differ. KAGL is
scored "restricted to the catalogue" (``eval --kagl-restricted``): only the text->image queries whose
product is in the subset, with the subset as the gallery, so not comparable with full-gallery KAGL.

    .venv/bin/python benchmarks/bench_resolution.py --seeds 0,1,2 --reference-run runs/bench/default \
        --out benchmarks/results/resolution_224.json

is, per arm ``s`` in 60x80 / 224 (``W=.cache/samestyle/work/myntra224``), the same as these commands:

    .venv/bin/samestyle dataset myntra --images $s --only-with-images 60x80,224 --out $W/catalog-$s
    .venv/bin/samestyle embed --catalog $W/catalog-$s --out $W/emb-$s \
        --image-encoder efficientnet-lite0-bf16 --text-encoder minilm-bf16 --threads 1 --no-cache
    .venv/bin/samestyle train --config configs/myntra.toml --set data.catalog=$W/catalog-$s \
        --set data.embeddings=$W/emb-$s --set train.seed=0 --out runs/myntra224/$s-seed0
    .venv/bin/samestyle eval --catalog $W/catalog-$s --embeddings $W/emb-$s --method frozen \
        --kagl-restricted --out runs/myntra224/eval-frozen-$s
    .venv/bin/samestyle eval --catalog $W/catalog-$s --embeddings $W/emb-$s --method run \
        --run runs/myntra224/$s-seed0 --kagl-restricted --out runs/myntra224/eval-$s-seed0

``--reference-run`` also scores a run trained on the whole 60x80 catalogue (37k training products) on
the 60x80 arm: how much the smaller training set costs, beside what resolution buys. ``--reuse`` keeps
catalogues, embeddings and runs that already exist (their times are then not re-measured).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.catalog.store import read_catalog
from samestyle.config import load_config
from samestyle.datasets.myntra import build_myntra_catalog
from samestyle.eval.methods import CCAMethod, FrozenMethod, JointMethod
from samestyle.eval.runner import myntra_context
from samestyle.eval.suites import PROTOCOLS, evaluate
from samestyle.fsio import read_json, write_json
from samestyle.pipeline.embed import embed_catalog
from samestyle.pipeline.encoders import build_encoders
from samestyle.train.run import RunConfig, train_run

ARMS = ("60x80", "224")
BOTH = ("60x80", "224")
ENCODERS = {"image": "efficientnet-lite0-bf16", "text": "minilm-bf16"}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def arm_artifacts(work: Path, arm: str, reuse: bool) -> dict[str, Any]:
    """Catalogue + frozen embeddings of one arm; wall seconds of each step (None when reused)."""
    out: dict[str, Any] = {}
    cat, emb = work / f"catalog-{arm}", work / f"emb-{arm}"
    if not (reuse and (cat / "catalog.parquet").exists()):
        start = time.perf_counter()
        report = build_myntra_catalog(cat, images=arm, only_with_images=BOTH)
        out["catalog_seconds"] = round(time.perf_counter() - start, 1)
        out["catalog"] = {"products": report.products_written, "images_ok": report.images_ok}
    if not (reuse and (emb / "embeddings.json").exists()):
        image_enc, text_enc = build_encoders(ENCODERS["image"], ENCODERS["text"], threads=1)
        load_before = _load()
        start = time.perf_counter()
        _, rep = embed_catalog(
            read_catalog(cat), emb, image_enc, text_enc, None, progress=False, encoder_keys=ENCODERS
        )
        out["embed_seconds"] = {k: round(v, 1) for k, v in rep.seconds.items()}
        out["embed_wall_seconds"] = round(time.perf_counter() - start, 1)
        out["embed_load_avg"] = {"before": load_before, "after": _load()}
    return out


def train_arm(config: str, work: Path, runs: Path, arm: str, seed: int, reuse: bool) -> dict[str, Any]:
    run_dir = runs / f"{arm}-seed{seed}"
    if reuse and (run_dir / "metrics.json").exists():
        metrics = read_json(run_dir / "metrics.json")
        reused = True
    else:
        overrides = [
            f'data.catalog="{work / f"catalog-{arm}"}"',
            f'data.embeddings="{work / f"emb-{arm}"}"',
            "train.threads=1",
            f"train.seed={seed}",
        ]
        cfg = load_config(RunConfig, config, overrides)
        load_before = _load()
        metrics = train_run(cfg, run_dir, progress=False)
        metrics["load_avg"] = {"before": load_before, "after": _load()}
        reused = False
    keep = ("best_epoch", "best_val_sum_r", "epochs_run", "train_seconds", "train_products", "val_products")
    extra = {"load_avg": metrics["load_avg"]} if "load_avg" in metrics else {}
    return {"run": str(run_dir), "reused": reused, **{k: metrics.get(k) for k in keep}, **extra}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/myntra.toml")
    ap.add_argument("--work", default=".cache/samestyle/work/myntra224")
    ap.add_argument("--runs", default="runs/myntra224")
    ap.add_argument("--seeds", default="0", help="training seeds, comma-separated (one run per arm each)")
    ap.add_argument("--reference-run", help="a run trained on the whole catalogue, scored on the 60x80 arm")
    ap.add_argument("--reuse", action="store_true", help="keep existing catalogues, embeddings and runs")
    ap.add_argument("--out", default="benchmarks/results/resolution_224.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(1)
    work, runs, out = Path(args.work), Path(args.runs), Path(args.out)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    old = read_json(out) if args.reuse and out.exists() else {}
    results: dict[str, Any] = {
        "meta": {
            "what": "same products, same split, encoders, recipe and evaluation; only the photos differ",
            "kagl": "restricted to the catalogue: only queries whose product is in it, it as the gallery "
            "(eval --kagl-restricted); not comparable with full-gallery KAGL",
            "encoders": ENCODERS,
            "config": args.config,
            "seeds": seeds,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other jobs; 1 thread",
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        "arms": {},
    }
    for arm in ARMS:  # with --reuse, the times measured by an earlier run are kept
        res: dict[str, Any] = old.get("arms", {}).get(arm, {}) | arm_artifacts(work, arm, args.reuse)
        results["arms"][arm] = res
        write_json(out, results)
        ctx = myntra_context(work / f"catalog-{arm}", work / f"emb-{arm}", "myntra", kagl_restricted=True)
        res["products"] = len(ctx.emb.ids)
        res["split"] = {k: len(v) for k, v in ctx.rows.items()}
        res["frozen"] = evaluate(FrozenMethod(ctx.emb), ctx, PROTOCOLS)
        res["cca"] = evaluate(CCAMethod(ctx.emb, np.asarray(ctx.rows["train"])), ctx, PROTOCOLS)
        write_json(out, results)
        for seed in seeds:
            kept = res.get(f"seed{seed}", {})
            res[f"seed{seed}"] = train_arm(args.config, work, runs, arm, seed, args.reuse)
            if res[f"seed{seed}"]["reused"] and "load_avg" in kept:
                res[f"seed{seed}"]["load_avg"] = kept["load_avg"]
            run = Path(res[f"seed{seed}"]["run"])
            res[f"seed{seed}"]["test"] = evaluate(JointMethod(ctx.emb, run, ctx.catalog), ctx, PROTOCOLS)
            write_json(out, results)  # after every run: a crash keeps the finished ones
        if arm == "60x80" and args.reference_run:
            ref = JointMethod(ctx.emb, Path(args.reference_run), ctx.catalog, name="reference")
            res["reference_run"] = {"run": args.reference_run, "test": evaluate(ref, ctx, PROTOCOLS)}
            write_json(out, results)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
