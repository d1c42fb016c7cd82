"""The seed paper's retrieval table on the Grocery Store val set: frozen features, CCA and a joint-model run.

Protocol: :mod:`samestyle.eval.grocery` (296 val shelf photos -> the 81 catalogue products; text queries
are the class names, i.e. label-derived). The joint run (default ``runs/bench/default``) was trained on
Myntra only, so its row is a zero-shot transfer to groceries. Everything runs on one thread; the frozen
image features of the photos are cached, so re-runs are quick.

    .venv/bin/python benchmarks/bench_grocery.py --run runs/bench/default \
        --out benchmarks/results/grocery.json

Writes ``{method: {row: metrics}}`` to ``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from samestyle.eval.grocery import grocery_features, render_markdown, run_grocery_eval
from samestyle.pipeline.encoders import build_encoders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/bench/default", help="a 'samestyle train' run folder")
    ap.add_argument("--out", default="benchmarks/results/grocery.json")
    ap.add_argument("--threads", type=int, default=1)
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
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(render_markdown(results))
    print(f"\nwritten to {out} in {time.perf_counter() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main()
