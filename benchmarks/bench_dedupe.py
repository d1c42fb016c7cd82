"""Duplicate detection: Shopee mean F1 on grocery val photo groups; pair PRF on the offer-matching splits.

Protocols and methods: :mod:`samestyle.eval.dedupe` (everything tuned on train, reported on val/valid;
baseline = one threshold on frozen features). One thread; grocery photo features come from the feature
cache after the first run.

    .venv/bin/python benchmarks/bench_dedupe.py --out benchmarks/results/dedupe.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

import numpy as np

from samestyle.datasets.matching import entity_text, entity_title, load_matching
from samestyle.eval.dedupe import MATCHING_SETS, grocery_dedupe_eval, matching_eval
from samestyle.eval.grocery import grocery_features
from samestyle.fsio import write_json
from samestyle.models.base import TextEncoder
from samestyle.pipeline.encoders import build_encoders


def _side_vectors(encoder: TextEncoder, left: list[str], right: list[str]) -> dict[str, Any]:
    pool = sorted(set(left) | set(right))
    pos = {t: i for i, t in enumerate(pool)}
    return {
        "vectors": encoder.encode_texts(pool),
        "left": np.array([pos[t] for t in left]),
        "right": np.array([pos[t] for t in right]),
    }


def matching_inputs(name: str, encoder: TextEncoder) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for split in ("train", "valid"):
        pairs = load_matching(name, split).pairs
        out[split] = {"labels": np.array([p.label for p in pairs], dtype=bool)}
        for field, fn in (("title", entity_title), ("text", entity_text)):
            out[split][field] = _side_vectors(
                encoder, [fn(p.left) for p in pairs], [fn(p.right) for p in pairs]
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/dedupe.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    start = time.perf_counter()
    img, txt = build_encoders("efficientnet-lite0", "minilm", threads=1)
    assert img is not None and txt is not None
    feats = grocery_features(img, txt, include_train=True)
    assert feats.train_img is not None and feats.train_groups is not None
    results: dict[str, Any] = {
        "grocery": grocery_dedupe_eval(
            feats.train_img, feats.train_groups, feats.photo_img, feats.query_groups
        )
    }
    for name in MATCHING_SETS:
        results[f"matching:{name}"] = matching_eval(matching_inputs(name, txt))
        logging.info("%s done", name)
    write_json(args.out, results)
    for task, rows in results.items():
        for method, r in rows.items():
            main_metric = r.get("mean_f1", r.get("f1"))
            extra = {
                k: v for k, v in r.items() if k in ("mean_precision", "mean_recall", "precision", "recall")
            }
            print(f"{task:28s} {method:14s} {main_metric:.4f} {json.dumps(extra)}")
    print(f"written to {args.out} in {time.perf_counter() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main()
