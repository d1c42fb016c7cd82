"""The inputs of the contrastive unit: one side of a batch of positive pairs, per modality.

:class:`Embeddings` holds ``[B, D]`` image, text and fused embeddings with optional per-row
``present`` masks; :class:`HasEmbeddings` is any model output it can wrap (:meth:`Embeddings.of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from samestyle.types import Modality


class HasEmbeddings(Protocol):
    """Anything with ``image``/``text``/``fused`` attributes, e.g. ``samestyle.models.joint.JointOutput``."""

    @property
    def image(self) -> Tensor | None: ...
    @property
    def text(self) -> Tensor | None: ...
    @property
    def fused(self) -> Tensor | None: ...


@dataclass(frozen=True, eq=False)
class Embeddings:
    """One side of a batch: ``[B, D]`` L2-normalised embeddings per modality (``None`` when absent).

    ``present`` maps a modality name to a ``[B]`` bool mask of the rows that really have it (a product
    without an image); a modality not in ``present`` is present on every row.
    """

    image: Tensor | None = None
    text: Tensor | None = None
    fused: Tensor | None = None
    present: Mapping[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.present) - {m.value for m in Modality})
        if unknown:
            raise ValueError(f"Embeddings.present has unknown modalities {unknown}; use image, text, fused")

    @classmethod
    def of(cls, output: HasEmbeddings, present: Mapping[str, Tensor] | None = None) -> Embeddings:
        """Wrap a model output (``JointOutput``-like) with optional per-modality ``present`` masks."""
        return cls(image=output.image, text=output.text, fused=output.fused, present=dict(present or {}))

    def get(self, modality: Modality | str) -> Tensor | None:
        """The ``[B, D]`` embeddings of ``modality``, or ``None``."""
        value: Tensor | None = getattr(self, Modality(modality).value)
        return value

    def rows(self, modality: Modality | str) -> Tensor | None:
        """``[B]`` bool mask of rows that have ``modality``; ``None`` when the modality is absent."""
        emb = self.get(modality)
        if emb is None:
            return None
        mask = self.present.get(Modality(modality).value)
        if mask is None:
            return torch.ones(emb.shape[0], dtype=torch.bool, device=emb.device)
        return mask.to(device=emb.device, dtype=torch.bool)


__all__ = ["Embeddings", "HasEmbeddings"]
