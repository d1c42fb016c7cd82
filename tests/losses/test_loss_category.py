"""Category terms on the joint embeddings: against a plain-loop reference, masking, learning, save/load."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from samestyle.errors import ConfigError
from samestyle.losses.category import CategoryConfig, CategoryHeads, head_tensors, load_heads, write_classes


def _reference(heads: CategoryHeads, outputs: dict, y: list[int], present: list[bool], level: str) -> float:
    """Mean over outputs of the mean over kept rows of -log softmax(scale * cosine)[label], in loops."""
    protos = heads.prototypes[level].detach().numpy()
    per_output = []
    for name in heads.cfg.on:
        losses = []
        for i, label in enumerate(y):
            if label < 0 or (name == "image" and not present[i]):
                continue
            x = outputs[name][i].numpy()
            logits = [
                heads.cfg.scale * float(x @ p) / (np.linalg.norm(x) * np.linalg.norm(p)) for p in protos
            ]
            top = max(logits)
            lse = top + math.log(sum(math.exp(v - top) for v in logits))
            losses.append(lse - logits[label])
        if losses:
            per_output.append(sum(losses) / len(losses))
    return sum(per_output) / len(per_output)


def test_terms_match_a_plain_loop_with_unknown_labels_and_missing_images() -> None:
    torch.manual_seed(0)
    heads = CategoryHeads(6, {"category2": ["a", "b", "c"], "category3": ["x", "y"]})
    outputs = {
        k: torch.nn.functional.normalize(torch.randn(5, 6), dim=-1) for k in ("image", "text", "fused")
    }
    present = [True, False, True, True, False]
    labels2 = np.array(["a", "c", "zzz", "b", "a"])  # "zzz" unseen in training: ignored
    labels3 = np.array(["y", "x", "x", "", "y"])
    targets = {
        "category2": heads.targets(labels2, "category2"),
        "category3": heads.targets(labels3, "category3"),
    }
    assert targets["category2"].tolist() == [0, 2, -1, 1, 0] and targets["category3"].tolist()[3] == -1
    terms = heads(outputs, targets, torch.tensor(present))
    assert sorted(terms) == ["cls/category2", "cls/category3"] == sorted(heads.term_names)
    for level in ("category2", "category3"):
        ref = _reference(heads, outputs, targets[level].tolist(), present, level)
        assert float(terms[f"cls/{level}"].detach()) == pytest.approx(ref, rel=1e-5)


def test_a_batch_without_known_labels_gives_a_zero_term_that_still_backprops() -> None:
    heads = CategoryHeads(4, {"category2": ["a", "b"]})
    x = torch.nn.functional.normalize(torch.randn(3, 4), dim=-1)
    terms = heads({"fused": x}, {"category2": torch.tensor([-1, -1, -1])}, torch.ones(3, dtype=torch.bool))
    assert float(terms["cls/category2"].detach()) == 0.0
    terms["cls/category2"].backward()  # no error: connected to the parameters


def test_heads_learn_separable_classes_and_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    y = torch.arange(60) % 3
    x = torch.nn.functional.normalize(centres[y] + 0.2 * torch.randn(60, 8), dim=-1)
    names = np.array(["shoe", "bag", "top"])
    heads = CategoryHeads(
        8, {"category3": ["bag", "shoe", "top"]}, CategoryConfig(("category3",), on=("fused",))
    )
    targets = {"category3": heads.targets(names[y.numpy()], "category3")}
    opt = torch.optim.Adam(heads.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        loss = heads({"fused": x}, targets, torch.ones(60, dtype=torch.bool))["cls/category3"]
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.5 * first
    pred = heads.predict(x.numpy(), "category3")
    assert (pred == names[y.numpy()]).mean() > 0.95
    write_classes(heads, tmp_path)
    assert load_heads(tmp_path) is None  # classes written at the start, no model saved yet
    save_file({"image_proj.w": torch.zeros(2)} | head_tensors(heads), str(tmp_path / "model.safetensors"))
    loaded = load_heads(tmp_path)
    assert loaded is not None and loaded.classes == heads.classes and not loaded.training
    assert (loaded.predict(x.numpy(), "category3") == pred).all()
    assert load_heads(tmp_path / "no-run") is None


def test_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match=r"category\.on"):
        CategoryConfig(("category2",), on=("pixels",))
    with pytest.raises(ConfigError, match="scale"):
        CategoryConfig(("category2",), scale=0)
    with pytest.raises(ConfigError, match="needs 2"):
        CategoryHeads(4, {"category2": ["only"]})
