"""Text towers: the top MiniLM layers, trainable, run on cached token-level hidden states.

The text twin of ``models.towers``. all-MiniLM-L6-v2 has 6 transformer layers; a "finetune" tower with
``train_layers=k`` caches the hidden states after layer ``6-k`` (``hidden{6-k}``), padded or truncated
to ``max_length`` word pieces, plus the attention mask, and runs layers ``6-k+1..6`` (pretrained init,
trainable) + mean pooling over real tokens + L2 norm: exactly the frozen encoder's output at init.

One cached row is flat float16 ``[T * 384 + T]``: the ``[T, 384]`` hidden states, then the ``[T]`` mask
(0/1). At ``T=32`` that is 24.6 KB a product (~1.1 GB for 44k products). Myntra titles are short (a
median of 10 word pieces, at most 21 in 2,000 products), so 32 truncates none of them; the tower trims
each batch to its longest real text, so short titles cost little compute.

In a run (``[text_tower]`` of the run config), training reads the cached rows of every product
(``train.run.text_tower_features``), the run's ``model.safetensors`` holds the trained layers, and a
query-time text goes through ``MiniLMHiddenStates`` then the tower, exactly as a catalogue text.

Example:
    >>> cfg = TextTowerConfig(kind="finetune", train_layers=1)
    >>> text_tower_input_kind(cfg)
    'hidden5-t32'
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from samestyle.errors import ConfigError, SamestyleError

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
        lr_scale: learning-rate multiplier for the pretrained layers (the trainer applies it).
        model_path: a transformers folder with a 6-layer, 384-d BERT (and its tokenizer) to use instead of
            the bundled all-MiniLM-L6-v2 ("" = bundled); tests use a tiny random one.
    """

    kind: Literal["pooled", "finetune"] = "pooled"
    train_layers: int = 1
    max_length: int = 32
    normalize: bool = True
    dtype: Literal["float16", "float32"] = "float16"
    lr_scale: float = 0.1
    model_path: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("pooled", "finetune"):
            raise ConfigError(f"text tower kind must be 'pooled' or 'finetune', got {self.kind!r}")
        if not 1 <= self.train_layers <= MINILM_LAYERS:
            raise ConfigError(f"train_layers must be in 1..{MINILM_LAYERS}, got {self.train_layers}")
        if self.max_length < 2:
            raise ConfigError(f"max_length must be at least 2, got {self.max_length}")
        if self.dtype not in ("float16", "float32"):
            raise ConfigError(f"text tower dtype must be 'float16' or 'float32', got {self.dtype!r}")


def text_tower_input_kind(cfg: TextTowerConfig) -> str:
    """The cached input a text tower needs: "pooled" or ``f"hidden{layer}-t{max_length}"``."""
    if cfg.kind == "pooled":
        return "pooled"
    return f"hidden{MINILM_LAYERS - cfg.train_layers}-t{cfg.max_length}"


def text_input_dim(cfg: TextTowerConfig) -> int:
    """Flattened length of one cached row: ``T * 384 + T`` (finetune) or 384 (pooled)."""
    return MINILM_DIM if cfg.kind == "pooled" else cfg.max_length * (MINILM_DIM + 1)


def _folder(cfg: TextTowerConfig) -> Path:
    from samestyle.models.text import minilm_path

    return Path(cfg.model_path) if cfg.model_path else minilm_path()


def _load_minilm(folder: Path | None = None) -> Any:
    from transformers import AutoModel

    from samestyle.models.text import _quiet_transformers, minilm_path

    with _quiet_transformers():
        return AutoModel.from_pretrained(str(folder or minilm_path()), local_files_only=True).float().eval()


def _checked_backbone(backbone: Any, where: str) -> Any:
    """The backbone, if it is a 6-layer 384-d BERT (what the cached rows and the heads assume)."""
    layers, dim = len(backbone.encoder.layer), int(backbone.config.hidden_size)
    if layers != MINILM_LAYERS or dim != MINILM_DIM:
        raise ConfigError(
            f"{where}: the text tower needs a {MINILM_LAYERS}-layer, {MINILM_DIM}-d MiniLM-like model, "
            f"got {layers} layers of {dim}-d; set text_tower.model_path to such a folder (or leave it empty)"
        )
    return backbone


def split_cached(x: torch.Tensor, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat cached batch ``[B, T*H + T]`` -> hidden ``[B, T, H]`` float32 and mask ``[B, T]`` float32."""
    t = max_length
    hidden = x[:, :-t].reshape(x.shape[0], t, -1).float()  # [B, T, H]
    return hidden, x[:, -t:].float()  # [B, T, H], [B, T]


class TextFinetuneTower(nn.Module):
    """Top ``train_layers`` BERT layers of MiniLM + masked mean pooling (+ L2 norm).

    Args:
        cfg: the text tower config (kind "finetune").
        backbone: a transformers ``BertModel`` to copy the layers from; the model at ``cfg.model_path``
            (the bundled MiniLM by default) when None.

    Inputs: cached rows ``[B, T*384 + T]`` (float16 or float32). Returns ``[B, 384]`` float32.
    """

    def __init__(self, cfg: TextTowerConfig, backbone: Any | None = None) -> None:
        super().__init__()
        if backbone is None:
            backbone = _checked_backbone(_load_minilm(_folder(cfg)), str(_folder(cfg)))
        self.cfg = cfg
        start = MINILM_LAYERS - cfg.train_layers
        self.layers = nn.ModuleList(copy.deepcopy(list(backbone.encoder.layer[start:])))
        self.width = cfg.max_length * (int(backbone.config.hidden_size) + 1)  # one cached row

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.width:
            raise SamestyleError(
                f"the text tower reads cached MiniLM hidden states [B, {self.width}] "
                f"({text_tower_input_kind(self.cfg)}), got {list(x.shape)}: a run with a text tower needs "
                "its own text inputs (train.run.text_tower_features / MiniLMHiddenStates), not frozen vectors"
            )
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


def text_tower_param_groups(tower: nn.Module, lr: float, cfg: TextTowerConfig) -> list[dict[str, Any]]:
    """One optimizer group: the pretrained layers at ``lr * cfg.lr_scale`` (carrying ``lr_scale``)."""
    params = [p for p in tower.parameters() if p.requires_grad]
    return [{"params": params, "lr": lr * cfg.lr_scale, "lr_scale": cfg.lr_scale}] if params else []


class MiniLMHiddenStates:
    """MiniLM cut after layer ``6 - train_layers``: texts -> flat cached rows ``[N, T*384 + T]``.

    Eager torch (the lower layers, on each batch's longest text); ``name`` and ``dim`` make it usable as a
    ``FeatureCache`` key. Rows are ``[hidden [T, 384] flattened | mask [T]]``; padding positions hold
    zeros.

    Args:
        cfg: the text tower config (its ``train_layers`` and ``max_length``).
        backbone: a transformers ``BertModel`` (its lower layers are used); the model at
            ``cfg.model_path`` (the bundled MiniLM by default) if None. The tokenizer always comes from
            that folder.
    """

    def __init__(self, cfg: TextTowerConfig, backbone: Any | None = None) -> None:
        from transformers import AutoTokenizer

        from samestyle.models.text import _is_bundled

        folder = _folder(cfg)
        if backbone is None:
            model = _checked_backbone(_load_minilm(folder), str(folder))
        else:
            model = copy.deepcopy(backbone)
        self.layer = MINILM_LAYERS - cfg.train_layers
        model.encoder.layer = model.encoder.layer[: self.layer]
        self._model = model.eval()
        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.max_length = cfg.max_length
        # another checkpoint: its own cache key (folder name + a hash of its absolute path)
        tag = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:8]
        base = "all-minilm-l6-v2" if _is_bundled(folder) else f"{folder.name}-{tag}"
        self.name = f"{base}/torch/v1/{text_tower_input_kind(cfg)}"
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

    def encode_many(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Rows of any number of texts, input order, float16 ``[N, T*384 + T]``: what the catalogue
        cache stores (``features.activations.extract_text_hidden``), so a query text gets the same input."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float16)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            out[idx] = self.encode([texts[i] for i in idx]).astype(np.float16)
        return out


def write_tiny_minilm(folder: Path, words: Sequence[str], seed: int = 0) -> Path:
    """A random MiniLM-shaped model folder (6 layers, 384-d, 4 heads, small FFN) with a word-level BERT
    tokenizer over ``words``: ``text_tower.model_path`` for fast tests, no download. Returns ``folder``."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted({w.lower() for w in words})]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=MINILM_DIM, num_hidden_layers=MINILM_LAYERS,
        num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    with torch.random.fork_rng():  # deterministic weights, the caller's RNG untouched
        torch.manual_seed(seed)
        BertModel(config).save_pretrained(str(folder))
    return folder


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
    "text_tower_param_groups",
    "write_tiny_minilm",
]
