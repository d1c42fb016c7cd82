"""Train named variants of the joint-model recipe and score each on the held-out Myntra suite.

Each variant is the base config (``--config``) plus dotted overrides; all share the split, the frozen
features and the evaluation, so rows are comparable. Results go to one JSON file (medians are not
needed: training is seeded; the seed is in the config).

    .venv/bin/python benchmarks/bench_joint.py --config configs/myntra.toml --variants default,plain-infonce \
        --out benchmarks/results/joint.json

The mined-pairs variants need the pairs files first:

    W=.cache/samestyle/work/myntra
    .venv/bin/samestyle simulate-clicks --catalog $W/catalog --sessions 20000 --out $W/clicks.jsonl
    .venv/bin/samestyle mine --catalog $W/catalog --log $W/clicks.jsonl --out $W/pairs-all.parquet
    .venv/bin/samestyle mine --catalog $W/catalog --log $W/clicks.jsonl --out $W/pairs-none.parquet \
        --set use_category=false --set use_query_relevance=false --set use_similarity=false
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from samestyle.config import load_config
from samestyle.eval.methods import JointMethod
from samestyle.eval.runner import myntra_context
from samestyle.eval.suites import evaluate
from samestyle.fsio import write_json
from samestyle.train.run import RunConfig, train_run

ALL = '["image-text", "text-image", "fused-image", "fused-text", "fused-fused", "image-image", "text-text"]'
VARIANTS: dict[str, list[str]] = {
    "default": [],
    "plain-infonce": ['loss.pairs=["image-text"]', "loss.group_aware=false", "train.feature_dropout=0.0"],
    "no-group-mask": ["loss.group_aware=false"],
    "hinge": ['loss.loss="hinge"'],
    "regularisers": ['loss.regularizers=["self_distinct", "locality"]'],
    "uncertainty-weights": ['weighting="uncertainty"'],
    "fashionbert-weights": ['weighting="fashionbert"'],
    "fusion-sum": ['model.fusion="sum"'],
    "fusion-mlp": ['model.fusion="mlp"'],
    "fusion-attention": ['model.fusion="attention"'],
    "hard-negatives": ['train.hard_label="category2"'],
    "no-fused-terms": ['loss.pairs=["image-text", "text-image", "image-image", "text-text"]'],
    "no-cross-modal": ['loss.pairs=["fused-fused", "image-image", "text-text"]'],
    "no-within-modality": [
        'loss.pairs=["image-text", "text-image", "fused-image", "fused-text", "fused-fused"]'
    ],
    "strong-reg": ["model.dropout=0.3", "train.feature_dropout=0.3", "train.weight_decay=0.2"],
    "small-heads": ["model.hidden=512", "model.dropout=0.3", "train.feature_dropout=0.3"],
    # pairs mined from a SIMULATED click log (samestyle simulate-clicks + mine), with / without constraints
    "mined-pairs": ['data.pairs=".cache/samestyle/work/myntra/pairs-all.parquet"'],
    "mined-pairs-unconstrained": ['data.pairs=".cache/samestyle/work/myntra/pairs-none.parquet"'],
}
PROTOCOLS = ("kagl", "sample100", "same-label")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/myntra.toml")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--set", action="append", default=[], help="extra overrides for every variant")
    ap.add_argument("--runs", default="runs/bench")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    ctx = None
    for name in args.variants.split(","):
        cfg = load_config(RunConfig, args.config, [*args.set, *VARIANTS[name]])
        run_dir = Path(args.runs) / name
        start = time.perf_counter()
        metrics = train_run(cfg, run_dir, progress=False)
        seconds = time.perf_counter() - start
        if ctx is None:
            ctx = myntra_context(cfg.data.catalog, cfg.data.embeddings, cfg.data.split)
        scores = evaluate(JointMethod(ctx.emb, run_dir, ctx.catalog, name=name), ctx, PROTOCOLS)
        results[name] = {
            "overrides": VARIANTS[name] + args.set,
            "train_seconds": round(seconds, 1),
            "best_epoch": metrics["best_epoch"],
            "best_val_sum_r": metrics["best_val_sum_r"],
            "test": scores,
        }
        write_json(out, results)  # after every variant: a crash keeps the finished ones
        kagl = scores.get("KAGL text->image", {})
        s100 = scores.get("sample-100 (test, same subCategory negatives)", {})
        row = [
            f"{name:22s} {seconds:6.0f}s",
            f"KAGL R@1 {kagl.get('recall@1', 0):.3f}",
            f"R@10 {kagl.get('recall@10', 0):.3f}",
            f"MRR {kagl.get('mrr', 0):.3f}",
            f"s100 i2t {s100.get('i2t_r@1', 0):.3f}",
            f"t2i {s100.get('t2i_r@1', 0):.3f}",
        ]
        print("  ".join(row), flush=True)


if __name__ == "__main__":
    main()
