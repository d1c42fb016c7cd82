"""``samestyle train`` / ``samestyle eval`` reaching the cross-encoder (tiny synthetic data only)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pretrain_fakes import tiny_data
from test_pretrain_evaluate import fake_embeddings, make_run

import samestyle.pretrain.run as run_mod
from samestyle.cli import main
from samestyle.pretrain.train import load_pretrain_run

_TINY = """
[model]
width = 16
layers = 1
heads = 2
ff = 32
dropout = 0.0

[train]
epochs = 1
batch_size = 8
warmup_steps = 1
max_minutes = 1.0
"""


@pytest.fixture()
def data(monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    torch.manual_seed(0)
    d = tiny_data()
    monkeypatch.setattr(run_mod, "ensure_data", lambda cfg: dict(d))
    return d


def test_train_dispatches_a_cross_config_to_the_cross_encoder_trainer(tmp_path: Path, data, capsys) -> None:
    base = make_run(tmp_path, data, "base", ("itm", "mlm"))
    toml = tmp_path / "ft.toml"
    toml.write_text(f'kind = "cross"\ntasks = ["itm", "category"]\n{_TINY}init_from = "{base}"\n', "utf-8")
    rc = main(["train", "--config", str(toml), "--out", str(tmp_path / "ft")])
    assert rc == 0 and "2 steps" in capsys.readouterr().out
    model, cfg = load_pretrain_run(tmp_path / "ft")
    assert cfg.kind == "cross" and list(model.tasks) == ["itm", "category"]
    assert cfg.train.init_from == str(base)
    # the saved config is itself a cross config: 'samestyle train' accepts it as it is
    assert (tmp_path / "ft" / "config.toml").read_text().startswith('kind = "cross"')


def test_train_init_from_copies_the_encoder_and_leaves_the_new_head_fresh(tmp_path: Path, data) -> None:
    base = make_run(tmp_path, data, "base", ("itm",))
    toml = tmp_path / "ft.toml"
    toml.write_text(f'kind = "cross"\ntasks = ["itm", "category"]\n{_TINY}lr = 0.0\n', "utf-8")
    assert main(["train", "--config", str(toml), "--set", f"train.init_from={base}",
                 "--out", str(tmp_path / "ft")]) == 0  # fmt: skip
    old, _ = load_pretrain_run(base)
    new, _ = load_pretrain_run(tmp_path / "ft")
    # lr 0 (the schedule's floor is lr * 1e-3 = 0): weights stay as initialised
    torch.testing.assert_close(new.encoder.text_proj.weight, old.encoder.text_proj.weight)
    torch.testing.assert_close(new.tasks["itm"].head.weight, old.tasks["itm"].head.weight)


def test_train_keeps_joint_configs_and_refuses_neither(tmp_path: Path, monkeypatch, capsys) -> None:
    import samestyle.train.run as train_mod
    from samestyle.train.run import RunConfig

    seen: dict[str, object] = {}

    def fake_train(cfg: RunConfig, out: str, resume: bool, progress: bool) -> dict[str, float]:
        seen["cfg"] = cfg
        return {"best_epoch": 1, "best_val_sum_r": 4.0, "train_seconds": 1.0}

    monkeypatch.setattr(train_mod, "train_run", fake_train)
    joint = tmp_path / "joint.toml"
    joint.write_text('name = "j"\n[model]\ndim = 32\n', "utf-8")
    assert main(["train", "--config", str(joint), "--out", str(tmp_path / "j")]) == 0
    assert isinstance(seen["cfg"], RunConfig) and seen["cfg"].model.dim == 32
    untagged = tmp_path / "untagged.toml"
    untagged.write_text('tasks = ["itm"]\n', "utf-8")
    assert main(["train", "--config", str(untagged), "--out", str(tmp_path / "u")]) == 2
    err = capsys.readouterr().err
    assert str(untagged) in err and 'kind = "cross"' in err
    bogus = tmp_path / "bogus.toml"
    bogus.write_text('kind = "bert"\n', "utf-8")
    assert main(["train", "--config", str(bogus), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert str(bogus) in err and "kind = 'bert'" in err
    cross = tmp_path / "cross.toml"
    cross.write_text('kind = "cross"\n', "utf-8")
    assert main(["train", "--config", str(cross), "--resume", "--out", str(tmp_path / "c")]) == 2
    assert "--resume" in capsys.readouterr().err


def test_eval_cross_run_writes_json_and_markdown(tmp_path: Path, data, capsys) -> None:
    ft = make_run(tmp_path, data, "ft", ("itm", "category"))
    pre = make_run(tmp_path, data, "pre", ("itm", "mlm"))
    emb = fake_embeddings(tmp_path / "emb", data)
    out = tmp_path / "eval"
    rc = main(["eval", "--cross-run", str(ft), "--embeddings", str(emb), "--rerank", "3", "5",
               "--queries", "8", "--cross-queries", "4", "--out", str(out)])  # fmt: skip
    assert rc == 0
    report = json.loads((out / "eval.json").read_text())
    rows = report["results"]
    assert {"sample100/bi-encoder", "sample100/bi-encoder + re-rank K = 3", "sample100/cross-encoder alone",
            "category_scores/articleType, fine-tuned head on [CLS]"} <= set(rows)  # fmt: skip
    assert rows["sample100/cross-encoder alone"]["n_queries"] == 4
    assert "tasks itm,category" in report["meta"]["run ft"]
    assert "re-rank K = 5" in (out / "eval.md").read_text() and "primary (sum_r)" in capsys.readouterr().out
    both = tmp_path / "both"
    assert main(["eval", "--cross-run", str(ft), str(pre), "--embeddings", str(emb), "--queries", "8",
                 "--cross-queries", "0", "--out", str(both)]) == 0  # fmt: skip
    rows = json.loads((both / "eval.json").read_text())["results"]
    assert "sample100/ft: bi-encoder + re-rank K = 10" in rows and "sample100/pre: bi-encoder" in rows
    assert "category_scores/ft: subCategory, fine-tuned head on [CLS]" in rows
    assert not any(r.startswith("category_scores/pre") and "fine-tuned" in r for r in rows)


def test_eval_argument_errors_are_clear(tmp_path: Path, capsys) -> None:
    assert main(["eval", "--out", str(tmp_path / "o")]) == 2
    assert "--catalog and --embeddings" in capsys.readouterr().err
    assert main(["eval", "--catalog", "c", "--embeddings", "e", "--rerank", "5", "--out", "o"]) == 2
    assert "--cross-run" in capsys.readouterr().err
    assert main(["eval", "--cross-run", "r", "--run", "x", "--out", "o"]) == 2
    assert "drop --catalog, --run" in capsys.readouterr().err
    assert main(["eval", "--cross-run", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "model.safetensors" in capsys.readouterr().err
