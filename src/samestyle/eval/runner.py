"""Glue for ``samestyle eval``: load artifacts, build the method, run the Myntra suite."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from samestyle.catalog.store import read_catalog
from samestyle.errors import ConfigError
from samestyle.eval.methods import CCAMethod, FrozenMethod, JointMethod, Method
from samestyle.eval.suites import PROTOCOLS, MyntraContext, evaluate
from samestyle.pipeline.embeddings import EmbeddingSet


def myntra_context(catalog_dir: str | Path, emb_dir: str | Path, split: str = "myntra") -> MyntraContext:
    from samestyle.datasets.kagl import load_kagl
    from samestyle.models import TEXT_ENCODERS
    from samestyle.train.run import load_split

    catalog = read_catalog(catalog_dir)
    emb = EmbeddingSet.load(emb_dir)
    key = emb.meta.get("encoder_keys", {}).get("text", "minilm")
    encoder = TEXT_ENCODERS.build(key)
    return MyntraContext(catalog, emb, load_split(split, catalog), load_kagl(), encoder.encode_texts)


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
) -> dict[str, dict[str, float]]:
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ConfigError(f"unknown protocol '{unknown[0]}' (known: {', '.join(PROTOCOLS)})")
    ctx = myntra_context(catalog_dir, emb_dir, split)
    return evaluate(build_method(method, ctx, run_dir), ctx, protocols)
