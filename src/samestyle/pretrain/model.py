"""A small single-stream cross-modal transformer over [CLS] + title tokens + kaleido patch tokens.

Text tokens enter as *frozen* MiniLM word-piece embeddings (``token_table``, a buffer saved with the
model) projected to the width; patch tokens as their (PCA-reduced) features projected to the width.
Embeddings added: segment (CLS / text / image), text position, patch scale (0..4) and patch cell
(0..54). A masked text token / patch is replaced by a learned mask vector before those embeddings.

Example:
    >>> cfg = CrossConfig(width=32, layers=1, heads=2, ff=64, patch_dim=8, vocab=10, max_tokens=4)
    >>> m = CrossEncoder(cfg, torch.randn(10, 384))
    >>> enc = m(torch.tensor([[3, 4, 0, 0]]), torch.randn(1, 55, 8))
    >>> enc.cls.shape, enc.text.shape, enc.patch.shape
    (torch.Size([1, 32]), torch.Size([1, 4, 32]), torch.Size([1, 55, 32]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from samestyle.pretrain.patches import patch_layout


@dataclass(frozen=True)
class CrossConfig:
    """Sizes of the cross-encoder; ``patch_dim``, ``vocab``, ``max_tokens`` (and the class counts
    ``n_sub`` / ``n_art`` of the ``category`` head, 0 without labels) come from the data."""

    width: int = 256
    layers: int = 2
    heads: int = 4
    ff: int = 512
    dropout: float = 0.1
    max_tokens: int = 24
    patch_dim: int = 256
    text_dim: int = 384
    vocab: int = 0
    n_sub: int = 0
    n_art: int = 0


@dataclass
class Encoded:
    """Transformer outputs: ``cls [B, W]``, ``text [B, T, W]``, ``patch [B, P, W]``."""

    cls: Tensor
    text: Tensor
    patch: Tensor


class CrossEncoder(nn.Module):
    """Single-stream transformer; ``forward`` takes local token ids (0 = padding) and patch features."""

    token_table: Tensor
    scale_ids: Tensor
    cell_ids: Tensor

    def __init__(self, cfg: CrossConfig, token_table: Tensor) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.register_buffer("token_table", token_table.float().clone())  # [U, text_dim], frozen
        scale_ids, cell_ids = patch_layout()
        self.register_buffer("scale_ids", torch.from_numpy(scale_ids), persistent=False)
        self.register_buffer("cell_ids", torch.from_numpy(cell_ids), persistent=False)
        self.text_proj = nn.Linear(cfg.text_dim, w)
        self.patch_proj = nn.Linear(cfg.patch_dim, w)
        self.cls_token = nn.Parameter(torch.randn(w) * 0.02)
        self.text_mask_token = nn.Parameter(torch.randn(w) * 0.02)
        self.patch_mask_token = nn.Parameter(torch.randn(w) * 0.02)
        self.segment = nn.Embedding(3, w)
        self.position = nn.Embedding(cfg.max_tokens, w)
        self.scale = nn.Embedding(int(scale_ids.max()) + 1, w)
        self.cell = nn.Embedding(len(cell_ids), w)
        self.ln_in = nn.LayerNorm(w)
        self.drop = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(
            w, cfg.heads, cfg.ff, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.ln_out = nn.LayerNorm(w)
        for emb in (self.segment, self.position, self.scale, self.cell):
            # BERT's init. nn.Embedding's default N(0, 1) made these ~30x the content projections, so after
            # ln_in every input looked the same and the outputs collapsed (std across products ~0.005)
            nn.init.normal_(emb.weight, std=0.02)

    def forward(
        self,
        tokens: Tensor,
        patches: Tensor,
        text_masked: Tensor | None = None,
        patch_masked: Tensor | None = None,
    ) -> Encoded:
        """Args: ``tokens [B, T]`` int64, ``patches [B, P, D]``, optional masks ``[B, T]``, ``[B, P]``."""
        b, t = tokens.shape
        pad = tokens == 0  # [B, T]
        txt = self.text_proj(self.token_table[tokens])  # [B, T, W]
        if text_masked is not None:
            txt = torch.where(text_masked[..., None], self.text_mask_token, txt)
        txt = txt + self.position.weight[:t] + self.segment.weight[1]
        img = self.patch_proj(patches.float())  # [B, P, W]
        if patch_masked is not None:
            img = torch.where(patch_masked[..., None], self.patch_mask_token, img)
        img = img + self.scale(self.scale_ids) + self.cell(self.cell_ids) + self.segment.weight[2]
        cls = (self.cls_token + self.segment.weight[0]).expand(b, 1, -1)  # [B, 1, W]
        x = self.drop(self.ln_in(torch.cat([cls, txt, img], dim=1)))  # [B, 1 + T + P, W]
        keep_pad = torch.zeros(b, 1 + t + img.shape[1], dtype=torch.bool, device=tokens.device)
        keep_pad[:, 1 : 1 + t] = pad
        h = self.ln_out(self.encoder(x, src_key_padding_mask=keep_pad))
        return Encoded(h[:, 0], h[:, 1 : 1 + t], h[:, 1 + t :])
