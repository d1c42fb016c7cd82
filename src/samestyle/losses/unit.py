"""The contrastive loss unit: named contrastive terms over image, text and image+text embeddings.

Following the eSSPR paper (Chen et al., WWW 2023, arXiv:2302.05093), one positive pair of products
(anchor, positive) has an image, a text and a fused (image+text) embedding on each side, and the unit
contrasts chosen combinations of them in the batch so all three land in one joint space. Which
combinations are active is ``ContrastiveConfig.pairs``, so an ablation is one config change:

- ``"a-b"``: anchor modality ``a`` against positive modality ``b`` (``"image-text"``: anchor images vs
  positive texts). Term name ``"nce/a-b"`` (InfoNCE) or ``"hinge/a-b"`` (cosine hinge).
- ``"within:a-b"``: each product's own ``a`` against its own ``b`` (image vs title of one product), over
  the anchor and positive sides together.

Regularisers (on an augmented view of the anchor side, e.g. embeddings of cropped images or dropped
title words) are ``"reg/self_distinct"`` and ``"reg/locality"``; see :mod:`samestyle.losses.functional`.
Rows whose modality is missing (``Embeddings.present``) are dropped from the terms that need it; a term
with no usable rows is a zero, so the returned keys are always exactly :attr:`ContrastiveUnit.term_names`.
The inputs, :class:`Embeddings`, are defined in :mod:`samestyle.losses.embeddings` (re-exported here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from samestyle.errors import ConfigError
from samestyle.losses.embeddings import Embeddings
from samestyle.losses.embeddings import HasEmbeddings as HasEmbeddings
from samestyle.losses.functional import (
    HINGE_REDUCTIONS,
    cosine_hinge,
    info_nce,
    locality_consistency,
    self_distinctiveness,
)
from samestyle.types import Modality

LOSS_FORMS = ("infonce", "hinge")
REGULARIZERS = ("self_distinct", "locality")
DEFAULT_PAIRS = (
    "image-image",
    "text-text",
    "fused-fused",
    "image-text",
    "text-image",
    "fused-image",
    "fused-text",
)
WITHIN = "within:"


def parse_pair(pair: str) -> tuple[bool, Modality, Modality]:
    """``"within:image-text"`` -> ``(True, IMAGE, TEXT)``; ``"fused-image"`` -> ``(False, FUSED, IMAGE)``."""
    within = pair.startswith(WITHIN)
    body = pair[len(WITHIN) :] if within else pair
    parts = body.split("-")
    known = [m.value for m in Modality]
    if len(parts) != 2 or parts[0] not in known or parts[1] not in known:
        raise ConfigError(f"contrastive pair '{pair}' is not 'a-b' or 'within:a-b' with a, b in {known}")
    a, b = Modality(parts[0]), Modality(parts[1])
    if within and a == b:
        raise ConfigError(f"contrastive pair '{pair}' compares a modality with itself within one product")
    return within, a, b


@dataclass(frozen=True)
class ContrastiveConfig:
    """Settings of :class:`ContrastiveUnit`; every field has a working default."""

    loss: str = "infonce"  # "infonce" (learned temperature) or "hinge" (the paper's cosine hinge)
    pairs: tuple[str, ...] = DEFAULT_PAIRS
    symmetric: bool = True  # average both retrieval directions of each term
    group_aware: bool = True  # same-style rows are never each other's negatives
    temperature_init: float = 0.07
    temperature_min: float = 0.01
    temperature_max: float = 1.0
    learn_temperature: bool = True
    margin: float = 0.2  # hinge margin (loss="hinge" and the hinge self-distinctiveness)
    hinge_reduction: str = "mean"  # "mean" over negatives or "hardest" (VSE++)
    regularizers: tuple[str, ...] = ()  # any of REGULARIZERS; they need an augmented anchor view
    reg_modalities: tuple[str, ...] = ("image", "text", "fused")  # averaged over those available
    locality_k: int = 10
    locality_margin: float = 0.0

    def __post_init__(self) -> None:
        if self.loss not in LOSS_FORMS:
            raise ConfigError(f"contrastive loss '{self.loss}' is unknown; use one of {LOSS_FORMS}")
        if self.hinge_reduction not in HINGE_REDUCTIONS:
            raise ConfigError(f"hinge_reduction '{self.hinge_reduction}' is unknown; use {HINGE_REDUCTIONS}")
        for pair in self.pairs:
            parse_pair(pair)
        if len(set(self.pairs)) != len(self.pairs):
            raise ConfigError(f"contrastive pairs repeat a name: {self.pairs}")
        bad = [r for r in self.regularizers if r not in REGULARIZERS]
        if bad:
            raise ConfigError(f"unknown regularizers {bad}; use any of {REGULARIZERS}")
        bad = [m for m in self.reg_modalities if m not in {x.value for x in Modality}]
        if bad:
            raise ConfigError(f"unknown reg_modalities {bad}; use any of image, text, fused")
        if not 0 < self.temperature_min <= self.temperature_init <= self.temperature_max:
            raise ConfigError("need 0 < temperature_min <= temperature_init <= temperature_max")
        if self.locality_k < 1:
            raise ConfigError(f"locality_k must be >= 1, got {self.locality_k}")


class ContrastiveUnit(nn.Module):
    """Computes the configured contrastive terms and regularisers as a ``dict[str, Tensor]``.

    Inputs:
        anchor, positive: :class:`Embeddings` of the two sides; row ``i`` of each is one positive pair.
        groups: ``[B]`` integer style-group ids (rows in one group are the same style).
        anchor_aug: augmented view of the anchor side; required when ``config.regularizers`` is set.

    Example:
        >>> unit = ContrastiveUnit(ContrastiveConfig(pairs=("image-text",)))
        >>> e = Embeddings(image=torch.eye(2), text=torch.eye(2))
        >>> sorted(unit(e, e, torch.tensor([0, 1])))
        ['nce/image-text']
    """

    def __init__(self, config: ContrastiveConfig | None = None) -> None:
        super().__init__()
        self.config = config or ContrastiveConfig()
        self.log_temperature: nn.Parameter | None = None
        if self.config.loss == "infonce":
            init = torch.tensor(math.log(self.config.temperature_init))
            self.log_temperature = nn.Parameter(init, requires_grad=self.config.learn_temperature)

    @property
    def term_names(self) -> tuple[str, ...]:
        """The keys :meth:`forward` returns, in order."""
        prefix = "nce" if self.config.loss == "infonce" else "hinge"
        names = [f"{prefix}/{pair}" for pair in self.config.pairs]
        names += [f"reg/{r}" for r in REGULARIZERS if r in self.config.regularizers]
        return tuple(names)

    def temperature(self) -> Tensor:
        """The current temperature; the log-parameter is clamped in place into [min, max] first."""
        if self.log_temperature is None:
            raise ConfigError("the hinge loss form has no temperature")
        with torch.no_grad():  # like open_clip's logit_scale clamp: keeps the parameter itself in range
            lo, hi = math.log(self.config.temperature_min), math.log(self.config.temperature_max)
            self.log_temperature.clamp_(lo, hi)
        return self.log_temperature.exp()

    def forward(
        self, anchor: Embeddings, positive: Embeddings, groups: Tensor, anchor_aug: Embeddings | None = None
    ) -> dict[str, Tensor]:
        cfg = self.config
        if cfg.regularizers and anchor_aug is None:
            raise ValueError(
                f"regularizers {cfg.regularizers} need anchor_aug (an augmented view of the anchor side); "
                "pass it or set ContrastiveConfig.regularizers=()"
            )
        _check_batch(groups, anchor, positive, anchor_aug)
        temperature = self.temperature() if self.log_temperature is not None else None
        pair_names = self.term_names[: len(cfg.pairs)]
        terms = {
            name: self._pair_term(pair, anchor, positive, groups, temperature)
            for name, pair in zip(pair_names, cfg.pairs, strict=True)
        }
        if cfg.regularizers and anchor_aug is not None:
            regs = self._regularizers(anchor, positive, anchor_aug, groups, temperature)
            terms.update({f"reg/{r}": regs[f"reg/{r}"] for r in REGULARIZERS if r in cfg.regularizers})
        return terms

    def _contrast(self, q: Tensor, k: Tensor, groups: Tensor, temperature: Tensor | None) -> Tensor:
        cfg = self.config
        if temperature is not None:
            return info_nce(q, k, groups, temperature, symmetric=cfg.symmetric, group_aware=cfg.group_aware)
        return cosine_hinge(
            q,
            k,
            groups,
            cfg.margin,
            reduction=cfg.hinge_reduction,
            symmetric=cfg.symmetric,
            group_aware=cfg.group_aware,
        )

    def _pair_term(
        self, pair: str, anchor: Embeddings, positive: Embeddings, groups: Tensor, temperature: Tensor | None
    ) -> Tensor:
        within, a, b = parse_pair(pair)
        sides = (anchor, positive) if within else (anchor,)
        qs, ks, gs = [], [], []
        for side in sides:
            other = side if within else positive
            q, k = side.get(a), other.get(b)
            rows_q, rows_k = side.rows(a), other.rows(b)
            if q is None or k is None or rows_q is None or rows_k is None:
                continue
            rows = rows_q & rows_k  # [B]
            qs.append(q[rows])
            ks.append(k[rows])
            gs.append(groups[rows])
        if not qs or sum(int(x.shape[0]) for x in qs) == 0:
            return _zero(groups, anchor, positive)
        return self._contrast(torch.cat(qs), torch.cat(ks), torch.cat(gs), temperature)

    def _regularizers(
        self,
        anchor: Embeddings,
        positive: Embeddings,
        anchor_aug: Embeddings,
        groups: Tensor,
        temperature: Tensor | None,
    ) -> dict[str, Tensor]:
        cfg = self.config
        distinct: list[Tensor] = []
        local: list[Tensor] = []
        for m in cfg.reg_modalities:
            z, z_aug, rows, rows_aug = anchor.get(m), anchor_aug.get(m), anchor.rows(m), anchor_aug.rows(m)
            if z is None or z_aug is None or rows is None or rows_aug is None:
                continue
            keep = rows & rows_aug  # [B]
            if int(keep.sum()) == 0:
                continue
            z, z_aug = z[keep], z_aug[keep]  # [b, D]
            if "self_distinct" in cfg.regularizers:
                g = groups[keep] if cfg.group_aware else None
                form, temp = ("hinge", 0.07) if temperature is None else ("infonce", temperature)
                distinct.append(self_distinctiveness(z, z_aug, temp, form=form, margin=cfg.margin, groups=g))
            if "locality" in cfg.regularizers:
                ref, ref_rows = positive.get(m), positive.rows(m)
                reference = None if ref is None or ref_rows is None else ref[ref_rows]  # [N, D]
                local.append(
                    locality_consistency(
                        z, z_aug, cfg.locality_k, reference=reference, margin=cfg.locality_margin
                    )
                )
        zero = _zero(groups, anchor, anchor_aug)
        return {
            "reg/self_distinct": torch.stack(distinct).mean() if distinct else zero,
            "reg/locality": torch.stack(local).mean() if local else zero,
        }


def _zero(groups: Tensor, *sides: Embeddings) -> Tensor:
    """A 0-d zero in the dtype of the embeddings (no rows could be used for this term)."""
    for side in sides:
        for m in Modality:
            emb = side.get(m)
            if emb is not None:
                return emb.new_zeros(())
    return torch.zeros((), device=groups.device)


def _check_batch(groups: Tensor, *sides: Embeddings | None) -> None:
    if groups.ndim != 1:
        raise ValueError(f"groups must be [B], got {tuple(groups.shape)}")
    batch = groups.shape[0]
    for side in sides:
        if side is None:
            continue
        for m in Modality:
            emb = side.get(m)
            if emb is not None and (emb.ndim != 2 or emb.shape[0] != batch):
                raise ValueError(f"{m.value} embeddings must be [{batch}, D], got {tuple(emb.shape)}")
            mask = side.present.get(m.value)
            if mask is not None and tuple(mask.shape) != (batch,):
                raise ValueError(f"present['{m.value}'] must be [{batch}], got {tuple(mask.shape)}")
