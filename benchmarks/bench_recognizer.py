"""Category recognition on held-out Myntra: the recogniser (title words + embedding) against its parts.

For the frozen features (image + text side by side) and for each ``--run`` (its joint-fused vectors, as
``samestyle eval`` computes them), on the fixed Myntra split:

1. every ``(dense_norm, C)`` of the grid is fitted on ``train`` and scored on ``val``;
2. the pair with the best mean val accuracy over the two levels (subCategory, articleType) is scored on
   ``test`` (the only test number reported per input);
3. references in the same run: title words alone (``dense_norm`` 0, C chosen on val the same way).

Each row also keeps the chosen model's per-class test F1 (``test_per_class``): support, predicted count,
F1, and the macro-F1 over only the classes present in the test truth.

``--attributes usage,gender`` makes every row read those catalogue attributes as words beside the title
(``models.recognizer.recognizer_text``); the row names say so.

Usage:
    .venv/bin/python benchmarks/bench_recognizer.py --catalog .cache/samestyle/work/myntra/catalog \
        --embeddings .cache/samestyle/work/myntra/emb --run runs/ttc-seed0 \
        --out benchmarks/results/recognizer.json
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.catalog.store import read_catalog
from samestyle.eval.grouping import category_scores
from samestyle.eval.metrics import per_class_f1
from samestyle.fsio import write_json
from samestyle.models.recognizer import CategoryRecognizer, RecognizerConfig
from samestyle.pipeline.embeddings import EmbeddingSet
from samestyle.pipeline.recognize import level_labels, product_texts, recognizer_inputs
from samestyle.train.run import load_split

log = logging.getLogger("bench_recognizer")
LEVELS = {"category2": "subCategory", "category3": "articleType"}


def _predict(
    rec: CategoryRecognizer, titles: np.ndarray, dense: np.ndarray | None, rows: np.ndarray
) -> dict[str, np.ndarray]:
    d = None if dense is None else dense[rows]
    return {lv: rec.predict(titles[rows].tolist(), d, lv) for lv in LEVELS}


def _truth(labels: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {lv: labels[lv][rows] for lv in LEVELS}


def _score(truth: dict[str, np.ndarray], pred: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return {lv: category_scores(truth[lv], pred[lv]) for lv in LEVELS}


def select_and_test(
    titles: np.ndarray, dense: np.ndarray | None, labels: dict[str, np.ndarray], idx: dict[str, np.ndarray],
    norms: list[float], cs: list[float], attributes: tuple[str, ...] = (),
) -> dict[str, Any]:  # fmt: skip
    """Fit the grid on train, choose on val, score the choice on test."""
    grid = []
    tr = idx["train"]
    for norm, c in itertools.product(norms, cs):
        t0 = time.perf_counter()
        inputs = "" if dense is None or norm == 0 else "image+text"
        cfg = RecognizerConfig(dense_norm=norm, C=c, inputs=inputs, attributes=attributes)
        rec = CategoryRecognizer.fit(
            titles[tr].tolist(),
            None if dense is None else dense[tr],
            _truth(labels, tr),
            cfg,
        )
        val = _score(_truth(labels, idx["val"]), _predict(rec, titles, dense, idx["val"]))
        row: dict[str, Any] = {"dense_norm": norm, "C": c, "fit_s": time.perf_counter() - t0, "val": val,
               "val_mean_acc": float(np.mean([v["acc"] for v in val.values()]))}  # fmt: skip
        log.info(
            "norm %s C %s: val %s (%.0fs)",
            norm,
            c,
            {k: round(v["acc"], 4) for k, v in val.items()},
            row["fit_s"],
        )
        grid.append((row, rec))
    best_row, best = max(grid, key=lambda g: g[0]["val_mean_acc"])
    truth, pred = _truth(labels, idx["test"]), _predict(best, titles, dense, idx["test"])
    return {"grid": [g[0] for g in grid], "chosen": {k: best_row[k] for k in ("dense_norm", "C")},
            "test": _score(truth, pred), "test_per_class": _per_class(truth, pred)}  # fmt: skip


def _per_class(truth: dict[str, np.ndarray], pred: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per level: each class's test support, predicted count and F1, and the macro-F1 over only the
    classes that occur in the test truth (the reported macro-F1 also counts classes only predicted)."""
    out: dict[str, Any] = {}
    for lv in LEVELS:
        pc = per_class_f1(truth[lv], pred[lv])
        true_classes = pc["support"] > 0
        out[lv] = {
            "macro_f1_true_classes": float(np.mean(pc["f1"][true_classes])),
            "classes_only_predicted": int((~true_classes).sum()),
            "classes": {str(c): {"support": int(n), "predicted": int(m), "f1": float(f)}
                        for c, n, m, f in zip(pc["classes"], pc["support"], pc["predicted"], pc["f1"],
                                              strict=True)},
        }  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--embeddings", required=True)
    ap.add_argument("--run", action="append", default=[], help="trained run(s): their joint-fused vectors")
    ap.add_argument("--norms", default="0.5,1,2", help="dense_norm grid (comma-separated)")
    ap.add_argument("--cs", default="0.25,0.5,1", help="C grid")
    ap.add_argument("--skip-frozen", action="store_true")
    ap.add_argument("--attributes", default="", help="catalogue attributes read as words, e.g. usage,gender")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    catalog, emb = read_catalog(args.catalog), EmbeddingSet.load(args.embeddings)
    pos = {pid: i for i, pid in enumerate(emb.ids)}
    idx = {k: np.array([pos[i] for i in v if i in pos]) for k, v in load_split("myntra", catalog).items()}
    attributes = tuple(a for a in args.attributes.split(",") if a)
    titles = np.array(product_texts(catalog, emb.ids, attributes))
    words = "title words" + (f" + attributes ({', '.join(attributes)})" if attributes else "")
    labels = {lv: level_labels(catalog, emb.ids, lv) for lv in LEVELS}
    norms, cs = [float(x) for x in args.norms.split(",")], [float(x) for x in args.cs.split(",")]
    out: dict[str, Any] = {"split": {k: len(v) for k, v in idx.items()}, "levels": LEVELS}
    out[f"{words} alone"] = select_and_test(titles, None, labels, idx, [0.0], cs, attributes)
    inputs: list[tuple[str, str | None]] = [] if args.skip_frozen else [("frozen image+text", None)]
    inputs += [(f"run {r}", r) for r in args.run]
    for name, run in inputs:
        dense = recognizer_inputs(emb, catalog, run)
        out[f"{words} + {name}"] = select_and_test(titles, dense, labels, idx, norms, cs, attributes)
        write_json(Path(args.out), out)
    write_json(Path(args.out), out)
    for key, res in out.items():
        if isinstance(res, dict) and "chosen" in res:
            print(key, res["chosen"], {LEVELS[k]: round(v["acc"], 4) for k, v in res["test"].items()})


if __name__ == "__main__":
    main()
