"""Kaleido-BERT-style cross-encoder on held-out Myntra: sample-100 retrieval, re-ranking, latency, categories.

On the held-out test products of the pre-training subset: sample-100 (image->text, text->image R@1/5/10,
SumR) for the issue-B bi-encoder alone (joint-image / joint-text); for the main run (the first) the
bi-encoder + cross-encoder re-ranking of its top K (each ``--rerank-k``) and the cross-encoder alone (on
``--cross-queries`` queries: it scores 101 pairs a query); for every other run (the ablations) the re-ranking
with the first K. Each run also gets masked-token accuracy on held-out titles (random 15% masks, fixed
seed), a nearest-class-mean probe of its [CLS] (subCategory / articleType) and its last-epoch losses.
For the main run also the re-ranking latency per query for K = 10, 50, 100 and linear-probe category
ACC / macro-F1 on [CLS] vs on the issue-B joint-fused vectors. The machine is shared with other
jobs (2 cores): timings are medians, not peaks.

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

import numpy as np
import torch

from samestyle.eval.protocols import sample100
from samestyle.fsio import write_json
from samestyle.pipeline.embeddings import EmbeddingSet
from samestyle.pretrain.categories import cls_features, linear_probe
from samestyle.pretrain.rerank import CrossScorer, dot_score_fn, rerank_latency, rerank_score_fn
from samestyle.pretrain.run import ensure_data
from samestyle.pretrain.tasks import Batch, MaskedLanguageModel
from samestyle.pretrain.train import Pretrainer, load_pretrain_run

KEYS = ("i2t_r@1", "i2t_r@5", "i2t_r@10", "t2i_r@1", "t2i_r@5", "t2i_r@10", "sum_r")


def _short(res: dict[str, float]) -> dict[str, float]:
    return {k: round(float(res[k]), 4) for k in (*KEYS, "n_queries", "n_filled")}


def mlm_accuracy(model: Pretrainer, tokens: np.ndarray, patches: np.ndarray, seed: int = 0) -> float:
    """Top-1 accuracy of the MLM head on random 15% masks of held-out titles (image given)."""
    if "mlm" not in model.tasks:
        return float("nan")
    task = model.tasks["mlm"]
    assert isinstance(task, MaskedLanguageModel)
    b = Batch(torch.from_numpy(tokens), torch.from_numpy(patches.astype(np.float32)),
              torch.zeros(tokens.shape), torch.ones(len(tokens)))  # fmt: skip
    MaskedLanguageModel(1, 1, guided=False).corrupt(b, torch.Generator().manual_seed(seed))
    hits = total = 0
    with torch.inference_mode():
        for s in range(0, len(tokens), 256):
            sl = slice(s, s + 256)
            enc = model.encoder(b.tokens[sl], b.patches[sl], b.text_masked[sl])
            m = b.text_masked[sl]
            pred = task.head(enc.text[m]).argmax(-1)
            hits += int((pred == b.targets["mlm"][sl][m]).sum())
            total += int(m.sum())
    return hits / max(total, 1)


def centroid_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    """Nearest-class-mean accuracy (cosine, standardised features) on ``test``: a cheap ablation probe."""
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
    z = (x - mu) / sd
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-12
    labels = np.unique(y[train])
    cent = np.stack([z[train][y[train] == c].mean(0) for c in labels])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True) + 1e-12
    pred = labels[(z[test] @ cent.T).argmax(1)]
    return float((pred == y[test]).mean())


def _scorer(
    model: Pretrainer,
    cfg: Any,
    data: dict[str, np.ndarray],
    rows: np.ndarray,
    img: np.ndarray,
    txt: np.ndarray,
) -> CrossScorer:
    """The run's ITM scorer over ``rows``; residual runs get the bi-encoder vectors of those rows."""
    joint = (img[rows], txt[rows]) if cfg.residual else None
    return CrossScorer(model, data["tokens"][rows], data["patches"][rows], joint=joint)


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

    model, cfg = load_pretrain_run(args.runs[0])
    data = ensure_data(cfg)
    test, train = np.flatnonzero(~data["is_train"]), np.flatnonzero(data["is_train"])
    emb = EmbeddingSet.load(args.embeddings, verify=False)
    pos = {pid: i for i, pid in enumerate(emb.ids)}
    rows = np.array([pos[str(i)] for i in data["ids"]])
    img, txt, fused = (emb.vectors[s][rows] for s in ("joint-image", "joint-text", "joint-fused"))
    groups = data["sub"][test]
    kw: dict[str, Any] = dict(n_queries=args.queries, draws=1, seed=0, groups=groups)
    bi = dot_score_fn(img[test], txt[test])
    out: dict[str, Any] = {
        "bi_encoder_full_protocol": _short(sample100(img[test], txt[test], groups, n_queries=1000, draws=5)),
        "bi_encoder": _short(sample100(img[test], txt[test], **kw)),
        "bi_encoder_cross_queries": _short(
            sample100(img[test], txt[test], **(kw | {"n_queries": args.cross_queries}))
        ),
        "runs": {},
    }
    for n, run in enumerate(args.runs):
        model, rcfg = load_pretrain_run(run)
        scorer = _scorer(model, rcfg, data, test, img, txt)
        res: dict[str, Any] = {"config": {"tasks": list(rcfg.tasks), "masking": rcfg.masking,
                                          "weighting": rcfg.weighting, "residual": rcfg.residual,
                                          "hard_negatives": rcfg.train.hard_negatives},
                               "train": json.loads((Path(run) / "metrics.json").read_text())}  # fmt: skip
        history = res["train"].pop("history", None) or [{}]
        res["train"]["last_epoch_loss"] = {k: round(v, 4) for k, v in history[-1].get("loss", {}).items()}
        for k in args.rerank_k if n == 0 else args.rerank_k[:1]:  # ablation runs: the first K only
            t0 = time.perf_counter()
            res[f"rerank_k{k}"] = _short(
                sample100(img[test], txt[test], score_fn=rerank_score_fn(bi, scorer, k), **kw)
            )
            res[f"rerank_k{k}"]["seconds"] = round(time.perf_counter() - t0, 1)
        if n == 0:  # the cross-encoder alone scores 101 pairs per query: main run only
            t0 = time.perf_counter()
            ckw = kw | {"n_queries": args.cross_queries}
            res["cross_alone"] = _short(sample100(img[test], txt[test], score_fn=scorer, **ckw))
            res["cross_alone"]["seconds"] = round(time.perf_counter() - t0, 1)
        res["mlm_acc_test"] = round(mlm_accuracy(model, data["tokens"][test], data["patches"][test]), 4)
        feats = cls_features(model, data["tokens"], data["patches"])
        res["cls_centroid_acc"] = {level: round(centroid_accuracy(feats, data[level], train, test), 4)
                                   for level in ("sub", "art")}  # fmt: skip
        out["runs"][Path(run).name] = res
        logging.info("%s: %s", run, {k: v for k, v in res.items() if k != "train"})
    model, cfg = load_pretrain_run(args.runs[0])
    scorer = _scorer(model, cfg, data, test, img, txt)
    out["latency"] = [rerank_latency(scorer, k) for k in args.latency_k]
    cls = cls_features(model, data["tokens"], data["patches"])
    out["categories"] = {}
    for level in ("sub", "art"):
        y = data[level]
        out["categories"][level] = {
            "cross_cls": linear_probe(cls[train], y[train], cls[test], y[test]),
            "joint_fused": linear_probe(fused[train], y[train], fused[test], y[test]),
        }
    out["meta"] = {
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "n_test_products": len(test),
        "n_train_products": len(train),
        "machine": f"{platform.processor() or platform.machine()}, shared with other jobs, torch threads 1",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(args.out, out)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
