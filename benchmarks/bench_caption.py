"""Title generation on the 1,500 held-out products of the pre-training subset: decoder vs nearest neighbour.

Methods: each caption run's decoder (``--runs``, the first is the main one) with greedy decoding and
beam search (each ``--beams`` width, the run's ``length_penalty``), and the nearest-neighbour-title
baseline: the title of the most similar *train* product (cosine) on the issue-B ``joint-image`` vectors
(``--embeddings``) and on the 1x1 kaleido patch (the pooled backbone feature after the subset's PCA).
References are the real catalogue titles (one per product). Metrics (``samestyle.eval.captioning``):
corpus BLEU-4, CIDEr-D, ROUGE-L, exact-title rate and brand accuracy (first word equal).
Latency: one title per call (batch of 1), median / p90 over ``--latency-n`` held-out products (main
run only); the full-set decode time gives the batched cost per title. The machine is shared with other
jobs (2 cores, 1 torch thread): timings are medians, not peaks.

    .venv/bin/python benchmarks/bench_caption.py --runs runs/caption/default runs/caption/long-12ep \\
        --embeddings .cache/samestyle/work/myntra/emb-joint --beams 3 5 \\
        --out benchmarks/results/caption.json
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

import numpy as np
import torch

from samestyle.catalog.store import read_catalog
from samestyle.config import to_dict
from samestyle.eval.captioning import caption_scores, nearest_neighbour_titles, words
from samestyle.fsio import write_json
from samestyle.pretrain.caption import CaptionRun, data_file
from samestyle.pretrain.prepare import load_data


def scores(hyps: list[str], refs: list[str]) -> dict[str, float]:
    out = caption_scores(hyps, [[r] for r in refs])
    first = [(words(h) or [""])[0] == (words(r) or ["?"])[0] for h, r in zip(hyps, refs, strict=True)]
    out["brand_acc"] = float(np.mean(first))
    out["mean_words"] = float(np.mean([len(words(h)) for h in hyps]))
    return {k: round(v, 4) for k, v in out.items()}


def latency(run: CaptionRun, patches: np.ndarray, beams: list[int], n: int) -> dict[str, Any]:
    """Milliseconds to caption one product (batch of 1) per beam width, the widths interleaved per product
    (so a change of machine load hits them alike): median and p90 over the first ``n`` products."""
    times: dict[int, list[float]] = {b: [] for b in beams}
    for i in range(n):
        for beam in beams:
            t0 = time.perf_counter()
            run.titles(patches[i : i + 1], beam=beam)
            times[beam].append(1000 * (time.perf_counter() - t0))
    return {
        ("greedy" if b == 1 else f"beam{b}"): {
            "median_ms": round(float(np.median(t)), 2),
            "p90_ms": round(float(np.quantile(t, 0.9)), 2),
        }
        for b, t in times.items()
    }


def decode_run(
    run: CaptionRun, patches: np.ndarray, refs: list[str], beams: list[int]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Scores and full-set decode time of greedy and each beam width."""
    results: dict[str, Any] = {}
    hyps: dict[str, list[str]] = {}
    for beam in [1, *beams]:
        name = "greedy" if beam == 1 else f"beam{beam}"
        t0 = time.perf_counter()
        hyps[name] = run.titles(patches, beam=beam)
        took = time.perf_counter() - t0
        results[name] = scores(hyps[name], refs) | {
            "decode_seconds": round(took, 1),
            "batched_ms_per_title": round(1000 * took / len(refs), 2),
        }
        logging.info("%s %s: %s", run.path, name, results[name])
    return results, hyps


def train_summary(run_dir: str) -> dict[str, Any]:
    metrics = json.loads((Path(run_dir) / "metrics.json").read_text(encoding="utf-8"))
    hist = metrics.pop("history")
    return metrics | {"epochs_run": len(hist), "last_epoch": hist[-1] if hist else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", required=True, help="caption run folders; the first is the main one")
    ap.add_argument("--embeddings", help="emb folder with joint-image (the nearest-neighbour baseline)")
    ap.add_argument("--beams", type=int, nargs="+", default=[3, 5])
    ap.add_argument("--examples", type=int, default=8)
    ap.add_argument("--latency-n", type=int, default=50, help="single-title timings (main run only)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)

    main_run = CaptionRun(args.runs[0])
    data = load_data(data_file(main_run.cfg))
    catalog = read_catalog(main_run.cfg.data.catalog)
    ids = [str(i) for i in data["ids"]]
    titles = [catalog.get(i).title for i in ids]
    train, test = np.flatnonzero(data["is_train"]), np.flatnonzero(~data["is_train"])
    refs = [titles[i] for i in test]
    patches = data["patches"][test]
    runs: dict[str, Any] = {}
    hyps: dict[str, list[str]] = {}
    for n, run_dir in enumerate(args.runs):
        run = main_run if n == 0 else CaptionRun(run_dir)
        if data_file(run.cfg) != data_file(main_run.cfg):
            raise SystemExit(f"{run_dir} was trained on another subset than {args.runs[0]}")
        res, h = decode_run(run, patches, refs, args.beams)
        name = Path(run_dir).name
        runs[name] = {"decode": res, "train": train_summary(run_dir), "config": to_dict(run.cfg)}
        hyps |= {f"{name}/{k}": v for k, v in h.items()}
    single = latency(main_run, patches, [1, *args.beams], args.latency_n)
    baselines: dict[str, Any] = {}
    train_titles = [titles[i] for i in train]
    p1 = data["patches"][:, 0, :].astype(np.float32)  # the 1x1 patch (PCA of the pooled map)
    hyps["nn_patch1x1"] = nearest_neighbour_titles(p1[train], train_titles, p1[test])
    baselines["nn_patch1x1"] = scores(hyps["nn_patch1x1"], refs)
    if args.embeddings:
        from samestyle.pipeline.embeddings import EmbeddingSet

        emb = EmbeddingSet.load(args.embeddings, verify=False)
        pos = {pid: i for i, pid in enumerate(emb.ids)}
        rows = np.array([pos[i] for i in ids])
        vec, present = emb.vectors["joint-image"][rows], emb.present["joint-image"][rows]
        hyps["nn_joint_image"] = nearest_neighbour_titles(vec[train], train_titles, vec[test])
        baselines["nn_joint_image"] = scores(hyps["nn_joint_image"], refs) | {"present": int(present.sum())}
    baselines["reference_vs_itself"] = scores(refs, refs)
    pick = np.random.default_rng(0).choice(len(test), size=min(args.examples, len(test)), replace=False)
    examples = [{"id": ids[test[j]], "real": refs[j]} | {k: v[j] for k, v in hyps.items()} for j in pick]
    out = {
        "runs": runs,
        "single_title_latency": single | {"run": Path(args.runs[0]).name, "products": args.latency_n},
        "baselines": baselines,
        "examples": examples,
        "meta": {
            "command": " ".join([".venv/bin/python", *sys.argv]),
            "main_run": Path(args.runs[0]).name,
            "n_test_products": len(test),
            "n_train_products": len(train),
            "machine": f"{platform.processor() or platform.machine()}, shared machine, torch threads 1",
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    }
    write_json(args.out, out)
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
