"""Supervised category terms on the joint embeddings: a cosine classifier per category level.

The contrastive unit learns the joint space from positive pairs only; these terms add the catalogue's
own category labels (e.g. Myntra's subCategory and articleType, ``category2`` / ``category3``) as a
multitask signal, as FashionBERT trains its matching and masked-token tasks side by side. Each level has
one weight vector per class (the class "prototype" in the joint space); logits are ``scale`` times the
cosine between an embedding and each prototype (the embeddings are already L2-normalised), and the term
is the cross-entropy averaged over the configured outputs (image, text, fused; image rows only where the
product has an image). Terms come back named ``cls/<level>``, so every weighting handles them like the
contrastive terms (``weights = {"cls/*" = 0.5}`` in a run config scales them).

The same prototypes are the category head at inference: :meth:`CategoryHeads.predict` labels any joint
vectors (a product's fused embedding, a photo's image embedding, a query's text embedding).

Example:
    >>> heads = CategoryHeads(4, {"category2": ["Shoes", "Topwear"]})
    >>> heads.targets(np.array(["Topwear", "Bags"]), "category2").tolist()  # unseen -> ignored
    [1, -1]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samestyle.errors import ConfigError

OUTPUTS = ("image", "text", "fused")


@dataclass(frozen=True)
class CategoryConfig:
    """``[category]`` of a run config. Off when ``levels`` is empty (the default recipe).

    Args:
        levels: label levels to supervise, e.g. ``["category2", "category3"]`` (Myntra subCategory and
            articleType). Classes are the train split's distinct non-empty values; labels unseen in
            training are ignored.
        on: the joint outputs each term is computed on (any of image, text, fused).
        scale: logits = scale x cosine(embedding, class prototype).
    """

    levels: tuple[str, ...] = ()
    on: tuple[str, ...] = OUTPUTS
    scale: float = 16.0

    def __post_init__(self) -> None:
        bad = [o for o in self.on if o not in OUTPUTS]
        if bad or not self.on:
            raise ConfigError(f"category.on must list some of {OUTPUTS}, not {list(self.on)}")
        if self.scale <= 0:
            raise ConfigError(f"category.scale must be > 0, not {self.scale}")


class CategoryHeads(nn.Module):
    """One cosine classifier per level over ``dim``-d joint vectors; ``forward`` returns named terms."""

    def __init__(
        self, dim: int, classes: Mapping[str, Sequence[str]], cfg: CategoryConfig | None = None
    ) -> None:
        super().__init__()
        self.cfg = cfg or CategoryConfig(levels=tuple(classes))
        self.classes = {level: [str(c) for c in names] for level, names in classes.items()}
        for level, names in self.classes.items():
            if len(names) < 2:
                raise ConfigError(f"category level {level!r} has {len(names)} class(es) in train; needs 2+")
        self._index = {level: {c: i for i, c in enumerate(n)} for level, n in self.classes.items()}
        g = torch.Generator().manual_seed(0)
        self.prototypes = nn.ParameterDict(
            {
                level: nn.Parameter(torch.randn(len(n), dim, generator=g) * 0.02)
                for level, n in self.classes.items()
            }
        )

    @property
    def term_names(self) -> tuple[str, ...]:
        return tuple(f"cls/{level}" for level in self.classes)

    def targets(self, labels: np.ndarray, level: str) -> Tensor:
        """Label strings -> class indices (-1 for a label the heads do not know)."""
        index = self._index[level]
        return torch.tensor([index.get(str(v), -1) for v in labels], dtype=torch.int64)

    def logits(self, x: Tensor, level: str) -> Tensor:
        return self.cfg.scale * F.normalize(x, dim=-1) @ F.normalize(self.prototypes[level], dim=-1).T

    def forward(
        self, outputs: Mapping[str, Tensor | None], targets: Mapping[str, Tensor], image_present: Tensor
    ) -> dict[str, Tensor]:
        """``outputs``: joint embeddings by name (``[B, dim]``); ``targets``: ``[B]`` class indices a level
        (-1 = no label). Returns ``{"cls/<level>": mean cross-entropy over the configured outputs}``."""
        terms: dict[str, Tensor] = {}
        for level in self.classes:
            y = targets[level]
            losses = []
            for name in self.cfg.on:
                x = outputs.get(name)
                if x is None:
                    continue
                keep = y >= 0
                if name == "image":
                    keep = keep & image_present.bool()
                if bool(keep.any()):
                    losses.append(F.cross_entropy(self.logits(x[keep], level), y[keep]))
            # a batch without any known label still returns the term (weightings expect every name)
            terms[f"cls/{level}"] = torch.stack(losses).mean() if losses else self.prototypes[level].sum() * 0
        return terms

    @torch.no_grad()
    def predict(self, x: np.ndarray, level: str, batch: int = 8192) -> np.ndarray:
        """The class name of each row of ``x`` (``[N, dim]`` joint vectors)."""
        names = np.asarray(self.classes[level])
        out = [
            self.logits(torch.from_numpy(np.asarray(x[i : i + batch], np.float32)), level).argmax(1).numpy()
            for i in range(0, len(x), batch)
        ]
        return names[np.concatenate(out)] if out else names[:0]


CLASSES_FILE = "category.json"
PREFIX = "category."
"""The heads' tensors live in the run's ``model.safetensors`` under this prefix, so the best epoch's model
and heads are one file, replaced whole (a crash cannot pair a new model with old heads)."""


def write_classes(heads: CategoryHeads, run_dir: Path) -> None:
    """``category.json``: the class names per level and the logit scale (fixed for the whole run)."""
    from samestyle.fsio import write_json

    write_json(run_dir / CLASSES_FILE, {"classes": heads.classes, "scale": heads.cfg.scale})


def head_tensors(heads: CategoryHeads | None) -> dict[str, Tensor]:
    """The tensors to save beside the model's (``category.prototypes.<level>``); none without heads."""
    if heads is None:
        return {}
    return {PREFIX + k: v.detach().contiguous() for k, v in heads.state_dict().items()}


def load_heads(run_dir: Path) -> CategoryHeads | None:
    """The run's category heads, or None for a run trained without ``[category]``."""
    model_file = run_dir / "model.safetensors"
    if not (run_dir / CLASSES_FILE).exists() or not model_file.exists():
        return None
    from safetensors.torch import load_file

    from samestyle.fsio import read_json

    meta = read_json(run_dir / CLASSES_FILE)
    state = {k[len(PREFIX) :]: v for k, v in load_file(str(model_file)).items() if k.startswith(PREFIX)}
    if not state:
        return None
    dim = int(next(iter(state.values())).shape[1])
    cfg = CategoryConfig(tuple(meta["classes"]), scale=float(meta["scale"]))
    heads = CategoryHeads(dim, meta["classes"], cfg)
    heads.load_state_dict(state)
    return heads.eval()
