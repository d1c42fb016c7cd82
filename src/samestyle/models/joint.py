"""The unified model: trainable heads on frozen backbone features -> one joint space.

``JointModel`` maps an image feature and a text feature of a product to three L2-normalised vectors in
the same space: ``image``, ``text`` and ``fused`` (image+text). Any of them can query any other.
The image input goes through an *image tower* first: identity on the cached pooled vector, or a
trainable adaptation over cached backbone activations. The text input likewise goes through a *text
tower*: identity on the frozen sentence vector, or the top MiniLM layers over cached hidden states
(``models.text_towers``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

FUSIONS = ("sum", "gated", "mlp", "attention")


@dataclass(frozen=True)
class JointConfig:
    """Heads and fusion. ``image_dim``/``text_dim`` are the tower/backbone output sizes."""

    image_dim: int = 1280
    text_dim: int = 384
    dim: int = 256
    hidden: int = 1024
    fusion: str = "gated"
    dropout: float = 0.1


@dataclass(frozen=True)
class JointOutput:
    """Named embeddings, each ``[B, dim]`` and L2-normalised (rows of absent inputs are zero)."""

    image: torch.Tensor | None
    text: torch.Tensor | None
    fused: torch.Tensor | None


class Projection(nn.Module):
    """Two-layer MLP with a linear shortcut: features -> joint space (unnormalised)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim)
        )
        self.shortcut = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        return self.mlp(x) + self.shortcut(x)  # [B, out_dim]


class Fusion(nn.Module):
    """image+text -> one vector. ``sum``: mean of the two; ``gated``: per-dimension learned gate;
    ``mlp``: MLP over the concatenation plus the mean; ``attention``: a learned query attends to the
    two modality tokens. Where the image is absent the fused vector is the text vector."""

    def __init__(self, kind: str, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        if kind not in FUSIONS:
            raise ValueError(f"unknown fusion '{kind}' (known: {', '.join(FUSIONS)})")
        self.kind = kind
        if kind == "gated":
            self.gate = nn.Linear(2 * dim, dim)
        elif kind == "mlp":
            self.mlp = nn.Sequential(
                nn.Linear(2 * dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
            )
        elif kind == "attention":
            self.query = nn.Parameter(torch.randn(dim) * dim**-0.5)
            self.attn = nn.MultiheadAttention(dim, num_heads=4, dropout=dropout, batch_first=True)

    def forward(self, img: torch.Tensor, txt: torch.Tensor, img_present: torch.Tensor) -> torch.Tensor:
        # img, txt: [B, D] normalised; img_present: bool [B]
        both = torch.cat([img, txt], dim=-1)  # [B, 2D]
        if self.kind == "sum":
            fused = img + txt
        elif self.kind == "gated":
            g = torch.sigmoid(self.gate(both))  # [B, D]
            fused = g * img + (1 - g) * txt
        elif self.kind == "mlp":
            fused = (img + txt) / 2 + self.mlp(both)
        else:
            tokens = torch.stack([img, txt], dim=1)  # [B, 2, D]
            q = self.query.expand(img.shape[0], 1, -1)  # [B, 1, D]
            fused = self.attn(q, tokens, tokens, need_weights=False)[0].squeeze(1) + (img + txt) / 2
        return torch.where(img_present[:, None], fused, txt)


class JointModel(nn.Module):
    """Image and text towers + image/text projections + fusion. Call with cached features.

    Args:
        cfg: heads and fusion; ``text_dim`` must be the text tower's output size.
        image_tower: maps the cached image input to ``[B, image_dim]``; identity when None.
        text_tower: maps the cached text input to ``[B, text_dim]``; identity when None.
    """

    def __init__(
        self, cfg: JointConfig, image_tower: nn.Module | None = None, text_tower: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.image_tower = image_tower if image_tower is not None else nn.Identity()
        self.text_tower = text_tower if text_tower is not None else nn.Identity()
        self.image_proj = Projection(cfg.image_dim, cfg.hidden, cfg.dim, cfg.dropout)
        self.text_proj = Projection(cfg.text_dim, cfg.hidden, cfg.dim, cfg.dropout)
        self.fusion = Fusion(cfg.fusion, cfg.dim, cfg.hidden, cfg.dropout)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_proj(self.image_tower(image)), dim=-1)  # [B, D]

    @property
    def has_text_tower(self) -> bool:
        """True when the text input is not the frozen sentence vector itself (a trainable text tower)."""
        return not isinstance(self.text_tower, nn.Identity)

    def encode_text(self, text: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
        """Text tower input ``[B, ...]`` -> ``[B, D]``; ``dropout`` (training views) on the tower output."""
        feats = self.text_tower(text)  # [B, text_dim]
        if dropout > 0:
            feats = F.dropout(feats, dropout)
        return F.normalize(self.text_proj(feats), dim=-1)  # [B, D]

    def forward(
        self,
        image: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        image_present: torch.Tensor | None = None,
        *,
        text_dropout: float = 0.0,
    ) -> JointOutput:
        """Args: ``image`` image tower input ``[B, ...]``, ``text`` text tower input ``[B, ...]``
        (``[B, text_dim]`` without a text tower), ``image_present`` ``[B]``, ``text_dropout`` feature dropout
        on the text tower's output (the trainer's augmented view when the tower input is not a vector)."""
        img = self.encode_image(image) if image is not None else None
        txt = self.encode_text(text, text_dropout) if text is not None else None
        if img is not None and image_present is not None:
            img = img * image_present[:, None].to(img.dtype)
        fused = None
        if img is not None and txt is not None:
            present = (
                image_present if image_present is not None else torch.ones(img.shape[0], dtype=torch.bool)
            )
            fused = F.normalize(self.fusion(img, txt, present), dim=-1)
        return JointOutput(image=img, text=txt, fused=fused)
