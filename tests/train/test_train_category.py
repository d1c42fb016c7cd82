"""``[category]`` in a run: terms logged, heads saved with the best epoch, resumable, clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from test_train_core import _cfg, _toy

from samestyle.errors import ConfigError
from samestyle.losses.category import CategoryConfig, load_heads
from samestyle.train.run import train_run


def _with_category(cfg, levels: tuple[str, ...], epochs: int):  # type: ignore[no-untyped-def]
    return dataclasses.replace(
        cfg,
        category=CategoryConfig(levels),
        train=dataclasses.replace(cfg.train, epochs=epochs),
    )


def test_a_run_with_category_terms_logs_them_saves_heads_and_resumes(tmp_path: Path) -> None:
    cat, emb = _toy(tmp_path)
    cfg = _with_category(_cfg(cat, emb, 2), ("category2", "category3"), 2)
    m = train_run(cfg, tmp_path / "run", progress=False)
    assert {"cls/category2", "cls/category3"} <= set(m["history"][0])
    heads = load_heads(tmp_path / "run")
    assert heads is not None and heads.classes["category2"] == ["c0", "c1", "c2", "c3"]
    pred = heads.predict(np.eye(8, dtype=np.float32), "category3")
    assert set(pred) <= {"t0", "t1", "t2", "t3"}
    m2 = train_run(
        _with_category(cfg, ("category2", "category3"), 3), tmp_path / "run", resume=True, progress=False
    )
    assert [h["epoch"] for h in m2["history"]] == [1, 2, 3]
    # the run trained without [category] has no heads, and eval reads that as "no head rows"
    train_run(_cfg(cat, emb, 1), tmp_path / "plain", progress=False)
    assert load_heads(tmp_path / "plain") is None


def test_an_unknown_level_names_the_levels_there_are(tmp_path: Path) -> None:
    cat, emb = _toy(tmp_path)
    with pytest.raises(ConfigError, match=r"category9.*category1"):
        train_run(_with_category(_cfg(cat, emb, 1), ("category9",), 1), tmp_path / "run", progress=False)
