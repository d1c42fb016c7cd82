"""Fine-tuned category recognition on the cross-encoder's [CLS]: subCategory and articleType heads.

``CategoryTask`` is a task like the pre-training ones (``tasks.Task``): no input corruption, and its loss
is the mean of two cross-entropies (subCategory, articleType) over the **matching** rows of a batch (a
mismatched row's title and photo belong to different products, so it has no single label). The labels
are ``Batch.labels["sub"]`` / ``["art"]`` (the image product's, filled by ``train.make_batch`` from the
prepared ``sub`` / ``art`` arrays). Select it with ``tasks = [..., "category"]``; it is weighted by the
run's multitask weighting like any other task. ``categories.head_predictions`` reads its predictions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samestyle.errors import ConfigError
from samestyle.pretrain.model import Encoded
from samestyle.pretrain.tasks import Batch, Task

LEVELS = ("sub", "art")
"""Label levels, in head order: subCategory, articleType (the prepared data's ``sub`` / ``art``)."""


class CategoryTask(Task):
    """Two linear heads on [CLS] (after dropout): ``n_sub`` subCategory and ``n_art`` articleType classes.

    Args:
        width: encoder width. n_sub, n_art: class counts (``CrossConfig.n_sub`` / ``n_art``, from the
            data). dropout: on [CLS] before the heads (training only).
    """

    name = "category"

    def __init__(self, width: int, n_sub: int, n_art: int, dropout: float = 0.1) -> None:
        super().__init__()
        if n_sub < 1 or n_art < 1:
            raise ConfigError(
                f"task 'category' needs the class counts (got n_sub={n_sub}, n_art={n_art}): the prepared "
                "data must have 'sub' / 'art' labels (pretrain.prepare), resolved into [model] n_sub / n_art"
            )
        self.drop = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({"sub": nn.Linear(width, n_sub), "art": nn.Linear(width, n_art)})

    def logits(self, cls: Tensor) -> dict[str, Tensor]:
        """``{"sub": [N, n_sub], "art": [N, n_art]}`` class logits of ``[CLS]`` outputs ``[N, W]``."""
        h = self.drop(cls)
        return {level: self.heads[level](h) for level in LEVELS}

    def loss(self, enc: Encoded, batch: Batch) -> Tensor:
        for level in LEVELS:
            if level not in batch.labels:
                raise ConfigError(f"task 'category' needs per-row '{level}' labels (Batch.labels)")
        keep = batch.match > 0
        logits = self.logits(enc.cls[keep])
        terms = [F.cross_entropy(logits[level], batch.labels[level][keep]) for level in LEVELS]
        return torch.stack(terms).mean()
