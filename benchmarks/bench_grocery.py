"""The seed paper's retrieval table on the Grocery Store val set: frozen features, CCA and a joint-model run.

Protocol: :mod:`samestyle.eval.grocery` (296 val shelf photos -> the 81 catalogue products; text queries
are the class names, i.e. label-derived). The joint run (default ``runs/bench/default``) was trained on
Myntra only, so its row is a zero-shot transfer to groceries. Everything runs on one thread; the frozen
image features of the photos are cached, so re-runs are quick.

    .venv/bin/python benchmarks/bench_grocery.py --run runs/bench/default \
        --out benchmarks/results/grocery.json

With ``--train-grocery``, also train the unified model on the grocery TRAIN photos
(:mod:`samestyle.train.grocery`, base config ``configs/grocery.toml``) in each of ``--variants`` and score
it on val exactly as the joint row; rows ``grocery:<variant>``. Training summaries (wall time, best epoch,
carved-train selection score, Myntra val SumR where a Myntra run is involved) go to ``--train-out``.

    .venv/bin/python benchmarks/bench_grocery.py --run runs/bench/default --train-grocery \
        --out benchmarks/results/grocery.json

Writes ``{method: {row: metrics}}`` to ``--out`` (rows of earlier runs under other method names are kept)
and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from samestyle.config import load_config
from samestyle.eval.grocery import ROWS, GroceryFeatures, grocery_features, render_markdown, run_grocery_eval
from samestyle.eval.grocery_joint import ensemble_table
from samestyle.fsio import atomic_open
from samestyle.pipeline.encoders import build_encoders
from samestyle.train.grocery import GroceryRunConfig, train_grocery

# variant -> overrides of configs/grocery.toml; "{run}" is the Myntra run (--run)
VARIANTS: dict[str, list[str]] = {
    "scratch": [],  # grocery train only; photo text = class name
    "scratch-notext": ['photo_text="none"'],  # grocery train only; photos never see the class name
    "scratch-refit": ["refit=true"],  # epochs chosen on the carved photos, then retrained on all train
    "scratch-notext-refit": ['photo_text="none"', "refit=true"],
    "scratch-strongreg": ["model.dropout=0.3", "train.feature_dropout=0.3", "train.weight_decay=0.2"],
    "finetune": ['init_run="{run}"'],  # the Myntra run fine-tuned on grocery train
    "finetune-lowlr": ['init_run="{run}"', "train.lr=0.0005"],
    "with-myntra": ['myntra="{run}/config.toml"', "train.epochs=15", "train.patience=4"],  # together
}


def train_variants(
    feats: GroceryFeatures,
    names: list[str],
    base: str,
    run: str,
    runs: Path,
    extra: list[str],
    seeds: list[int],
    ensemble: bool = False,
    reuse: bool = False,
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, object]]]:
    """Train each variant (each seed) on grocery train, score it on val; returns (tables, summaries).

    The first seed's row is ``grocery:<variant>``, the others ``grocery:<variant>:seed<k>``."""
    tables: dict[str, dict[str, dict[str, float]]] = {}
    summaries: dict[str, dict[str, object]] = {}
    for name in names:
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        for i, seed in enumerate(seeds):
            tag = name if i == 0 else f"{name}:seed{seed}"
            overrides = [o.replace("{run}", run) for o in VARIANTS[name]] + extra + [f"train.seed={seed}"]
            cfg = load_config(GroceryRunConfig, base, overrides)
            out = runs / tag.replace(":", "-")
            logging.info("training grocery variant %s -> %s (%s)", tag, out, overrides)
            if reuse and (out / "metrics.json").exists() and (out / "model.safetensors").exists():
                logging.info("reusing the trained run %s (--reuse)", out)
                metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
            else:
                metrics = train_grocery(cfg, out, feats)
            tables[f"grocery:{tag}"] = run_grocery_eval("joint", out, features=feats)
            summaries[tag] = {"run": str(out), "overrides": overrides} | {
                k: v for k, v in metrics.items() if k != "history"
            }
            logging.info("variant %s: %s", tag, summaries[tag])
        if ensemble and len(seeds) > 1:  # the seeds' joint vectors averaged: one more (3x bigger) model
            dirs = [runs / (name if i == 0 else f"{name}-seed{s}") for i, s in enumerate(seeds)]
            tables[f"grocery:{name}:ensemble{len(seeds)}"] = ensemble_table(feats, dirs)
    return tables, summaries


def seed_summary(results: dict[str, Any], names: list[str], seeds: list[int]) -> str:
    """Markdown: per variant and row, the val MRR as mean (min-max) over the seeds."""
    lines = ["| variant | " + " | ".join(ROWS) + " |", "|---|" + "---|" * len(ROWS)]
    for name in names:
        keys = [f"grocery:{name}"] + [f"grocery:{name}:seed{s}" for s in seeds[1:]]
        tabs = [results[k] for k in keys if k in results]
        cells = []
        for row in ROWS:
            v = [t[row]["mrr"] for t in tabs if row in t]
            cells.append(f"{sum(v) / len(v):.3f} ({min(v):.3f}-{max(v):.3f})" if v else "")
        lines.append(f"| {name} ({len(tabs)} seeds) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/bench/default", help="a 'samestyle train' run folder")
    ap.add_argument("--out", default="benchmarks/results/grocery.json")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-grocery", action="store_true", help="also train on grocery train (variants)")
    ap.add_argument("--variants", default="scratch,scratch-notext,finetune,finetune-lowlr,with-myntra")
    ap.add_argument("--config", default="configs/grocery.toml", help="base grocery training config")
    ap.add_argument("--set", action="append", default=[], help="override for every variant (KEY=VALUE)")
    ap.add_argument("--runs", default="runs/grocery", help="folder for the trained variants")
    ap.add_argument("--train-out", default="benchmarks/results/grocery_train.json")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds per variant")
    ap.add_argument("--ensemble", action="store_true", help="also score each variant's seeds averaged")
    ap.add_argument("--reuse", action="store_true", help="score finished runs, do not retrain")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    img_enc, txt_enc = build_encoders("efficientnet-lite0", "minilm", threads=args.threads)
    assert img_enc is not None and txt_enc is not None
    feats = grocery_features(img_enc, txt_enc, include_train=True)
    logging.info(
        "encoded %d val photos, %d train photos, %d products in %.1fs",
        len(feats.photo_img),
        0 if feats.train_img is None else len(feats.train_img),
        len(feats.gal_img),
        time.perf_counter() - start,
    )
    results = {
        "frozen": run_grocery_eval("frozen", features=feats),
        "cca": run_grocery_eval("cca", features=feats),
    }
    run = Path(args.run)
    if (run / "config.toml").exists():
        results[f"joint:{args.run}"] = run_grocery_eval("joint", run, features=feats, threads=args.threads)
    else:
        logging.warning("%s is not a finished run folder: the joint row is skipped", run)
    names = [v for v in args.variants.split(",") if v]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if args.train_grocery:
        tables, summaries = train_variants(
            feats, names, args.config, args.run, Path(args.runs), args.set, seeds, args.ensemble, args.reuse
        )
        results.update(tables)
        _merge(Path(args.train_out), summaries)
    out = Path(args.out)
    _merge(out, results)
    print(render_markdown(json.loads(out.read_text(encoding="utf-8"))))
    if args.train_grocery and len(seeds) > 1:
        print(f"\nval MRR, mean (min-max) over seeds {args.seeds}\n" + seed_summary(results, names, seeds))
    print(f"\nwritten to {out} in {time.perf_counter() - start:.1f}s", flush=True)


def _merge(path: Path, new: dict[str, Any]) -> None:
    """Write ``new`` into the JSON object at ``path``, keeping its other keys (earlier rows)."""
    old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    old.update(new)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:  # key order kept: rows in protocol order
        fh.write(json.dumps(old, indent=2) + "\n")


if __name__ == "__main__":
    main()
