"""Search features on held-out Myntra: composed queries, interactive refinement, filtered-search latency.

Inputs (from the session-1 benchmark pipeline): the Myntra catalogue, its embeddings with the joint spaces
of a run (``samestyle embed --model``), that run's split (``split.json``: the held-out ``test`` and ``val``
product ids), and the full joint index for the latency rows.

- Composed queries (:mod:`samestyle.eval.composed`): 1,000 test products as queries, gallery = the test
  split's products with an image; ``alpha`` of ``sum``/``delta`` chosen on 500 val queries over the val
  gallery.
- Interactive search (:mod:`samestyle.eval.interactive`): 300 hidden test products as targets, the real
  ``SearchService`` sessions over an index of the test split's joint vectors; feedback vs paging. The
  Rocchio weights are also chosen on 150 val targets over a val-split index and reported on test.
- Filtered search: index-only latency of 300 joint text queries (test titles) on the full catalogue
  index, unfiltered vs three filters, and whether each returns exactly k hits when k exist.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_search_features.py \
        --out benchmarks/results/search_features.json
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samestyle.catalog.store import read_catalog
from samestyle.eval.composed import build_task, choose_alpha, run_composed
from samestyle.eval.interactive import TARGET_KEYS, simulate, target_attributes
from samestyle.fsio import write_json
from samestyle.index.filters import Filter
from samestyle.index.product_index import ProductIndex
from samestyle.pipeline.embeddings import EmbeddingSet
from samestyle.pipeline.encoders import build_encoders
from samestyle.pipeline.joint import project
from samestyle.search.service import SearchService
from samestyle.search.session import Rocchio
from samestyle.train.run import load_run
from samestyle.types import Product

WORK = Path(".cache/samestyle/work/myntra")
FILTERS = {
    "category=Apparel/Topwear": ["category=Apparel/Topwear"],
    "attr=baseColour:Blue": ["attr=baseColour:Blue"],
    "category=Footwear + attr=gender:Women + attr=baseColour:Black": [
        "category=Footwear",
        "attr=gender:Women",
        "attr=baseColour:Black",
    ],
}


def _rows(ids: list[str], wanted: list[str], present: np.ndarray) -> np.ndarray:
    pos = {pid: i for i, pid in enumerate(ids)}
    return np.array([pos[w] for w in wanted if w in pos and present[pos[w]]], np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/bench/default")
    ap.add_argument("--catalog", default=str(WORK / "catalog"))
    ap.add_argument("--embeddings", default=str(WORK / "emb-joint"))
    ap.add_argument("--index", default=str(WORK / "index-joint"))
    ap.add_argument("--out", default="benchmarks/results/search_features.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    start = time.perf_counter()
    catalog = read_catalog(args.catalog)
    emb = EmbeddingSet.load(args.embeddings)
    model, _ = load_run(args.run)
    split = json.loads((Path(args.run) / "split.json").read_text(encoding="utf-8"))
    _, text_encoder = build_encoders(None, "minilm", threads=1)
    assert text_encoder is not None
    products = [catalog.get(pid) for pid in emb.ids]
    has_image = emb.present["image"]
    memo: dict[str, np.ndarray] = {}

    def text_features(texts: list[str]) -> np.ndarray:
        todo = sorted({t for t in texts if t not in memo})
        if todo:
            memo.update(zip(todo, text_encoder.encode_texts(todo), strict=True))
        return np.stack([memo[t] for t in texts])

    def proj(image: np.ndarray | None, text: np.ndarray | None) -> dict[str, np.ndarray]:
        return project(model, image, text)

    results: dict[str, Any] = {}
    test_rows, val_rows = (_rows(emb.ids, split[s], has_image) for s in ("test", "val"))
    val_task = build_task(products, val_rows, val_rows, 500, seed=1)
    val_gallery = emb.vectors["joint-image"][val_rows]
    image = emb.vectors["image"]
    alphas = {
        m: choose_alpha(m, val_task, image[val_task.query_rows], val_gallery, proj, text_features)
        for m in ("sum", "delta")
    }
    task = build_task(products, test_rows, test_rows, 1000, seed=0)
    gallery = emb.vectors["joint-image"][test_rows]
    results["composed"] = run_composed(task, image[task.query_rows], gallery, proj, text_features, alphas)
    results["composed_examples"] = [
        {"query": products[r].title, "modifier": m}
        for r, m in zip(task.query_rows[:5], task.modifiers[:5], strict=True)
    ]
    logging.info("composed done: %s", {m: round(v["ndcg@10"], 4) for m, v in results["composed"].items()})

    def held_service(tmp: str, rows: np.ndarray) -> tuple[SearchService, list[Product]]:
        held = [products[r] for r in rows]
        index = ProductIndex.create(Path(tmp) / "index", held)
        for space in ("joint-image", "joint-text", "joint-fused"):
            index.add_space(space, [p.id for p in held], emb.vectors[space][rows])
        service = SearchService(index=index, text_encoder=text_encoder, model_run=str(args.run))
        service._model = model  # the run is already loaded
        return service, held

    def pick_targets(held: list[Product], n: int, seed: int) -> list[Product]:
        eligible = [p for p in held if len(target_attributes(p)) == len(TARGET_KEYS)]
        return [eligible[i] for i in np.random.default_rng(seed).choice(len(eligible), n, replace=False)]

    with tempfile.TemporaryDirectory() as tmp:
        service, held = held_service(tmp, val_rows)
        targets = pick_targets(held, 150, 1)
        tuning = {}
        for b, c in ((0.8, 0.3), (0.8, 0.0), (1.5, 0.3), (1.5, 0.0), (3.0, 0.3), (3.0, 0.0)):
            service.rocchio = Rocchio(1.0, b, c)
            tuning[f"b={b},c={c}"] = simulate(service, targets, feedback=True)
        best = max(
            tuning, key=lambda name: sum(v for k, v in tuning[name].items() if k.startswith("success"))
        )
        results["interactive_tuning_val"] = tuning | {"chosen": best}
    b, c = (float(part.split("=")[1]) for part in best.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        service, held = held_service(tmp, test_rows)
        targets = pick_targets(held, 300, 0)
        results["interactive"] = {}
        for name, rocchio in {
            "feedback (default Rocchio)": Rocchio(),
            f"feedback (val-chosen {best})": Rocchio(1.0, b, c),
        }.items():
            service.rocchio = rocchio
            results["interactive"][name] = simulate(service, targets, feedback=True)
        results["interactive"]["paging (no feedback)"] = simulate(service, targets, feedback=False)
    logging.info("interactive done: %s", results["interactive"])

    full = ProductIndex.open(args.index)
    queries = proj(None, text_features([products[r].title for r in test_rows[:300]]))["text"]
    latency: dict[str, Any] = {}
    for name, specs in {"unfiltered": [], **FILTERS}.items():
        flt = Filter.parse(specs) if specs else None
        allowed = full.metadata.select(flt)
        n_allowed = len(full.space("joint-image")) if allowed is None else len(allowed)
        times, exact = [], 0
        for q in queries:
            t0 = time.perf_counter()
            hits = full.search("joint-image", q[None], 10, filter=flt, with_products=False)[0]
            times.append((time.perf_counter() - t0) * 1000)
            exact += len(hits) == min(10, n_allowed)
        latency[name] = {
            "p50_ms": float(np.median(times)),
            "p99_ms": float(np.percentile(times, 99)),
            "allowed_products": n_allowed,
            "exactly_k_share": exact / len(queries),
        }
    results["filtered_latency"] = latency
    write_json(args.out, results)
    print(json.dumps(results, indent=2))
    print(f"written to {args.out} in {time.perf_counter() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main()
