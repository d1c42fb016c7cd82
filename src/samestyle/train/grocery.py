"""Train the unified joint model on the grocery groups: each train shelf photo -> its catalogue product.

Issue B's "grocery groups as extra supervision". The model, losses and training step are those of
``samestyle train`` (:class:`~samestyle.models.joint.JointModel`, :class:`~samestyle.losses.ContrastiveUnit`,
:meth:`samestyle.train.loop.Trainer.train_epoch`); only the data and the model-selection metric differ.

- **Rows**: the 81 catalogue products (iconic image, description text) and the train shelf photos. A photo
  has no text of its own. ``photo_text = "name"`` gives it its class name, the same label-derived text
  the protocol's text queries and its image+text query use (:mod:`samestyle.eval.grocery`), so the
  text rows become in-sample for this model. ``photo_text = "none"`` fills the photo's text slot with
  zeros and keeps only the loss pairs whose anchor side is the image (``image-image``,
  ``image-text``, ``image-fused``): the photo's text is then never used, and class names are never seen.
- **Pairs**: (photo, the product of its fine class). A photo is never paired with another product. With
  ``product_self_pairs`` each product is also paired with itself (its iconic image <-> its description).
- **Groups** (group-aware masking): the fine class id. A product and its photos are never each other's
  negatives.
- **Model selection** on photos carved from grocery **train** (:func:`carve_split`): per class, the last
  ``ceil(val_fraction * n)`` photos in file order. Consecutive shots of a class are near duplicates, so
  a block is a harder hold-out than a random sample. A class with one photo keeps it in train. The
  metric is the mean MRR over the protocol's seven rows
  (:func:`samestyle.eval.grocery_joint.model_table`) on those photos against the 81 products. The
  official val photos, the test set of the table, are never read here. ``refit = true`` then retrains
  from scratch (same seed and schedule) on all train photos for the selected number of epochs.
- **Variants**: from scratch; ``init_run`` (fine-tune a ``samestyle train`` run, e.g. the Myntra default);
  ``myntra`` (a Myntra ``RunConfig`` TOML whose train split is trained on together with the grocery rows).

A run folder has the layout of ``samestyle train``: ``config.toml`` (a ``RunConfig``, so
:func:`~samestyle.train.run.load_run` works), ``model.safetensors`` (best epoch) and ``metrics.json``.
It also holds ``grocery.toml`` (this config) and ``split.json`` (carved photo paths). There is no
``--resume``: a run takes seconds (Myntra + grocery together: minutes).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samestyle.config import dump_toml, load_config
from samestyle.errors import ConfigError, SamestyleError
from samestyle.eval.grocery import GroceryFeatures
from samestyle.eval.grocery_joint import model_table
from samestyle.fsio import write_json, write_text
from samestyle.losses.unit import ContrastiveConfig, ContrastiveUnit, parse_pair
from samestyle.models.joint import JointConfig, JointModel
from samestyle.train.data import TrainData
from samestyle.train.grocery_data import (
    carve_split,
    concat_train_data,
    grocery_train_data,
    myntra_data,
    photo_texts,
    split_record,
)
from samestyle.train.loop import TrainConfig, Trainer, validate
from samestyle.train.run import DataConfig, RunConfig, build_weighting, load_run, save_model

log = logging.getLogger(__name__)

PHOTO_TEXTS = ("name", "none")


@dataclass(frozen=True)
class GroceryRunConfig:
    """A grocery training run (TOML: ``configs/grocery.toml``); see the module docstring.

    ``init_run``: fine-tune this run's model (its ``[model]`` replaces ours). ``myntra``: a ``RunConfig``
    TOML whose Myntra train split joins the grocery rows. The encoders build :func:`grocery_train_run`'s
    features; they must be those of ``init_run``/``myntra``.
    """

    kind: str = "grocery"
    name: str = "grocery-unified"
    photo_text: str = "name"
    val_fraction: float = 0.15
    product_self_pairs: bool = True
    refit: bool = False
    init_run: str = ""
    myntra: str = ""
    image_encoder: str = "efficientnet-lite0"
    text_encoder: str = "minilm"
    model: JointConfig = field(default_factory=JointConfig)
    loss: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    weighting: str = "fixed"
    weights: dict[str, float] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.kind != "grocery":
            raise ConfigError(f'a grocery run needs kind = "grocery", got {self.kind!r}')
        if self.photo_text not in PHOTO_TEXTS:
            raise ConfigError(f"photo_text {self.photo_text!r} is unknown; use one of {PHOTO_TEXTS}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")


def effective_loss(cfg: GroceryRunConfig) -> ContrastiveConfig:
    """With ``photo_text = "none"``, only cross pairs with the image as anchor: ``x-image`` becomes
    ``image-x`` (photo image vs product ``x``), other pairs with a text or fused anchor are dropped."""
    if cfg.photo_text == "name":
        return cfg.loss
    keep: list[str] = []
    for pair in cfg.loss.pairs:
        within, a, b = parse_pair(pair)
        if within or (a.value != "image" and b.value != "image"):
            continue
        name = pair if a.value == "image" else f"image-{a.value}"
        if name not in keep:
            keep.append(name)
    if not keep:
        raise ConfigError(f'photo_text = "none" needs loss pairs with an image side, got {cfg.loss.pairs}')
    log.info('photo_text = "none": loss pairs %s (from %s)', keep, cfg.loss.pairs)
    return replace(cfg.loss, pairs=tuple(keep))


def selection_table(model: JointModel, f: GroceryFeatures, rows: np.ndarray) -> dict[str, dict[str, float]]:
    """The protocol's rows on train photos ``rows`` (the carved model-selection photos) vs the products."""
    assert f.train_img is not None and f.train_groups is not None
    groups = f.train_groups[rows]
    return model_table(
        model,
        f.train_img[rows],
        photo_texts(f, groups, "name"),
        groups,
        f.gal_img,
        f.gal_txt,
        f.gallery_groups,
    )


def _initial_model(
    cfg: GroceryRunConfig, f: GroceryFeatures
) -> tuple[JointModel, JointConfig, RunConfig | None]:
    dims = {"image_dim": f.gal_img.shape[1], "text_dim": f.gal_txt.shape[1]}
    if not cfg.init_run:
        model_cfg = replace(cfg.model, **dims)
        return JointModel(model_cfg), model_cfg, None
    model, init_cfg = load_run(cfg.init_run)
    if init_cfg.tower.kind != "pooled" or getattr(model, "has_text_tower", False):
        raise ConfigError(
            f"init_run {cfg.init_run}: only runs on pooled image and text vectors (no image or text "
            "tower) can be fine-tuned on grocery photos"
        )
    got = {"image_dim": init_cfg.model.image_dim, "text_dim": init_cfg.model.text_dim}
    if got != dims:
        raise ConfigError(f"init_run {cfg.init_run} expects features {got}, the grocery features are {dims}")
    return model, init_cfg.model, init_cfg


def _epoch(trainer: Trainer, data: TrainData) -> dict[str, float]:
    """One epoch of ``samestyle train``'s steps over ``data``; returns the mean of each logged value."""
    logged = trainer.train_epoch(data)
    trainer.state.epoch += 1  # the learning-rate schedule reads it
    return logged


def train_grocery(
    cfg: GroceryRunConfig, run_dir: str | Path, features: GroceryFeatures, myntra_check: bool = True
) -> dict[str, Any]:
    """Train on ``features``' train photos and write the run folder; returns ``metrics.json``'s content.

    ``features`` must hold the train photos (``grocery_features(..., include_train=True)``); its val
    photos are not read. With ``cfg.refit``, the saved model is retrained from the start on all train
    photos (carved ones included) for the selected number of epochs. ``myntra_check``: with
    ``init_run`` or ``myntra``, also report the sample-100 SumR on the Myntra run's val split (before
    and after), i.e. what grocery training costs on Myntra.
    """
    f = features
    if f.train_img is None or f.train_groups is None:
        raise SamestyleError("grocery training needs the train photos: grocery_features(include_train=True)")
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    tr, va = carve_split(f.train_groups, cfg.val_fraction)
    myntra_cfg = load_config(RunConfig, cfg.myntra) if cfg.myntra else None
    if not cfg.myntra and cfg.init_run:
        myntra_cfg = _initial_model(cfg, f)[2]
    where = myntra_cfg.data.catalog if myntra_cfg is not None else ""
    myntra_train, myntra_val = None, None
    if cfg.myntra or (myntra_check and bool(where) and Path(where).exists()):
        assert myntra_cfg is not None
        myntra_train, myntra_val = myntra_data(myntra_cfg, with_train=bool(cfg.myntra))

    photo_img, photo_groups = f.train_img, f.train_groups

    def data_of(rows: np.ndarray) -> TrainData:
        g, txt = photo_groups[rows], photo_texts(f, photo_groups[rows], cfg.photo_text)
        own = grocery_train_data(
            f.gal_img, f.gal_txt, f.gallery_groups, photo_img[rows], txt, g, cfg.product_self_pairs
        )
        return own if myntra_train is None else concat_train_data(myntra_train, own)

    def fresh() -> tuple[JointModel, Trainer, RunConfig]:
        torch.manual_seed(cfg.train.seed)
        model, model_cfg, _ = _initial_model(cfg, f)
        data = myntra_cfg.data if cfg.myntra and myntra_cfg is not None else DataConfig()
        run_cfg = RunConfig(
            name=cfg.name, data=data, model=model_cfg, loss=effective_loss(cfg), weighting=cfg.weighting,
            weights=cfg.weights, train=cfg.train,
        )  # fmt: skip
        unit = ContrastiveUnit(run_cfg.loss)
        weighting = build_weighting(run_cfg, unit.term_names)
        return model, Trainer(model, unit, weighting, cfg.train, run, lambda m, _: None), run_cfg

    model, trainer, run_cfg = fresh()
    write_text(run / "config.toml", dump_toml(run_cfg))
    write_text(run / "grocery.toml", dump_toml(cfg))
    write_json(run / "split.json", split_record(f.train_paths, tr, va))
    before = None
    if cfg.init_run and myntra_val is not None and myntra_cfg is not None:
        before = validate(model, myntra_val, myntra_cfg.train)["sum_r"]
    torch.set_num_threads(cfg.train.threads)
    train = data_of(tr)
    start, best, best_epoch, bad, history = time.perf_counter(), -math.inf, 0, 0, []
    for epoch in range(1, cfg.train.epochs + 1):
        logged = _epoch(trainer, train)
        table = selection_table(model, f, va)
        score = float(np.mean([m["mrr"] for m in table.values()]))
        history.append({
            "epoch": epoch, "seconds": round(time.perf_counter() - start, 1), **logged,
            "val/mean_mrr": score, **{f"val/{row}": m["mrr"] for row, m in table.items()},
        })  # fmt: skip
        log.info("grocery epoch %d: loss %.4f carved-val mean MRR %.4f", epoch, logged.get("loss", 0), score)
        if score > best:
            best, best_epoch, bad = score, epoch, 0
            save_model(model, run)
        else:
            bad += 1
        if bad >= cfg.train.patience or (time.perf_counter() - start) / 60 > cfg.train.max_minutes:
            break
    if cfg.refit:  # same seed and schedule, all train photos, the selected number of epochs
        model, trainer, _ = fresh()
        train = data_of(np.arange(len(photo_groups)))
        for _ in range(best_epoch):
            _epoch(trainer, train)
        save_model(model, run)
    metrics: dict[str, Any] = {
        "best_epoch": best_epoch,
        "best_val_mean_mrr": best,
        "epochs_run": len(history),
        "train_seconds": round(time.perf_counter() - start, 1),
        "train_photos": len(tr) + (len(va) if cfg.refit else 0),
        "val_photos": len(va),
        "train_pairs": len(train.pairs),
        "photo_text": cfg.photo_text,
        "refit": cfg.refit,
        "history": history,
    }
    if myntra_val is not None and myntra_cfg is not None:
        if before is not None:
            metrics["myntra_val_sum_r_before"] = before
        metrics["myntra_val_sum_r"] = validate(load_run(run)[0], myntra_val, myntra_cfg.train)["sum_r"]
    write_json(run / "metrics.json", metrics)
    return metrics


def grocery_train_run(
    cfg: GroceryRunConfig,
    run_dir: str | Path,
    features: GroceryFeatures | None = None,
    data_dir: str | Path | None = None,
) -> dict[str, Any]:
    """:func:`train_grocery` with the features built here when not given (``cfg``'s encoders, one thread
    per ``cfg.train.threads``; frozen image features come from the feature cache)."""
    if features is None:
        from samestyle.eval.grocery import grocery_features
        from samestyle.pipeline.encoders import build_encoders

        img, txt = build_encoders(cfg.image_encoder, cfg.text_encoder, threads=cfg.train.threads)
        if img is None or txt is None:
            raise ConfigError("grocery training needs both an image and a text encoder")
        features = grocery_features(img, txt, include_train=True, data_dir=data_dir)
    return train_grocery(cfg, run_dir, features)


__all__ = [
    "PHOTO_TEXTS",
    "GroceryRunConfig",
    "effective_loss",
    "grocery_train_run",
    "selection_table",
    "train_grocery",
]
