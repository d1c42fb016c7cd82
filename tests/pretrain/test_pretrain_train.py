from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from pretrain_fakes import tiny_data, tiny_model_config

from samestyle.errors import ConfigError
from samestyle.losses.weighting import FashionBertWeighting, FixedWeighting
from samestyle.pretrain.run import trim_tokens
from samestyle.pretrain.train import (
    NegativeSampler,
    PretrainConfig,
    PretrainTrainConfig,
    build_weighting,
    load_pretrain_run,
    make_batch,
)


def _cfg(data: dict[str, np.ndarray], **kw: object) -> PretrainConfig:
    train = PretrainTrainConfig(epochs=2, batch_size=8, warmup_steps=1, max_minutes=1.0)
    return replace(PretrainConfig(model=tiny_model_config(data), train=train), **kw)  # type: ignore[arg-type]


def test_pretrain_run_saves_a_loadable_model(tmp_path: Path) -> None:
    from samestyle.pretrain.run import pretrain_run

    data = tiny_data()
    metrics = pretrain_run(_cfg(data), tmp_path / "run", data=data)
    assert metrics["steps"] == 4 and len(metrics["history"]) == 2
    assert set(metrics["history"][0]["loss"]) == {"itm", "mlm", "mpm", "jigsaw", "camouflage", "blank"}
    weights = metrics["history"][0]["weights"]
    assert abs(sum(weights.values()) - 1.0) < 1e-5
    model, cfg = load_pretrain_run(tmp_path / "run")
    assert cfg.model.vocab == 12 and cfg.masking == "guided"
    t, p = torch.from_numpy(data["tokens"][:3]), torch.from_numpy(data["patches"][:3].astype(np.float32))
    with torch.inference_mode():
        a, b = model.itm_score(t, p), model.itm_score(t, p)
    torch.testing.assert_close(a, b)  # eval mode: deterministic
    assert (tmp_path / "run" / "config.toml").read_text().count("[model]") == 1


def test_negative_sampler_stays_in_sub_category_and_never_returns_self() -> None:
    groups = np.array([0, 0, 0, 1, 1, 2])
    s = NegativeSampler(groups, np.random.default_rng(0))
    for _ in range(20):
        neg = s(np.arange(6))
        assert (neg != np.arange(6)).all()
        assert (groups[neg[:5]] == groups[:5]).all()  # group 2 has one member: any other row


def test_make_batch_builds_matches_then_text_and_image_swaps() -> None:
    data = tiny_data()
    rows, neg = np.array([0, 1, 2, 3]), np.array([4, 5, 6, 7])
    b = make_batch(data, rows, neg)
    assert b.match.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert torch.equal(b.tokens[4], torch.from_numpy(data["tokens"][4]))  # text swapped
    assert torch.equal(b.patches[4], torch.from_numpy(data["patches"][0].astype(np.float32)))
    assert torch.equal(b.tokens[6], torch.from_numpy(data["tokens"][2]))  # image swapped
    assert torch.equal(b.patches[6], torch.from_numpy(data["patches"][6].astype(np.float32)))


def test_weighting_choice_and_errors() -> None:
    data = tiny_data()
    assert isinstance(build_weighting(_cfg(data), ["a", "b"]), FashionBertWeighting)
    fixed = build_weighting(_cfg(data, weighting="fixed"), ["a", "b"])
    assert isinstance(fixed, FixedWeighting) and fixed.weight_for("a") == 0.5
    with pytest.raises(ConfigError):
        build_weighting(_cfg(data, weighting="nope"), ["a"])


def test_trim_tokens_drops_all_padding_columns() -> None:
    data = tiny_data()
    data["tokens"] = np.pad(data["tokens"], ((0, 0), (0, 3)))
    data["align"] = np.pad(data["align"], ((0, 0), (0, 3)), constant_values=-np.inf)
    out = trim_tokens(data)
    assert out["tokens"].shape[1] == 6 and out["align"].shape[1] == 6


def test_cli_pretrain_parses_config_and_overrides(tmp_path: Path, monkeypatch, capsys) -> None:
    import samestyle.pretrain.run as run_mod
    from samestyle.cli import main

    seen: dict[str, object] = {}

    def fake_run(cfg: PretrainConfig, out: str) -> dict[str, object]:
        seen.update(cfg=cfg, out=out)
        return {"steps": 3, "train_seconds": 1.0, "history": [{"loss": {"itm": 0.5}}]}

    monkeypatch.setattr(run_mod, "pretrain_run", fake_run)
    toml = tmp_path / "p.toml"
    toml.write_text('masking = "random"\n[train]\nepochs = 5\n', encoding="utf-8")
    rc = main(["pretrain", "--config", str(toml), "--set", "weighting=fixed", "--out", str(tmp_path / "r")])
    assert rc == 0 and "3 steps" in capsys.readouterr().out
    cfg = seen["cfg"]
    assert isinstance(cfg, PretrainConfig)
    assert (cfg.masking, cfg.weighting, cfg.train.epochs) == ("random", "fixed", 5)
    bad = tmp_path / "bad.toml"
    bad.write_text('maskin = "random"\n', encoding="utf-8")
    assert main(["pretrain", "--config", str(bad), "--out", str(tmp_path / "r2")]) == 2
    assert "masking" in capsys.readouterr().err  # did-you-mean hint
