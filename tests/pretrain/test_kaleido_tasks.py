"""Rotation (1x1) and grey-to-colour (4x4) kaleido tasks against plain-loop references (fake tensors)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from pretrain_fakes import tiny_data, tiny_model_config

from samestyle.errors import ConfigError
from samestyle.pretrain.kaleido_tasks import GreyToColor, Rotation
from samestyle.pretrain.model import CrossEncoder
from samestyle.pretrain.tasks import TASK_ORDER, Batch, build_tasks

N, D, W = 8, 8, 16
GRID = range(14, 30)  # the 16 patches of the 4x4 grid


def _aux(n: int = N, d: int = D, seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "aux_rot": rng.normal(size=(n, 3, d)).astype(np.float16),
        "aux_grey": rng.normal(size=(n, 16, d)).astype(np.float16),
    }


def _batch(data: dict[str, np.ndarray], n: int = N, aux: bool = True) -> Batch:
    extra = {k: torch.from_numpy(v[:n].astype(np.float32)) for k, v in data.items() if k.startswith("aux_")}
    return Batch(
        tokens=torch.from_numpy(data["tokens"][:n].copy()),
        patches=torch.from_numpy(data["patches"][:n].astype(np.float32)),
        align=torch.from_numpy(data["align"][:n].copy()),
        match=torch.tensor([1.0, 0.0] * (n // 2)),
        extra=extra if aux else {},
    )


@pytest.fixture()
def setup() -> tuple[dict[str, np.ndarray], CrossEncoder]:
    torch.manual_seed(0)
    data = tiny_data() | _aux(24)
    return data, CrossEncoder(tiny_model_config(data), torch.from_numpy(data["token_table"]))


def test_rotation_swaps_only_the_1x1_input_by_its_class(setup) -> None:
    data, _ = setup
    b = _batch(data, n=24)
    before = b.patches.clone()
    Rotation(W, p=0.5).corrupt(b, torch.Generator().manual_seed(0))
    cls = b.targets["rotation"].tolist()
    for i, c in enumerate(cls):
        want = before[i, 0] if c == 0 else b.extra["aux_rot"][i, c - 1]
        torch.testing.assert_close(b.patches[i, 0], want)
        torch.testing.assert_close(b.patches[i, 1:], before[i, 1:])
    assert set(cls) == {0, 1, 2, 3}
    counts = torch.zeros(4)
    for s in range(50):
        bb = _batch(data, n=24)
        Rotation(W, p=0.5).corrupt(bb, torch.Generator().manual_seed(s))
        counts += torch.bincount(bb.targets["rotation"], minlength=4)
    share = counts / counts.sum()
    assert abs(share[0] - 0.5) < 0.05 and (share[1:] - 1 / 6).abs().max() < 0.04


@torch.no_grad()
def test_rotation_loss_is_cross_entropy_over_unmasked_rows(setup) -> None:
    data, enc = setup
    task = Rotation(W, p=1.0)
    b = _batch(data)
    task.corrupt(b, torch.Generator().manual_seed(1))
    b.patch_masked[2, 0] = True  # a later mask hides row 2's 1x1 input
    out = enc(b.tokens, b.patches, b.text_masked, b.patch_masked)
    total, rows = 0.0, 0
    for i in range(N):
        if i == 2:
            continue
        logits = task.head(out.patch[i, 0])
        total += float(torch.logsumexp(logits, 0) - logits[b.targets["rotation"][i]])
        rows += 1
    assert abs(float(task.loss(out, b)) - total / rows) < 1e-5
    b.patch_masked[:, 0] = True
    assert float(task.loss(out, b)) == 0.0  # nothing left to recognise, no NaN


def test_grey_replaces_a_quarter_of_the_4x4_cells_and_keeps_colour_targets(setup) -> None:
    data, _ = setup
    b = _batch(data)
    before = b.patches.clone()
    b.patch_masked[0, 14] = True  # already masked: never greyed
    GreyToColor(W, D, ratio=0.25).corrupt(b, torch.Generator().manual_seed(2))
    sel = b.targets["grey"]
    for i in range(N):
        cells = [p for p in range(55) if sel[i, p]]
        assert set(cells) <= set(GRID)
        assert len(cells) == 4 or (i == 0 and len(cells) == 3)  # row 0 drew its masked cell 14
        assert i != 0 or 14 not in cells
        for p in range(55):
            want = b.extra["aux_grey"][i, p - 14] if p in cells else before[i, p]
            torch.testing.assert_close(b.patches[i, p], want)
    torch.testing.assert_close(b.targets["grey/y"], before)


@torch.no_grad()
def test_grey_loss_is_squared_l2_per_greyed_cell(setup) -> None:
    data, enc = setup
    task = GreyToColor(W, D)
    b = _batch(data)
    before = b.patches.clone()
    task.corrupt(b, torch.Generator().manual_seed(3))
    out = enc(b.tokens, b.patches, b.text_masked, b.patch_masked)
    total, cells = 0.0, 0
    for i in range(N):
        for p in range(55):
            if b.targets["grey"][i, p]:
                diff = task.head(out.patch[i, p]) - before[i, p]
                total += float(sum(x * x for x in diff))
                cells += 1
    assert cells == 4 * N and abs(float(task.loss(out, b)) - total / cells) < 1e-4


def test_missing_or_misshaped_aux_is_a_config_error(setup) -> None:
    data, _ = setup
    with pytest.raises(ConfigError, match=r"aux_rot.*samestyle\.pretrain\.transformed"):
        Rotation(W).corrupt(_batch(data, aux=False), torch.Generator())
    with pytest.raises(ConfigError, match="aux_grey"):
        GreyToColor(W, D).corrupt(_batch(data, aux=False), torch.Generator())
    b = _batch(data)
    b.extra["aux_grey"] = b.extra["aux_grey"][:, :9]
    with pytest.raises(ConfigError, match=r"\(8, 16, 8\)"):
        GreyToColor(W, D).corrupt(b, torch.Generator())


def test_build_tasks_orders_swaps_before_masks(setup) -> None:
    data, _ = setup
    names = ("blank", "mpm", "grey", "itm", "rotation", "jigsaw")
    tasks = build_tasks(names, W, 12, D, guided=False)
    assert list(tasks) == ["jigsaw", "rotation", "grey", "itm", "mpm", "blank"]
    assert [n for n in TASK_ORDER if n in names] == list(tasks)
    b = _batch(data, n=24)
    gen = torch.Generator().manual_seed(4)
    for task in tasks.values():
        task.corrupt(b, gen)  # type: ignore[operator]
    # the masked-patch target is what the encoder would have seen: rotated 1x1, greyed 4x4 inputs
    rot = b.targets["rotation"]
    for i in range(24):
        if rot[i] > 0:
            torch.testing.assert_close(b.targets["mpm/y"][i, 0], b.extra["aux_rot"][i, rot[i] - 1])
        for p in GRID:
            if b.targets["grey"][i, p]:
                torch.testing.assert_close(b.targets["mpm/y"][i, p], b.extra["aux_grey"][i, p - 14])
    with pytest.raises(ConfigError, match="rotation"):
        build_tasks(("itm", "rotaton"), W, 12, D, guided=False)


def test_rotation_and_grey_losses_train_down(setup) -> None:
    data, enc = setup
    # structured views, as real rotations / greying change features systematically (random ones are noise)
    p = data["patches"].astype(np.float32)
    shift = np.random.default_rng(7).normal(size=(3, D)).astype(np.float32) * 2
    data = data | {"aux_rot": p[:, :1] + shift[None], "aux_grey": 0.3 * p[:, 14:30] + 0.5}
    tasks = build_tasks(("rotation", "grey"), W, 12, D, guided=False)
    opt = torch.optim.Adam(list(enc.parameters()) + list(tasks.parameters()), lr=3e-3)
    hist = []
    for step in range(80):
        b = _batch(data, n=24)
        gen = torch.Generator().manual_seed(step)
        for task in tasks.values():
            task.corrupt(b, gen)  # type: ignore[operator]
        out = enc(b.tokens, b.patches, b.text_masked, b.patch_masked)
        terms = [tasks[k].loss(out, b) for k in ("rotation", "grey")]  # type: ignore[operator]
        opt.zero_grad()
        (terms[0] + terms[1]).backward()
        opt.step()
        hist.append([float(t.detach()) for t in terms])
    first, last = np.mean(hist[:10], 0), np.mean(hist[-10:], 0)
    assert last[0] < 0.3 * first[0] and last[1] < 0.8 * first[1]


def test_pretrain_run_with_the_aux_tasks(tmp_path: Path) -> None:
    from samestyle.pretrain.run import pretrain_run
    from samestyle.pretrain.train import PretrainConfig, PretrainTrainConfig

    data = tiny_data() | _aux(24)
    train = PretrainTrainConfig(epochs=1, batch_size=8, warmup_steps=1, max_minutes=1.0)
    cfg = PretrainConfig(model=tiny_model_config(data), train=train, tasks=("itm", "rotation", "grey", "mpm"))
    metrics = pretrain_run(cfg, tmp_path / "run", data=data)
    losses = metrics["history"][0]["loss"]
    assert set(losses) == {"itm", "rotation", "grey", "mpm"} and all(np.isfinite(list(losses.values())))
    without = {k: v for k, v in data.items() if k != "aux_grey"}
    with pytest.raises(ConfigError, match="aux_grey"):
        pretrain_run(replace(cfg, name="x"), tmp_path / "run2", data=without)
