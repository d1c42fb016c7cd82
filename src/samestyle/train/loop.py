"""The training loop: named loss terms, weighting, checkpoints, resume, early stopping.

The loop knows nothing of the term names: the contrastive unit returns ``dict[str, Tensor]``, the
weighting sums them, and the loop logs whatever comes back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from samestyle.errors import ConfigError
from samestyle.eval.protocols import sample100
from samestyle.fsio import atomic_path
from samestyle.losses.category import CategoryHeads
from samestyle.losses.unit import ContrastiveUnit, Embeddings
from samestyle.losses.weighting import Weighting
from samestyle.models.joint import JointModel, JointOutput
from samestyle.pipeline.joint import project
from samestyle.train.data import TrainData, pair_batches
from samestyle.train.query_views import check_query_views

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation. ``feature_dropout`` perturbs the anchor side's input features (an augmented view).

    ``query_view_prob`` > 0 replaces each anchor row's text, with that probability, by one of its
    ``query_views`` query views (1..``query_view_words`` words of its own title; ``train/query_views.py``).
    """

    seed: int = 0
    epochs: int = 40
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    patience: int = 6
    feature_dropout: float = 0.1
    hard_label: str | None = None
    threads: int = 1  # one intra-op thread: robust when other processes share the 2 cores
    max_minutes: float = 30.0
    val_queries: int = 1000
    val_label: str = "category2"
    grad_clip: float = 5.0
    query_view_prob: float = 0.0  # 0 = off (the default recipe)
    query_views: int = 3  # views per training product
    query_view_words: int = 3  # words per view at most


@dataclass
class TrainState:
    epoch: int = 0
    step: int = 0
    best: float = -math.inf
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)


def validate(model: JointModel, data: TrainData, cfg: TrainConfig) -> dict[str, float]:
    """Sample-100 image<->text on the validation products (one draw, fixed seed)."""
    keep = data.image_present.numpy()
    out = project(model, data.image.numpy(), data.text.numpy(), keep)
    labels = data.labels.get(cfg.val_label, np.zeros(len(data), dtype=str))[keep]
    return sample100(
        out["image"][keep],
        out["text"][keep],
        labels,
        n_queries=min(cfg.val_queries, int(keep.sum())),
        draws=1,
        seed=cfg.seed,
    )


class Trainer:
    """Runs epochs over pair batches; saves ``checkpoint.pt`` each epoch and the best via ``on_best``."""

    def __init__(
        self,
        model: JointModel,
        unit: ContrastiveUnit,
        weighting: Weighting,
        cfg: TrainConfig,
        run_dir: Path,
        on_best: Callable[[JointModel, dict[str, float]], None],
        category: CategoryHeads | None = None,
    ) -> None:
        self.model, self.unit, self.weighting, self.cfg = model, unit, weighting, cfg
        self.run_dir, self.on_best = run_dir, on_best
        self.category = category  # supervised category terms (``[category]``), trained with the model
        check_query_views(cfg, "finetune" if model.has_text_tower else "pooled")
        self._targets: dict[tuple[int, str], tuple[np.ndarray, torch.Tensor]] = {}
        tower_params = {id(p) for p in model.image_tower.parameters()}
        text_params = {id(p) for p in model.text_tower.parameters()}
        params = [
            p
            for m in (model, unit, weighting, *([category] if category is not None else []))
            for p in m.parameters()
            if p.requires_grad and id(p) not in tower_params | text_params
        ]
        groups: list[dict[str, Any]] = [{"params": params, "lr_scale": 1.0}]
        if tower_params:  # pretrained tower weights learn slower (their own lr_scale)
            from samestyle.models.towers import tower_param_groups

            tower_cfg = getattr(model.image_tower, "cfg", None)
            groups += tower_param_groups(model.image_tower, cfg.lr, tower_cfg) if tower_cfg else []
        if text_params:
            from samestyle.models.text_towers import text_tower_param_groups

            text_cfg = getattr(model.text_tower, "cfg", None)
            groups += text_tower_param_groups(model.text_tower, cfg.lr, text_cfg) if text_cfg else []
        self.opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.state = TrainState()
        self.gen = torch.Generator().manual_seed(cfg.seed)

    def _lr(self, steps_per_epoch: int) -> float:
        warm = max(1, int(self.cfg.warmup_epochs * steps_per_epoch))
        total = max(warm + 1, self.cfg.epochs * steps_per_epoch)
        s = self.state.step
        if s < warm:
            return self.cfg.lr * (s + 1) / warm
        return self.cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / (total - warm))))

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        p = self.cfg.feature_dropout
        return nn.functional.dropout(x, p) if p > 0 else x

    def _view(self, data: TrainData, a: torch.Tensor, pa: torch.Tensor) -> JointOutput:
        """The anchor side's augmented view: feature dropout on the inputs, or, behind a text tower (whose
        input is cached hidden states and a mask), on the text tower's output."""
        image = self._augment(data.image[a])
        if self.model.has_text_tower:
            return self.model(image, data.text[a], pa, text_dropout=self.cfg.feature_dropout)
        return self.model(image, self._augment(self._anchor_text(data, a)), pa)

    def _anchor_text(self, data: TrainData, a: torch.Tensor) -> torch.Tensor:
        """The anchor rows' text vectors, each replaced with probability ``query_view_prob`` by one of its
        query views (drawn from ``self.gen``, which checkpoints save; nothing is drawn at probability 0)."""
        p = self.cfg.query_view_prob
        if p <= 0:
            return data.text[a]
        if data.query_views is None:
            raise ConfigError(
                f"train.query_view_prob is {p} but the training data has no query views "
                "(train_run builds them; set train.query_view_prob = 0 here)"
            )
        swap = torch.rand(len(a), generator=self.gen) < p
        pick = torch.randint(data.query_views.shape[1], (len(a),), generator=self.gen)
        return torch.where(swap[:, None], data.query_views[a, pick], data.text[a])

    def _step(self, data: TrainData, rows: torch.Tensor, steps_per_epoch: int) -> dict[str, float]:
        a, p = data.pairs[rows, 0], data.pairs[rows, 1]
        pa, pp = data.image_present[a], data.image_present[p]
        anchor = self._view(data, a, pa)
        positive = self.model(data.image[p], data.text[p], pp)
        aug = None
        if self.unit.config.regularizers:
            aug = Embeddings.of(self._view(data, a, pa), present={"image": pa})
        terms = self.unit(
            Embeddings.of(anchor, present={"image": pa}),
            Embeddings.of(positive, present={"image": pp}),
            data.groups[a],
            anchor_aug=aug,
        )
        if self.category is not None:
            outputs = {"image": anchor.image, "text": anchor.text, "fused": anchor.fused}
            terms.update(self.category(outputs, self._category_targets(data, a), pa))
        total, weights = self.weighting(terms)
        for group in self.opt.param_groups:
            group["lr"] = self._lr(steps_per_epoch) * group.get("lr_scale", 1.0)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.state.step += 1
        logged = {k: float(v.detach()) for k, v in terms.items()}
        logged.update({f"w/{k}": float(v) for k, v in weights.items()})
        logged["loss"] = float(total.detach())
        return logged

    def _category_targets(self, data: TrainData, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Class indices of ``rows`` for each supervised level (the label arrays are indexed once)."""
        assert self.category is not None
        out = {}
        for level in self.category.classes:
            if level not in data.labels:
                raise ConfigError(f"category level {level!r} is not a label level: {sorted(data.labels)}")
            labels = data.labels[level]
            key = (id(labels), level)
            if key not in self._targets:  # the entry keeps the array alive, so its id() stays its own
                self._targets[key] = (labels, self.category.targets(labels, level))
            out[level] = self._targets[key][1][rows]
        return out

    def train_epoch(
        self, train: TrainData, hard_label: str | None = None, progress: bool = False
    ) -> dict[str, float]:
        """One pass of training steps over ``train``'s pairs (``cfg.batch_size`` a batch); returns the
        mean of each logged value. Does not validate, checkpoint or advance ``state.epoch``."""
        self.model.train()
        batches = pair_batches(train, self.cfg.batch_size, self.gen, hard_label)
        sums: dict[str, float] = {}
        bar = tqdm(
            batches,
            desc=f"epoch {self.state.epoch + 1}/{self.cfg.epochs}",
            disable=not progress,
            leave=False,
            unit="batch",
        )
        for rows in bar:
            for k, v in self._step(train, rows, len(batches)).items():
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix(loss=f"{sums['loss'] / (bar.n + 1):.3f}")
        return {k: v / max(1, len(batches)) for k, v in sums.items()}

    def fit(self, train: TrainData, val: TrainData, progress: bool = True) -> TrainState:
        torch.set_num_threads(self.cfg.threads)
        start = time.perf_counter()
        # epochs since the best one: recomputed from the state, so a resumed run stops where an
        # uninterrupted one would (and a run that had stopped early stays stopped)
        bad_epochs = self.state.epoch - self.state.best_epoch if self.state.best_epoch > 0 else 0
        stopped = self.state.epoch > 0 and bad_epochs >= self.cfg.patience
        while self.state.epoch < self.cfg.epochs and not stopped:
            logged = self.train_epoch(train, self.cfg.hard_label, progress)
            metrics = validate(self.model, val, self.cfg)
            record = {
                "epoch": self.state.epoch + 1,
                "seconds": round(time.perf_counter() - start, 1),
                **logged,
                **{f"val/{k}": v for k, v in metrics.items()},
            }
            self.state.history.append(record)
            self.state.epoch += 1
            log.info(
                "epoch %d: loss %.4f val sum_r %.4f",
                self.state.epoch,
                record.get("loss", 0.0),
                metrics["sum_r"],
            )
            if metrics["sum_r"] > self.state.best:
                self.state.best, self.state.best_epoch, bad_epochs = metrics["sum_r"], self.state.epoch, 0
                self.on_best(self.model, metrics)
            else:
                bad_epochs += 1
            self.save_checkpoint()
            if bad_epochs >= self.cfg.patience:
                log.info("early stop: no val improvement for %d epochs", bad_epochs)
                break
            if (time.perf_counter() - start) / 60 > self.cfg.max_minutes:
                log.warning("stopping: time budget of %.1f min reached", self.cfg.max_minutes)
                break
        return self.state

    def save_checkpoint(self) -> None:
        state = {
            "model": self.model.state_dict(),
            "unit": self.unit.state_dict(),
            "weighting": self.weighting.state_dict(),
            "category": self.category.state_dict() if self.category is not None else None,
            "opt": self.opt.state_dict(),
            "state": self.state.__dict__,
            "gen": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),  # feature dropout draws from it: resume must continue it
        }
        with atomic_path(self.run_dir / "checkpoint.pt") as tmp:
            torch.save(state, tmp)

    def load_checkpoint(self) -> bool:
        path = self.run_dir / "checkpoint.pt"
        if not path.exists():
            return False
        ckpt = torch.load(path, weights_only=False)
        self.model.load_state_dict(ckpt["model"])
        self.unit.load_state_dict(ckpt["unit"])
        self.weighting.load_state_dict(ckpt["weighting"])
        if self.category is not None and ckpt.get("category") is not None:
            self.category.load_state_dict(ckpt["category"])
        self.opt.load_state_dict(ckpt["opt"])
        self.state = TrainState(**ckpt["state"])
        self.gen.set_state(ckpt["gen"])
        if "torch_rng" in ckpt:  # checkpoints written before it was saved resume with a fresh stream
            torch.set_rng_state(ckpt["torch_rng"])
        return True
