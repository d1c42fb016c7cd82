"""Glue for ``samestyle eval``: load artifacts, build the method, run the Myntra suite (or, for
cross-encoder runs, ``pretrain.evaluate`` on their held-out subset)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.catalog.store import read_catalog
from samestyle.errors import ConfigError
from samestyle.eval.methods import CCAMethod, FrozenMethod, JointMethod, Method
from samestyle.eval.suites import PROTOCOLS, MyntraContext, evaluate
from samestyle.pipeline.embeddings import EmbeddingSet


def myntra_context(
    catalog_dir: str | Path, emb_dir: str | Path, split: str = "myntra", kagl_restricted: bool = False
) -> MyntraContext:
    from samestyle.datasets.kagl import load_kagl
    from samestyle.models import TEXT_ENCODERS
    from samestyle.train.run import load_split

    catalog = read_catalog(catalog_dir)
    emb = EmbeddingSet.load(emb_dir)
    key = emb.meta.get("encoder_keys", {}).get("text", "minilm")
    encoder = TEXT_ENCODERS.build(key)
    return MyntraContext(
        catalog, emb, load_split(split, catalog), load_kagl(), encoder.encode_texts, kagl_restricted
    )


def build_method(kind: str, ctx: MyntraContext, run_dir: str | Path | None = None) -> Method:
    if kind == "frozen":
        return FrozenMethod(ctx.emb)
    if kind == "cca":
        return CCAMethod(ctx.emb, np.asarray(ctx.rows["train"]))
    if run_dir is None:
        raise ConfigError("--method run needs --run RUN_DIR (a 'samestyle train' output folder)")
    return JointMethod(ctx.emb, Path(run_dir), ctx.catalog)


def run_myntra_eval(
    catalog_dir: str | Path,
    emb_dir: str | Path,
    method: str,
    run_dir: str | Path | None = None,
    split: str = "myntra",
    protocols: Sequence[str] = PROTOCOLS,
    kagl_restricted: bool = False,
) -> dict[str, dict[str, float]]:
    """Score ``method`` on the Myntra suite; ``kagl_restricted``: KAGL only on the queries and judged
    products of this catalogue (for a sub-catalogue; see ``eval.kagl.restrict_qrels``)."""
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ConfigError(f"unknown protocol '{unknown[0]}' (known: {', '.join(PROTOCOLS)})")
    ctx = myntra_context(catalog_dir, emb_dir, split, kagl_restricted)
    return evaluate(build_method(method, ctx, run_dir), ctx, protocols)


def run_cross_eval(
    runs: Sequence[str | Path],
    embeddings: str | Path | None = None,
    rerank_k: Sequence[int] = (10,),
    queries: int = 300,
    cross_queries: int = 100,
    threads: int = 1,
    draws: int = 1,
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Report rows and meta of ``pretrain.evaluate.evaluate_cross_run`` for each run (rows prefixed by
    the run's folder name when there are several); ``embeddings`` default: each run's joint vectors."""
    import platform
    import time

    import torch

    from samestyle.pretrain.evaluate import CrossEvalOptions, evaluate_cross_run, report_rows

    if not runs:
        raise ConfigError("--cross-run needs at least one run folder")
    if any(k < 1 for k in rerank_k) or queries < 1 or cross_queries < 0 or draws < 1:
        raise ConfigError("--rerank K, --queries and --draws must be >= 1, --cross-queries >= 0")
    torch.set_num_threads(threads)
    opts = CrossEvalOptions(
        queries=queries, cross_queries=cross_queries, rerank_k=tuple(rerank_k), draws=draws
    )
    rows: dict[str, dict[str, float]] = {}
    meta: dict[str, Any] = {"protocol": "cross-encoder on the run's held-out subset (pretrain.evaluate)"}
    for run in runs:
        res = evaluate_cross_run(run, embeddings, opts)
        name = Path(run).name
        rows |= report_rows(res, prefix=name if len(runs) > 1 else "")
        c = res["config"]
        meta[f"run {name}"] = (
            f"{run}: tasks {','.join(c['tasks'])}, residual {c['residual']}, late {c['late']}, "
            f"init_from '{c['init_from']}'"
        )
        meta[f"embeddings {name}"] = res["embeddings"]
        meta["test / train products"] = f"{res['n_test_products']} / {res['n_train_products']}"
    meta |= {"queries": queries, "cross_queries": cross_queries, "draws": draws, "rerank": list(rerank_k),
             "machine": f"{platform.machine()}, torch threads {threads}",
             "date": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    return rows, meta
