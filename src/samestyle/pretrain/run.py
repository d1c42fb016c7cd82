"""Library entry point of ``samestyle pretrain``: prepare (once, cached) the subset arrays, then train."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samestyle.pretrain.tasks import AUX_TASK_NAMES
from samestyle.pretrain.train import (
    PretrainConfig,
    Pretrainer,
    resolve_model_config,
    save_pretrain_run,
    train_steps,
)

logger = logging.getLogger(__name__)


def data_path(cfg: PretrainConfig) -> Path:
    """The prepared-arrays file of ``cfg.data`` (its name holds every parameter that changes it)."""
    d = cfg.data
    return Path(d.work) / f"data-n{d.n_train}-{d.n_test}-s{d.seed}-d{d.pca_dim}-t{d.max_tokens}.npz"


def ensure_data(cfg: PretrainConfig) -> dict[str, np.ndarray]:
    """Load the prepared arrays of ``cfg.data``, preparing them first when the file is missing.

    With a task of ``AUX_TASK_NAMES`` in ``cfg.tasks`` the ``aux_*`` arrays of ``pretrain.transformed``
    are merged in (computed once into ``aux-<data stem>.npz``, ~4 backbone passes per product).
    """
    from samestyle.pretrain.prepare import load_data, prepare_data

    path = data_path(cfg)
    if not path.exists():
        from samestyle.catalog.store import read_catalog
        from samestyle.pretrain.data import select_subset
        from samestyle.train.run import load_run, load_split

        d = cfg.data
        catalog = read_catalog(d.catalog)
        subset = select_subset(catalog, load_split(d.split, catalog), d.n_train, d.n_test, d.seed)
        joint, _ = load_run(d.joint_run)
        logger.info("preparing %s (%d products)", path, len(subset.ids))
        prepare_data(catalog, subset, joint, path, pca_dim=d.pca_dim, max_tokens=d.max_tokens)
    data = trim_tokens(load_data(path))
    if set(cfg.tasks) & set(AUX_TASK_NAMES):  # rotation / grey: features of transformed photos
        from samestyle.pretrain.transformed import ensure_aux

        data |= ensure_aux(path, data, cfg.data.catalog)
    return data


def trim_tokens(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop trailing token columns that are padding in every title (less attention work)."""
    longest = max(1, int((data["tokens"] > 0).sum(1).max()))
    return data | {"tokens": data["tokens"][:, :longest], "align": data["align"][:, :longest]}


def init_weights(model: Pretrainer, run: str | Path) -> list[str]:
    """Copy a previous run's weights into ``model`` where name and shape agree; returns those left fresh."""
    from safetensors.torch import load_file

    from samestyle.errors import ArtifactError

    path = Path(run) / "model.safetensors"
    if not path.exists():
        raise ArtifactError(
            f"train.init_from: {path} does not exist; give a finished 'samestyle pretrain' run"
        )
    old, own = load_file(str(path)), model.state_dict()
    same = {k: v for k, v in old.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(same, strict=False)
    fresh = sorted(set(own) - set(same))
    logger.info("init from %s: %d tensors copied, %d fresh %s", run, len(same), len(fresh), fresh[:8])
    return fresh


def pretrain_run(
    cfg: PretrainConfig, out: str | Path, data: dict[str, np.ndarray] | None = None
) -> dict[str, Any]:
    """Train a cross-encoder per ``cfg`` and save it to ``out``; returns the metrics written there."""
    torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    data = data if data is not None else ensure_data(cfg)
    if (cfg.residual or cfg.train.hard_negatives > 0) and "joint_img" not in data:
        from samestyle.pretrain.joint import attach_joint

        data = attach_joint(data, cfg.data.joint_embeddings)
    cfg = resolve_model_config(cfg, data)
    model = Pretrainer(cfg, torch.from_numpy(data["token_table"]))
    if cfg.train.init_from:
        init_weights(model, cfg.train.init_from)
    train_rows = np.flatnonzero(data["is_train"])
    metrics = train_steps(model, cfg, data, train_rows)
    metrics["n_train_products"] = len(train_rows)
    metrics["parameters"] = int(sum(p.numel() for p in model.parameters()))
    save_pretrain_run(model, cfg, metrics, Path(out))
    return metrics
