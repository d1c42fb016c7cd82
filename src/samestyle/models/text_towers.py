"""Text towers: the top MiniLM layers, trainable, run on cached token-level hidden states.

The text twin of ``models.towers``. all-MiniLM-L6-v2 has 6 transformer layers; a "finetune" tower with
``train_layers=k`` caches the hidden states after layer ``6-k`` (``hidden{6-k}``), padded or truncated
to ``max_length`` word pieces, plus the attention mask, and runs layers ``6-k+1..6`` (pretrained init,
trainable) + mean pooling over real tokens + L2 norm: exactly the frozen encoder's output at init.

One cached row is flat float16 ``[T * 384 + T]``: the ``[T, 384]`` hidden states, then the ``[T]`` mask
(0/1). At ``T=32`` that is 24.6 KB a product (~1.1 GB for 44k products). Myntra titles are short (a
median of 10 word pieces, at most 21 in 2,000 products), so 32 truncates none of them; the tower trims
each batch to its longest real text, so short titles cost little compute.

Example:
    >>> cfg = TextTowerConfig(kind="finetune", train_layers=1)
    >>> text_tower_input_kind(cfg)
    'hidden5-t32'
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from samestyle.errors import ConfigError

MINILM_LAYERS = 6
MINILM_DIM = 384


@dataclass(frozen=True)
class TextTowerConfig:
    """Which text tower to train.

    Attributes:
        kind: "pooled" (identity on the cached sentence vector; today) or "finetune".
        train_layers: top transformer layers to train, 1..6.
        max_length: cached tokens per text (word pieces, [CLS]/[SEP] included).
        normalize: L2-normalise the pooled output (as the frozen encoder does).
        dtype: storage type of the cached hidden states.
        lr_scale: suggested learning-rate multiplier for the pretrained layers.
    """

    kind: Literal["pooled", "finetune"] = "pooled"
    train_layers: int = 1
    max_length: int = 32
    normalize: bool = True
    dtype: Literal["float16", "float32"] = "float16"
    lr_scale: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in ("pooled", "finetune"):
            raise ConfigError(f"text tower kind must be 'pooled' or 'finetune', got {self.kind!r}")
        if not 1 <= self.train_layers <= MINILM_LAYERS:
            raise ConfigError(f"train_layers must be in 1..{MINILM_LAYERS}, got {self.train_layers}")
        if self.max_length < 2:
            raise ConfigError(f"max_length must be at least 2, got {self.max_length}")


def text_tower_input_kind(cfg: TextTowerConfig) -> str:
    """The cached input a text tower needs: "pooled" or ``f"hidden{layer}-t{max_length}"``."""
    if cfg.kind == "pooled":
        return "pooled"
    return f"hidden{MINILM_LAYERS - cfg.train_layers}-t{cfg.max_length}"


def text_input_dim(cfg: TextTowerConfig) -> int:
    """Flattened length of one cached row: ``T * 384 + T`` (finetune) or 384 (pooled)."""
    return MINILM_DIM if cfg.kind == "pooled" else cfg.max_length * (MINILM_DIM + 1)


def _load_minilm(folder: Path | None = None) -> Any:
    from transformers import AutoModel

    from samestyle.models.text import _quiet_transformers, minilm_path

    with _quiet_transformers():
        return AutoModel.from_pretrained(str(folder or minilm_path()), local_files_only=True).float().eval()


def split_cached(x: torch.Tensor, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat cached batch ``[B, T*H + T]`` -> hidden ``[B, T, H]`` float32 and mask ``[B, T]`` float32."""
    t = max_length
    hidden = x[:, :-t].reshape(x.shape[0], t, -1).float()  # [B, T, H]
    return hidden, x[:, -t:].float()  # [B, T, H], [B, T]


class TextFinetuneTower(nn.Module):
    """Top ``train_layers`` BERT layers of MiniLM + masked mean pooling (+ L2 norm).

    Args:
        cfg: the text tower config (kind "finetune").
        backbone: a transformers ``BertModel`` to copy the layers from; the bundled MiniLM when None.

    Inputs: cached rows ``[B, T*384 + T]`` (float16 or float32). Returns ``[B, 384]`` float32.
    """

    def __init__(self, cfg: TextTowerConfig, backbone: Any | None = None) -> None:
        super().__init__()
        backbone = backbone if backbone is not None else _load_minilm()
        self.cfg = cfg
        start = MINILM_LAYERS - cfg.train_layers
        self.layers = nn.ModuleList(copy.deepcopy(list(backbone.encoder.layer[start:])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, mask = split_cached(x, self.cfg.max_length)  # [B, T, H], [B, T]
        t = max(1, int(mask.sum(dim=1).max()))  # trim to the longest real text in the batch
        hidden, mask = hidden[:, :t], mask[:, :t]
        additive = (1.0 - mask)[:, None, None, :] * torch.finfo(hidden.dtype).min  # [B, 1, 1, t]
        for layer in self.layers:
            out = layer(hidden, attention_mask=additive)
            hidden = out[0] if isinstance(out, tuple) else out  # [B, t, H]
        weights = mask[:, :, None]  # [B, t, 1]
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)  # [B, H]
        return F.normalize(pooled, dim=-1) if self.cfg.normalize else pooled


def build_text_tower(cfg: TextTowerConfig, backbone: Any | None = None) -> nn.Module:
    """``nn.Identity`` for "pooled", else a ``TextFinetuneTower`` (output ``[B, 384]``)."""
    return nn.Identity() if cfg.kind == "pooled" else TextFinetuneTower(cfg, backbone)


class MiniLMHiddenStates:
    """MiniLM cut after layer ``6 - train_layers``: texts -> flat cached rows ``[N, T*384 + T]``.

    Eager torch (the lower layers, on each batch's longest text); ``name`` and ``dim`` make it usable as a
    ``FeatureCache`` key. Rows are ``[hidden [T, 384] flattened | mask [T]]``; padding positions hold
    zeros.

    Args:
        cfg: the text tower config (its ``train_layers`` and ``max_length``).
        backbone: a transformers ``BertModel`` (its lower layers are used); the bundled MiniLM if None.
    """

    def __init__(self, cfg: TextTowerConfig, backbone: Any | None = None) -> None:
        model = copy.deepcopy(backbone) if backbone is not None else _load_minilm()
        from transformers import AutoTokenizer

        from samestyle.models.text import minilm_path

        self.layer = MINILM_LAYERS - cfg.train_layers
        model.encoder.layer = model.encoder.layer[: self.layer]
        self._model = model.eval()
        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
        self.max_length = cfg.max_length
        self.name = f"all-minilm-l6-v2/torch/v1/{text_tower_input_kind(cfg)}"
        self.kind = text_tower_input_kind(cfg)
        self.dim = text_input_dim(cfg)
        self.shape = (self.dim,)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Flat cached rows ``[len(texts), T*384 + T]`` float32."""
        enc = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )  # padded to the batch's longest text, then zero-padded to T below (less compute)
        with torch.inference_mode():
            hidden = self._model(**enc).last_hidden_state  # [N, t, H]
            mask = enc["attention_mask"].to(hidden.dtype)  # [N, t]
            hidden = hidden * mask[:, :, None]
            extra = self.max_length - hidden.shape[1]
            hidden, mask = F.pad(hidden, (0, 0, 0, extra)), F.pad(mask, (0, extra))  # [N, T, H], [N, T]
        return torch.cat([hidden.flatten(1), mask], dim=1).numpy()  # [N, T*H + T]


__all__ = [
    "MINILM_DIM",
    "MINILM_LAYERS",
    "MiniLMHiddenStates",
    "TextFinetuneTower",
    "TextTowerConfig",
    "build_text_tower",
    "split_cached",
    "text_input_dim",
    "text_tower_input_kind",
]
