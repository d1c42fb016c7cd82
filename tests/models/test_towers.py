"""Image and text towers: config, shapes, gradients, and the split point against the frozen encoders."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from models_helpers import have, needs_efficientnet, needs_minilm

torch = pytest.importorskip("torch")

from samestyle.errors import ConfigError  # noqa: E402
from samestyle.models.towers import (  # noqa: E402
    BLOCK_INPUT_SHAPES,
    AttnPool,
    LowerBackbone,
    TowerConfig,
    build_tower,
    input_dim,
    input_shape,
    tower_input_kind,
    tower_param_groups,
)

needs_effnet_code = pytest.mark.skipif(
    not have("efficientnet_lite_pytorch"), reason="no efficientnet_lite_pytorch"
)


@pytest.fixture(scope="module")
def random_backbone() -> Any:
    """EfficientNet-Lite0 structure with random weights (no weight package needed)."""
    if not have("efficientnet_lite_pytorch"):
        pytest.skip("efficientnet_lite_pytorch not installed")
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    return EfficientNet.from_name("efficientnet-lite0").eval()


@pytest.fixture(scope="module")
def pretrained_backbone() -> Any:
    from samestyle.models.image import load_torch_model

    return load_torch_model()


def test_input_kinds_and_shapes() -> None:
    assert tower_input_kind(TowerConfig()) == "pooled"
    assert tower_input_kind(TowerConfig(kind="attnpool")) == "map"
    assert tower_input_kind(TowerConfig(kind="finetune", train_blocks=1)) == "act15"
    assert tower_input_kind(TowerConfig(kind="finetune", train_blocks=0)) == "act16"
    assert input_shape("act15") == (192, 7, 7) and input_dim("act16") == 320 * 49
    assert input_shape("map") == (1280, 7, 7) and input_shape("pooled") == (1280,)
    for bad in ({"kind": "nope"}, {"train_blocks": 17}, {"pool": "max"}, {"heads": 7}):
        with pytest.raises(ConfigError):
            TowerConfig(**bad)
    with pytest.raises(ConfigError):
        input_shape("act99")


def test_attn_pool_starts_as_average_and_learns() -> None:
    pool = AttnPool(16, 9, heads=4)
    x = torch.randn(3, 16, 3, 3)
    torch.testing.assert_close(pool(x), x.mean(dim=(2, 3)))
    pool(x).pow(2).sum().backward()
    assert pool.score.weight.grad is not None and pool.score.weight.grad.abs().sum() > 0


def test_pooled_is_identity_and_attnpool_shapes() -> None:
    x = torch.randn(2, 1280)
    assert torch.equal(build_tower(TowerConfig())(x), x)
    tower = build_tower(TowerConfig(kind="attnpool"))
    flat = torch.rand(5, 1280 * 49).half()  # fp16 cache rows, flat
    out = tower(flat)
    assert out.shape == (5, 1280) and out.dtype == torch.float32
    torch.testing.assert_close(out, flat.float().reshape(5, 1280, 49).mean(-1))
    out.sum().backward()
    assert all(p.grad is not None for p in tower.parameters())


@needs_effnet_code
def test_block_input_shapes_match_the_network(random_backbone: Any) -> None:
    with torch.no_grad():
        for b in (0, 6, 11, 12, 15, 16):
            act = LowerBackbone(random_backbone, f"act{b}")(torch.zeros(1, 3, 224, 224))
            assert tuple(act.shape[1:]) == BLOCK_INPUT_SHAPES[b]
        fmap = LowerBackbone(random_backbone, "map")(torch.zeros(1, 3, 224, 224))
        assert tuple(fmap.shape) == (1, 1280, 7, 7)


@needs_effnet_code
@pytest.mark.parametrize(("blocks", "pool"), [(0, "avg"), (2, "attn")])
def test_finetune_gradients_reach_the_tower(random_backbone: Any, blocks: int, pool: str) -> None:
    cfg = TowerConfig(kind="finetune", train_blocks=blocks, pool=pool)  # type: ignore[arg-type]
    tower = build_tower(cfg, backbone=random_backbone).train()
    assert len(tower.blocks) == blocks
    x = torch.randn(4, input_dim(tower_input_kind(cfg))).half()
    out = tower(x)
    assert out.shape == (4, 1280)
    out.pow(2).mean().backward()
    grads = [p.grad for p in tower.parameters()]
    assert all(g is not None for g in grads) and all(g.abs().sum() > 0 for g in grads if g is not None)
    bns = [m for m in tower.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)  # freeze_bn
    groups = tower_param_groups(tower, 1e-3, cfg)
    assert groups[0]["lr"] == pytest.approx(1e-4)
    assert sum(len(g["params"]) for g in groups) == len(list(tower.parameters()))


@needs_effnet_code
def test_folded_batch_norm_equals_the_package_forward(random_backbone: Any) -> None:
    """freeze_bn folds BN into the convs; freeze_bn=False runs the package's own block forward."""
    net = copy.deepcopy(random_backbone)
    gen = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
    x = torch.rand(3, 112 * 14 * 14, generator=gen) * 4  # act11: a stride-2 block and skips
    folded = build_tower(TowerConfig(kind="finetune", train_blocks=5), backbone=net).eval()
    plain = build_tower(TowerConfig(kind="finetune", train_blocks=5, freeze_bn=False), backbone=net).eval()
    with torch.no_grad():
        torch.testing.assert_close(folded(x), plain(x), atol=1e-4, rtol=1e-4)


@pytest.mark.real
@needs_efficientnet
@pytest.mark.parametrize("blocks", [0, 1, 4])
def test_finetune_tower_reproduces_the_frozen_pooled_feature(
    blocks: int, onnx_encoder: Any, pretrained_backbone: Any, myntra_images: list[Path]
) -> None:
    """Lower ONNX graph -> float16 activations -> fresh tower (eval, avg pool) == frozen pooled vector."""
    from samestyle.features.activations import ActivationExtractor

    cfg = TowerConfig(kind="finetune", train_blocks=blocks)
    acts = ActivationExtractor(tower_input_kind(cfg), num_threads=1).encode_images(myntra_images)
    tower = build_tower(cfg, backbone=pretrained_backbone).eval()
    with torch.no_grad():
        out = tower(torch.from_numpy(acts.astype(np.float16))).numpy()
    np.testing.assert_allclose(out, onnx_encoder.encode_images(myntra_images), atol=1e-3)


@pytest.mark.real
@needs_efficientnet
def test_attnpool_tower_on_the_map_starts_at_the_pooled_feature(
    onnx_encoder: Any, myntra_images: list[Path]
) -> None:
    from samestyle.features.activations import ActivationExtractor

    maps = ActivationExtractor("map", num_threads=1).encode_images(myntra_images[:2])
    with torch.no_grad():
        out = build_tower(TowerConfig(kind="attnpool"))(torch.from_numpy(maps.astype(np.float16))).numpy()
    np.testing.assert_allclose(out, onnx_encoder.encode_images(myntra_images[:2]), atol=1e-3)


@pytest.mark.skipif(not have("transformers"), reason="transformers not installed")
def test_text_tower_gradients_and_trimming() -> None:
    from transformers import BertConfig, BertModel

    from samestyle.models.text_towers import TextTowerConfig, build_text_tower, text_tower_input_kind

    cfg = TextTowerConfig(kind="finetune", train_layers=2, max_length=8)
    assert text_tower_input_kind(cfg) == "hidden4-t8"
    tiny = BertModel(BertConfig(hidden_size=32, num_hidden_layers=6, num_attention_heads=4,
                                intermediate_size=64, vocab_size=50))  # fmt: skip
    tower = build_text_tower(cfg, backbone=tiny).train()
    hidden = torch.randn(3, 8, 32)
    mask = (torch.arange(8)[None, :] < torch.tensor([[3], [5], [2]])).float()  # [3, 8]: lengths 3, 5, 2
    out = tower(torch.cat([hidden.flatten(1), mask], dim=1).half())
    assert out.shape == (3, 32)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    out[:, 0].sum().backward()
    assert all(p.grad is not None for p in tower.parameters())
    tower.eval()  # what the padding positions hold does not change the output
    noisy = torch.where(mask[:, :, None] > 0, hidden, torch.randn(3, 8, 32))
    with torch.no_grad():
        a = tower(torch.cat([hidden.flatten(1), mask], dim=1))
        b = tower(torch.cat([noisy.flatten(1), mask], dim=1))
    torch.testing.assert_close(a, b)


@pytest.mark.real
@needs_minilm
@pytest.mark.parametrize("layers", [1, 3])
def test_text_tower_reproduces_the_frozen_minilm(layers: int, minilm: Any) -> None:
    from samestyle.models.text_towers import MiniLMHiddenStates, TextTowerConfig, build_text_tower

    texts = ["Nike Men Blue Running Shoes", "Puma Women Black Printed T-shirt", "red dress", "Titan Watch"]
    cfg = TextTowerConfig(kind="finetune", train_layers=layers)
    rows = MiniLMHiddenStates(cfg).encode(texts).astype(np.float16)
    with torch.no_grad():
        out = build_text_tower(cfg).eval()(torch.from_numpy(rows)).numpy()
    np.testing.assert_allclose(out, minilm.encode_texts(texts), atol=1e-3)
