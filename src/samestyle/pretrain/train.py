"""``samestyle pretrain``: train the cross-encoder on the prepared subset with a multitask loss.

A run folder gets ``config.toml`` (resolved), ``model.safetensors`` (encoder + task heads, including the
frozen token table), ``metrics.json`` (per-epoch mean losses and task weights, seconds, steps).
The multitask weighting comes from ``samestyle.losses.weighting``: ``fashionbert`` (adaptive, weights
sum to one) or ``fixed`` (uniform ``1 / K``, the same total scale).

The same loop fine-tunes: ``train.init_from`` a pre-training run and ``tasks`` such as
``["itm", "category"]`` (``configs/cross_finetune.toml``, whose ``kind = "cross"`` lets
``samestyle train`` dispatch it here).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from samestyle.errors import ConfigError
from samestyle.fsio import atomic_path, write_json, write_text
from samestyle.losses.weighting import FashionBertWeighting, FixedWeighting, Weighting
from samestyle.pretrain.model import CrossConfig, CrossEncoder, Encoded
from samestyle.pretrain.tasks import TASK_NAMES, Batch, build_tasks

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainDataConfig:
    """Where the subset comes from and how it is prepared (``pretrain.prepare``)."""

    catalog: str = ".cache/samestyle/work/myntra/catalog"
    split: str = "runs/bench/default/split.json"
    joint_run: str = "runs/bench/default"
    work: str = ".cache/samestyle/work/myntra/pretrain"
    n_train: int = 6000
    n_test: int = 1500
    seed: int = 0
    pca_dim: int = 256
    max_tokens: int = 24
    joint_embeddings: str = ".cache/samestyle/work/myntra/emb-joint"
    """EmbeddingSet folder with the issue-B joint-image / joint-text vectors (residual matching,
    hard negatives); read only when one of them is on."""


@dataclass(frozen=True)
class PretrainTrainConfig:
    seed: int = 0
    epochs: int = 3
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 50
    threads: int = 1
    max_minutes: float = 15.0
    hard_negatives: float = 0.0
    """Fraction of mismatched pairs drawn from the bi-encoder's top ``hard_pool`` (``pretrain.joint``)."""
    hard_pool: int = 20
    init_from: str = ""
    """A previous ``pretrain`` run to start from (its weights of the same shape; the rest fresh)."""


@dataclass(frozen=True)
class PretrainConfig:
    kind: str = "cross"
    """Always "cross": marks a cross-encoder config, which ``samestyle train`` runs with ``pretrain_run``
    (a joint-model config has no ``kind``)."""
    name: str = "pretrain"
    tasks: tuple[str, ...] = TASK_NAMES
    masking: str = "guided"
    weighting: str = "fashionbert"
    residual: bool = False
    """Matching logit = correction + scaled bi-encoder cosine (``ImageTextMatching``)."""
    late: bool = False
    """Add the late-interaction (MaxSim over contextualised tokens and patches) matching term."""
    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    model: CrossConfig = field(default_factory=CrossConfig)
    train: PretrainTrainConfig = field(default_factory=PretrainTrainConfig)


class Pretrainer(nn.Module):
    """The encoder and its task heads (one state dict)."""

    def __init__(self, cfg: PretrainConfig, token_table: Tensor) -> None:
        super().__init__()
        if cfg.masking not in ("guided", "random"):
            raise ConfigError(f"masking must be 'guided' or 'random', got '{cfg.masking}'")
        if cfg.kind != "cross":
            raise ConfigError(f"kind must be 'cross' in a cross-encoder config, got '{cfg.kind}'")
        m = cfg.model
        self.encoder = CrossEncoder(m, token_table)
        self.tasks = build_tasks(
            cfg.tasks,
            m.width,
            m.vocab,
            m.patch_dim,
            cfg.masking == "guided",
            residual=cfg.residual,
            late=cfg.late,
            n_classes=(m.n_sub, m.n_art),
        )

    def itm_score(self, tokens: Tensor, patches: Tensor, bi: Tensor | None = None) -> Tensor:
        """Matching logits ``[N]`` of clean (uncorrupted) inputs; ``bi`` the bi-encoder cosines (residual)."""
        enc: Encoded = self.encoder(tokens, patches)
        return self.tasks["itm"].score(enc, bi, tokens == 0)  # type: ignore[operator]


def resolve_model_config(cfg: PretrainConfig, data: dict[str, np.ndarray]) -> PretrainConfig:
    """Fill the data-dependent sizes (vocabulary, patch width, title length, classes) of ``cfg.model``."""
    model = replace(
        cfg.model,
        vocab=len(data["token_table"]),
        patch_dim=int(data["patches"].shape[-1]),
        max_tokens=int(data["tokens"].shape[1]),
        n_sub=int(data["sub"].max()) + 1 if "sub" in data else 0,
        n_art=int(data["art"].max()) + 1 if "art" in data else 0,
    )
    return replace(cfg, model=model)


def build_weighting(cfg: PretrainConfig, names: list[str]) -> Weighting:
    if cfg.weighting == "fashionbert":
        return FashionBertWeighting(names)
    if cfg.weighting == "fixed":
        return FixedWeighting(default=1.0 / len(names))
    raise ConfigError(f"weighting must be 'fashionbert' or 'fixed', got '{cfg.weighting}'")


class NegativeSampler:
    """For each row, another train row of the same sub-category (a random other row when it has none)."""

    def __init__(self, groups: np.ndarray, rng: np.random.Generator) -> None:
        self.groups, self.rng = groups, rng
        self.members = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty_like(rows)
        for k, r in enumerate(rows):
            same = self.members[self.groups[r]]
            pool = same if len(same) > 1 else np.arange(len(self.groups))
            j = r
            while j == r:
                j = pool[self.rng.integers(len(pool))]
            out[k] = j
        return out


def make_batch(data: dict[str, np.ndarray], rows: np.ndarray, neg: np.ndarray) -> Batch:
    """``2B`` rows: B matching pairs, then B mismatches (first half swaps the text, second the image).

    With ``joint_img`` / ``joint_txt`` in ``data`` the batch carries each row's bi-encoder cosine; with
    ``sub`` / ``art`` each row's category labels (of its image product; ``Batch.labels``).
    """
    b = len(rows)
    half = b // 2
    txt_src = np.concatenate([rows, neg[:half], rows[half:]])
    img_src = np.concatenate([rows, rows[:half], neg[half:]])
    bi = None
    if "joint_img" in data and "joint_txt" in data:
        bi = torch.from_numpy(np.einsum("nd,nd->n", data["joint_img"][img_src], data["joint_txt"][txt_src]))
    return Batch(
        tokens=torch.from_numpy(data["tokens"][txt_src]),
        patches=torch.from_numpy(data["patches"][img_src].astype(np.float32)),
        align=torch.from_numpy(data["align"][txt_src]),
        match=torch.cat([torch.ones(b), torch.zeros(b)]),
        extra={
            k: torch.from_numpy(v[img_src].astype(np.float32))
            for k, v in data.items()
            if k.startswith("aux_")
        },
        bi=None if bi is None else bi.float(),
        labels={k: torch.from_numpy(data[k][img_src].astype(np.int64)) for k in ("sub", "art") if k in data},
    )


def train_steps(
    model: Pretrainer,
    cfg: PretrainConfig,
    data: dict[str, np.ndarray],
    train_rows: np.ndarray,
) -> dict[str, Any]:
    """Run the training loop in place; returns per-epoch mean task losses and weights."""
    t = cfg.train
    rng = np.random.default_rng(t.seed)
    gen = torch.Generator().manual_seed(t.seed)
    sampler: Any = NegativeSampler(data["sub"][train_rows], rng)
    if t.hard_negatives > 0:
        from samestyle.pretrain.joint import HardNegativeSampler, top_neighbours

        img, txt = data["joint_img"][train_rows], data["joint_txt"][train_rows]
        i2t, t2i = top_neighbours(img, txt, t.hard_pool), top_neighbours(txt, img, t.hard_pool)
        sampler = HardNegativeSampler(i2t, t2i, sampler, t.hard_negatives, rng)
    names = list(model.tasks.keys())
    weighting = build_weighting(cfg, names)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    steps_per_epoch = max(1, len(train_rows) // t.batch_size)
    total = steps_per_epoch * t.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, t.warmup_steps)) * max(0.0, 1 - s / total) + 1e-3
    )
    history: list[dict[str, Any]] = []
    start, step, stopped = time.perf_counter(), 0, False
    model.train()
    for epoch in range(t.epochs):
        perm = rng.permutation(len(train_rows))
        sums: dict[str, float] = dict.fromkeys(names, 0.0)
        wsum: dict[str, float] = dict.fromkeys(names, 0.0)
        n = 0
        for s in range(steps_per_epoch):
            local = perm[s * t.batch_size : (s + 1) * t.batch_size]
            batch = make_batch(data, train_rows[local], train_rows[sampler(local)])
            for task in model.tasks.values():
                task.corrupt(batch, gen)  # type: ignore[operator]
            enc = model.encoder(batch.tokens, batch.patches, batch.text_masked, batch.patch_masked)
            terms = {k: task.loss(enc, batch) for k, task in model.tasks.items()}  # type: ignore[operator]
            loss, weights = weighting(terms)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            for k in names:
                sums[k] += float(terms[k].detach())
                wsum[k] += weights[k]
            n, step = n + 1, step + 1
            if step % 20 == 0:
                logger.info("epoch %d step %d/%d loss %.4f %s", epoch, s + 1, steps_per_epoch, loss.item(),
                            {k: round(float(v.detach()), 3) for k, v in terms.items()})  # fmt: skip
            if time.perf_counter() - start > 60 * t.max_minutes:
                stopped = True
                break
        history.append({"epoch": epoch, "steps": n, "loss": {k: v / n for k, v in sums.items()},
                        "weights": {k: v / n for k, v in wsum.items()}})  # fmt: skip
        if stopped:
            logger.warning("stopped at the time limit (%.1f min) in epoch %d", t.max_minutes, epoch)
            break
    model.eval()
    return {"history": history, "steps": step, "train_seconds": time.perf_counter() - start,
            "stopped_at_time_limit": stopped}  # fmt: skip


def save_pretrain_run(model: Pretrainer, cfg: PretrainConfig, metrics: dict[str, Any], out: Path) -> None:
    from safetensors.torch import save_file

    from samestyle.config import dump_toml

    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_text(out / "config.toml", dump_toml(cfg))
    write_json(out / "metrics.json", metrics)


def load_pretrain_run(run: str | Path) -> tuple[Pretrainer, PretrainConfig]:
    """The trained ``Pretrainer`` (eval mode) and resolved config of a ``samestyle pretrain`` run."""
    import tomllib

    from safetensors.torch import load_file

    from samestyle.config import from_dict
    from samestyle.errors import ArtifactError

    run = Path(run)
    if not (run / "model.safetensors").exists():
        raise ArtifactError(f"{run}: no model.safetensors; is this a finished 'samestyle pretrain' run?")
    cfg = from_dict(
        PretrainConfig, tomllib.loads((run / "config.toml").read_text(encoding="utf-8")), str(run)
    )
    state = load_file(str(run / "model.safetensors"))
    model = Pretrainer(cfg, state["encoder.token_table"])
    model.load_state_dict(state)
    return model.eval(), cfg
