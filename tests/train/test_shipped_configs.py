"""Every config under configs/ loads as the config class its command reads (a typo in a key fails here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from samestyle.cli import _train_kind
from samestyle.config import load_config
from samestyle.pretrain.caption import CaptionConfig
from samestyle.pretrain.train import PretrainConfig
from samestyle.train.grocery import GroceryRunConfig
from samestyle.train.run import RunConfig

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.toml"))


def test_configs_are_found() -> None:
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_config_loads(path: Path) -> None:
    if path.name == "caption.toml":  # samestyle caption --config
        assert load_config(CaptionConfig, path).name
        return
    if path.name == "pretrain.toml":  # samestyle pretrain --config
        assert load_config(PretrainConfig, path).name
        return
    kind = _train_kind(str(path), [])  # samestyle train --config
    cls = {"cross": PretrainConfig, "grocery": GroceryRunConfig, "joint": RunConfig}[kind]
    cfg = load_config(cls, path)
    assert cfg.name


def test_towers_category_config_combines_both_towers_and_the_category_terms() -> None:
    cfg = load_config(RunConfig, CONFIG_DIR / "myntra-towers-category.toml")
    ttc = load_config(RunConfig, CONFIG_DIR / "myntra-text-tower-category.toml")
    assert cfg.tower.kind == "finetune" and cfg.tower.pool == "attn"
    assert cfg.text_tower == ttc.text_tower and cfg.category == ttc.category and cfg.loss == ttc.loss
