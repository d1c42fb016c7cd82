"""The fine-tuned category head (``category_task.CategoryTask``) and its wiring into the trainer."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pretrain_fakes import tiny_data, tiny_model_config

from samestyle.errors import ConfigError
from samestyle.pretrain.categories import cls_features, head_predictions
from samestyle.pretrain.category_task import CategoryTask
from samestyle.pretrain.model import Encoded
from samestyle.pretrain.tasks import Batch, build_tasks
from samestyle.pretrain.train import (
    PretrainConfig,
    Pretrainer,
    PretrainTrainConfig,
    load_pretrain_run,
    make_batch,
    resolve_model_config,
)


def _batch(n: int, sub: list[int], art: list[int], match: list[float]) -> Batch:
    b = Batch(
        torch.ones(n, 3, dtype=torch.long), torch.zeros(n, 55, 4), torch.zeros(n, 3), torch.tensor(match)
    )
    b.labels = {"sub": torch.tensor(sub), "art": torch.tensor(art)}
    return b


def test_loss_is_the_mean_of_two_cross_entropies_over_matching_rows() -> None:
    torch.manual_seed(0)
    task = CategoryTask(4, n_sub=3, n_art=5, dropout=0.0)
    cls = torch.randn(4, 4)
    enc = Encoded(cls, torch.zeros(4, 3, 4), torch.zeros(4, 55, 4))
    b = _batch(4, sub=[0, 2, 1, 1], art=[4, 0, 3, 2], match=[1.0, 1.0, 0.0, 1.0])
    got = task.loss(enc, b)
    keep = [0, 1, 3]  # row 2 is a mismatched pair: no label
    w_s, b_s = task.heads["sub"].weight, task.heads["sub"].bias
    w_a, b_a = task.heads["art"].weight, task.heads["art"].bias

    def ce(logits: torch.Tensor, y: list[int]) -> float:  # plain -log softmax, averaged
        rows = zip(logits.detach(), y, strict=True)
        return float(sum(torch.logsumexp(row, 0) - row[t] for row, t in rows) / len(y))

    ref = 0.5 * (ce(cls[keep] @ w_s.T + b_s, [0, 2, 1]) + ce(cls[keep] @ w_a.T + b_a, [4, 0, 2]))
    assert abs(float(got.detach()) - ref) < 1e-5
    torch.testing.assert_close(
        got, (F.cross_entropy(task.logits(cls[keep])["sub"], torch.tensor([0, 2, 1]))
              + F.cross_entropy(task.logits(cls[keep])["art"], torch.tensor([4, 0, 2]))) / 2
    )  # fmt: skip


def test_missing_labels_or_class_counts_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="n_sub"):
        CategoryTask(4, 0, 3)
    task = CategoryTask(4, 2, 2)
    b = _batch(2, [0, 1], [0, 1], [1.0, 1.0])
    b.labels = {}
    with pytest.raises(ConfigError, match="'sub' labels"):
        task.loss(Encoded(torch.zeros(2, 4), torch.zeros(2, 3, 4), torch.zeros(2, 55, 4)), b)


def test_a_few_steps_on_separable_toy_data_reach_high_accuracy() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, w = 240, 8
    sub = rng.integers(0, 3, size=n)
    art = sub * 2 + rng.integers(0, 2, size=n)  # 6 article types nested in 3 sub-categories
    centres = rng.normal(size=(6, w)) * 3.0
    x = torch.from_numpy((centres[art] + rng.normal(size=(n, w))).astype(np.float32))
    task = CategoryTask(w, 3, 6)
    opt = torch.optim.Adam(task.parameters(), lr=0.05)
    tr, te = slice(0, 160), slice(160, n)
    b = _batch(160, sub[tr].tolist(), art[tr].tolist(), [1.0] * 160)
    enc = Encoded(x[tr], torch.zeros(160, 3, w), torch.zeros(160, 55, w))
    first = float(task.loss(enc, b).detach())
    for _ in range(60):
        loss = task.loss(enc, b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.3 * first
    task.eval()
    with torch.inference_mode():
        pred = {k: v.argmax(-1).numpy() for k, v in task.logits(x[te]).items()}
    assert (pred["sub"] == sub[te]).mean() > 0.95 and (pred["art"] == art[te]).mean() > 0.9


def test_build_tasks_and_make_batch_carry_the_category_labels() -> None:
    data = tiny_data()
    tasks = build_tasks(("itm", "category"), 16, 12, 8, guided=False, n_classes=(3, 4))
    assert list(tasks) == ["itm", "category"]
    rows, neg = np.array([0, 1, 2, 3]), np.array([4, 5, 6, 7])
    b = make_batch(data, rows, neg)
    img_rows = [0, 1, 2, 3, 0, 1, 6, 7]  # first half of the mismatches swaps the text, second the image
    assert b.labels["sub"].tolist() == data["sub"][img_rows].tolist()
    assert b.labels["art"].dtype == torch.int64 and b.labels["art"].tolist() == data["art"][img_rows].tolist()


def test_pretrain_run_with_the_category_task_saves_and_predicts(tmp_path: Path) -> None:
    from samestyle.pretrain.run import pretrain_run

    data = tiny_data()
    train = PretrainTrainConfig(epochs=2, batch_size=8, warmup_steps=1, max_minutes=1.0)
    cfg = PretrainConfig(model=tiny_model_config(data), train=train, tasks=("itm", "category"))
    assert resolve_model_config(cfg, data).model.n_sub == int(data["sub"].max()) + 1
    metrics = pretrain_run(cfg, tmp_path / "run", data=data)
    assert set(metrics["history"][0]["loss"]) == {"itm", "category"}
    model, loaded = load_pretrain_run(tmp_path / "run")
    assert (loaded.model.n_sub, loaded.model.n_art) == (3, 4) and "category" in model.tasks
    pred = head_predictions(model, cls_features(model, data["tokens"], data["patches"]))
    assert pred["sub"].shape == (24,) and pred["art"].max() < 4
    plain = Pretrainer(replace(cfg, tasks=("itm",)), torch.from_numpy(data["token_table"]))
    with pytest.raises(ValueError, match="no 'category' head"):
        head_predictions(plain, np.zeros((2, 16), np.float32))


def test_a_cross_config_with_another_kind_is_refused() -> None:
    data = tiny_data()
    with pytest.raises(ConfigError, match="kind"):
        Pretrainer(PretrainConfig(kind="joint", model=tiny_model_config(data)), torch.zeros(12, 384))
