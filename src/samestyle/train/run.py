"""A training run: config in, ``runs/<name>/{config.toml, model.safetensors, metrics.json}`` out.

Loading a run needs no flags: ``load_run(run_dir)`` reads ``config.toml`` and rebuilds the model, its
image tower (``[tower]``) and text tower (``[text_tower]``) included; a run written before a section
existed gets that section's defaults (the pooled identity towers).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file, save_file

from samestyle.catalog.store import Catalog, read_catalog
from samestyle.config import dump_toml, from_dict, to_dict
from samestyle.errors import ArtifactError, ConfigError
from samestyle.fsio import atomic_path, read_json, write_json, write_text
from samestyle.losses.category import PREFIX, CategoryConfig, CategoryHeads, head_tensors, write_classes
from samestyle.losses.unit import ContrastiveConfig, ContrastiveUnit
from samestyle.losses.weighting import WEIGHTINGS, FixedWeighting, Weighting
from samestyle.models.joint import JointConfig, JointModel
from samestyle.models.text_towers import MINILM_DIM, MiniLMHiddenStates, TextTowerConfig, build_text_tower
from samestyle.models.towers import TowerConfig, build_tower, tower_input_kind
from samestyle.pipeline.embeddings import EmbeddingSet
from samestyle.train.data import TrainData, build_train_data
from samestyle.train.loop import TrainConfig, Trainer
from samestyle.train.query_views import check_query_views, query_view_features

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataConfig:
    """Where the training inputs are. ``split``: "myntra" (the documented Myntra split), a JSON file
    ``{"train": [...], "val": [...], "test": [...]}``, or "hash" (by a hash of the id: 5% val, 5% test)."""

    catalog: str = ""
    embeddings: str = ""
    pairs: str | None = None
    split: str = "hash"


@dataclass(frozen=True)
class RunConfig:
    name: str = "joint"
    data: DataConfig = field(default_factory=DataConfig)
    model: JointConfig = field(default_factory=JointConfig)
    tower: TowerConfig = field(default_factory=TowerConfig)
    text_tower: TextTowerConfig = field(default_factory=TextTowerConfig)
    loss: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    weighting: str = "fixed"
    weights: dict[str, float] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    category: CategoryConfig = field(default_factory=CategoryConfig)


def load_split(spec: str, catalog: Catalog) -> dict[str, list[str]]:
    """Resolve ``DataConfig.split`` into id lists (only ids in the catalogue are kept)."""
    if spec == "myntra":
        from samestyle.datasets.myntra import load_myntra_split

        split = load_myntra_split()
    elif spec == "hash":
        from samestyle.datasets.myntra import myntra_split

        split = myntra_split(catalog.ids, kagl_ids=())
    else:
        try:
            split = json.loads(Path(spec).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"split file {spec}: {exc}") from None
    return {k: [i for i in v if i in catalog] for k, v in split.items()}


def tower_features(tower: TowerConfig, catalog: Catalog, emb: EmbeddingSet) -> np.ndarray | None:
    """Cached tower inputs aligned with ``emb.ids`` (None for the "pooled" tower: the embeddings suffice).

    Extracted once per product into the feature cache (incremental), as float16 ``[N, C*H*W]``.
    """
    kind = tower_input_kind(tower)
    if kind == "pooled":
        return None
    from samestyle.features.activations import ActivationExtractor, activation_cache, extract_activations
    from samestyle.paths import cache_dir

    extractor = ActivationExtractor(kind)
    acts = extract_activations(
        catalog, extractor, activation_cache(cache_dir() / "features", extractor, tower.dtype)
    )
    return _aligned(acts.ids, acts.values, emb)


def _aligned(ids: list[str], values: np.ndarray, emb: EmbeddingSet) -> np.ndarray:
    """``values`` (rows = ``ids``) in ``emb.ids`` order; no copy when the orders agree (1 GB+ arrays)."""
    if ids == emb.ids:
        return values
    pos = {pid: i for i, pid in enumerate(ids)}
    return np.asarray(values[np.array([pos[i] for i in emb.ids])])


def text_tower_features(
    tower: TextTowerConfig,
    catalog: Catalog,
    emb: EmbeddingSet,
    progress: bool = True,
    lower: MiniLMHiddenStates | None = None,
) -> np.ndarray | None:
    """Cached text tower inputs aligned with ``emb.ids`` (None for the "pooled" tower: the frozen text
    vectors suffice): MiniLM hidden states after layer ``6 - train_layers`` of every product's text,
    extracted once per (product, text) into the feature cache (incremental), as float16 ``[N, T*385]``.
    ``lower``: an already loaded ``MiniLMHiddenStates(tower)`` to extract with (loaded here when None).
    """
    if tower.kind == "pooled":
        return None
    from samestyle.features.activations import activation_cache, extract_text_hidden
    from samestyle.paths import cache_dir

    lower = lower if lower is not None else MiniLMHiddenStates(tower)
    cache = activation_cache(cache_dir() / "features", lower, tower.dtype)
    hidden = extract_text_hidden(catalog, lower, cache, progress=progress)
    return _aligned(hidden.ids, hidden.values, emb)


def build_model(cfg: RunConfig) -> JointModel:
    tower = None if cfg.tower.kind == "pooled" else build_tower(cfg.tower)
    text_tower = None
    if cfg.text_tower.kind != "pooled":
        if cfg.model.text_dim != MINILM_DIM:
            raise ConfigError(
                f"model.text_dim is {cfg.model.text_dim}, but the text tower outputs {MINILM_DIM}-d MiniLM "
                f'vectors: set model.text_dim = {MINILM_DIM} (or text_tower.kind = "pooled")'
            )
        text_tower = build_text_tower(cfg.text_tower)
    return JointModel(cfg.model, image_tower=tower, text_tower=text_tower)


def build_weighting(cfg: RunConfig, names: tuple[str, ...]) -> Weighting:
    if cfg.weighting == "fixed":
        return FixedWeighting(cfg.weights)
    return WEIGHTINGS.build(cfg.weighting, names=names)


def read_pairs(path: str | None) -> list[tuple[str, str, float]]:
    if not path:
        return []
    table = pq.read_table(path, columns=["anchor_id", "positive_id", "weight"]).to_pydict()
    return list(zip(table["anchor_id"], table["positive_id"], table["weight"], strict=True))


def train_run(
    cfg: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train the joint model; returns the metrics written to ``metrics.json``."""
    check_query_views(cfg.train, cfg.text_tower.kind)  # before any loading: a bad option fails fast
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.train.seed)
    torch.set_num_threads(cfg.train.threads)  # also for the text tower's hidden-state extraction
    catalog = read_catalog(cfg.data.catalog)
    emb = EmbeddingSet.load(cfg.data.embeddings)
    split = load_split(cfg.data.split, catalog)
    for part, need in (("train", 2), ("val", 1)):
        if len(split.get(part, [])) < need:  # an empty or tiny catalogue: say so, do not crash later
            raise ConfigError(
                f"the {part} split of {cfg.data.catalog} has {len(split.get(part, []))} products; training "
                f"needs at least {need} (use a bigger catalogue, or set data.split to a JSON file with "
                "'train' and 'val' id lists)"
            )
    pairs = read_pairs(cfg.data.pairs)
    model = build_model(cfg)  # before the extraction: a bad [text_tower] / [model] fails fast
    feats = tower_features(cfg.tower, catalog, emb)
    text_feats = text_tower_features(cfg.text_tower, catalog, emb, progress=progress)
    train = build_train_data(
        catalog, emb, split["train"], pairs, image_features=feats, text_features=text_feats
    )
    val = build_train_data(catalog, emb, split["val"], image_features=feats, text_features=text_feats)
    del feats, text_feats
    if cfg.train.query_view_prob > 0:  # train products only: validation never sees views
        views = query_view_features(cfg.train, catalog, emb, train.ids)
        train.query_views = torch.from_numpy(views)
    for part, data, need in (("train", train, 1), ("val", val, 2)):
        if int(data.image_present.sum()) < need:  # e.g. a catalogue whose images are all missing or broken
            raise ConfigError(
                f"the {part} split of {cfg.data.catalog} has {int(data.image_present.sum())} products with a "
                f"usable image; training an image-text model needs at least {need} (see rejects.csv)"
            )
    write_text(run / "config.toml", dump_toml(cfg))
    write_json(run / "split.json", split)  # the exact id lists: reusable as data.split = "<run>/split.json"

    unit = ContrastiveUnit(cfg.loss)
    heads = category_heads(cfg, train)
    if heads is not None:
        write_classes(heads, run)
    trainer = Trainer(
        model,
        unit,
        build_weighting(cfg, unit.term_names + (heads.term_names if heads is not None else ())),
        cfg.train,
        run,
        on_best=lambda m, metrics: save_model(m, run, heads),
        category=heads,
    )
    if resume and trainer.load_checkpoint():
        log.info("resumed %s at epoch %d", run, trainer.state.epoch)
    start = time.perf_counter()
    state = trainer.fit(train, val, progress=progress)
    metrics = {
        "best_epoch": state.best_epoch,
        "best_val_sum_r": state.best,
        "epochs_run": state.epoch,
        "train_seconds": round(time.perf_counter() - start, 1),
        "train_products": len(train),
        "train_pairs": len(train.pairs),
        "val_products": len(val),
        "history": state.history,
    }
    write_json(run / "metrics.json", metrics)
    return metrics


def category_heads(cfg: RunConfig, train: TrainData) -> CategoryHeads | None:
    """The ``[category]`` heads, their classes = the train split's distinct non-empty labels (None: off)."""
    if not cfg.category.levels:
        return None
    unknown = [lv for lv in cfg.category.levels if lv not in train.labels]
    if unknown:
        raise ConfigError(
            f"category.levels {unknown} are not label levels of {cfg.data.catalog} "
            f'(it has {sorted(train.labels)}); e.g. levels = ["category2", "category3"]'
        )
    classes = {lv: sorted(set(train.labels[lv].tolist()) - {""}) for lv in cfg.category.levels}
    return CategoryHeads(cfg.model.dim, classes, cfg.category)


def save_model(model: JointModel, run: Path, heads: CategoryHeads | None = None) -> None:
    """The best epoch's weights, with the category heads trained with them, in one file replaced whole."""
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()} | head_tensors(heads)
    with atomic_path(run / "model.safetensors") as tmp:
        save_file(tensors, str(tmp))


def load_run(run_dir: str | Path) -> tuple[JointModel, RunConfig]:
    """Rebuild the trained model of a run folder (its best epoch) in eval mode."""
    import tomllib

    run = Path(run_dir)
    for name in ("config.toml", "model.safetensors"):
        if not (run / name).exists():
            raise ArtifactError(f"{run}: no {name}; is this a finished 'samestyle train' run?")
    cfg = from_dict(RunConfig, tomllib.loads((run / "config.toml").read_text(encoding="utf-8")), str(run))
    model = build_model(cfg)
    state = load_file(str(run / "model.safetensors"))
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith(PREFIX)})  # heads: load_heads
    model.eval()
    return model, cfg


def apply_run(run_dir: str | Path, catalog: Catalog, emb: EmbeddingSet) -> EmbeddingSet:
    """Add a trained run's joint spaces to ``emb`` (its towers' inputs are extracted/cached as needed)."""
    from samestyle.pipeline.joint import add_joint_spaces

    model, cfg = load_run(run_dir)
    return add_joint_spaces(
        emb,
        model,
        run_dir,
        tower_features(cfg.tower, catalog, emb),
        text_features=text_tower_features(cfg.text_tower, catalog, emb),
    )


def run_summary(run_dir: str | Path) -> dict[str, Any]:
    return {"config": to_dict(load_run(run_dir)[1]), "metrics": read_json(Path(run_dir) / "metrics.json")}
