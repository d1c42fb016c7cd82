"""Kaleido-BERT-style cross-encoder on held-out Myntra: sample-100 retrieval, re-ranking, latency, categories.

On the held-out test products of the pre-training subset: sample-100 (image->text, text->image R@1/5/10,
SumR) for the issue-B bi-encoder alone (joint-image / joint-text); for the main run (the first) the
bi-encoder + cross-encoder re-ranking of its top K (each ``--rerank-k``) and the cross-encoder alone (on
``--cross-queries`` queries: it scores 101 pairs a query); for every other run (the ablations) the re-ranking
with the first K. Each run also gets masked-token accuracy on held-out titles (random 15% masks, fixed
seed), a nearest-class-mean probe of its [CLS] (subCategory / articleType) and its last-epoch losses.
For the main run also the re-ranking latency per query for K = 10, 50, 100 and linear-probe category
ACC / macro-F1 on [CLS] vs on the issue-B joint-fused vectors (and the fine-tuned category head when the
main run has one). The machine is shared with other jobs (2 cores): timings are medians, not peaks.
The measurements are the library's ``samestyle.pretrain.evaluate`` (what ``samestyle eval --cross-run``
runs for one run); this script lays them out over several runs.

    bash benchmarks/pretrain_ablations.sh   # trains the runs, then runs this with:
    .venv/bin/python benchmarks/bench_pretrain.py --runs runs/pretrain/ablation-main ... \\
        --embeddings .cache/samestyle/work/myntra/emb-joint --queries 300 --cross-queries 100 \\
        --rerank-k 10 20 50 --out benchmarks/results/pretrain.json
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from samestyle.fsio import write_json
from samestyle.pretrain.evaluate import (
    CrossEvalOptions,
    bi_encoder_results,
    load_inputs,
    run_results,
    run_summary,
)
from samestyle.pretrain.train import load_pretrain_run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--runs", nargs="+", required=True, help="pretrain run folders; the first is the main one"
    )
    ap.add_argument(
        "--embeddings", required=True, help="emb folder with joint-image / joint-text / joint-fused"
    )
    ap.add_argument("--queries", type=int, default=300, help="sample-100 queries (one draw, seed 0)")
    ap.add_argument(
        "--cross-queries", type=int, default=100, help="queries for the (slow) cross-encoder alone"
    )
    ap.add_argument("--rerank-k", type=int, nargs="+", default=[10])
    ap.add_argument("--latency-k", type=int, nargs="+", default=[10, 50, 100])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)

    main_opts = CrossEvalOptions(
        queries=args.queries, cross_queries=args.cross_queries, rerank_k=tuple(args.rerank_k),
        latency_k=tuple(args.latency_k), categories=True, full_protocol=True,
    )  # fmt: skip
    other_opts = CrossEvalOptions(
        queries=args.queries, cross_queries=0, rerank_k=tuple(args.rerank_k[:1]), categories=False
    )
    _, cfg = load_pretrain_run(args.runs[0])
    inp = load_inputs(cfg, args.embeddings)  # every run is scored on the first run's subset
    out: dict[str, Any] = bi_encoder_results(inp, main_opts) | {"runs": {}}
    for n, run in enumerate(args.runs):
        model, rcfg = load_pretrain_run(run)
        res = run_summary(run, rcfg) | run_results(model, rcfg, inp, main_opts if n == 0 else other_opts)
        if n == 0:  # the main run's latency and category probes go to the top level
            out["latency"] = res.pop("latency")
            out["categories"] = res.pop("categories")
        out["runs"][Path(run).name] = res
        logging.info("%s: %s", run, {k: v for k, v in res.items() if k != "train"})
    out["meta"] = {
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "n_test_products": len(inp.test),
        "n_train_products": len(inp.train),
        "machine": f"{platform.processor() or platform.machine()}, shared with other jobs, torch threads 1",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(args.out, out)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
