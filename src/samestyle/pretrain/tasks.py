"""Self-supervised pre-training tasks, one small class each (Kaleido-BERT / FashionBERT).

A step builds one ``Batch`` of ``2B`` rows (B matching pairs, then B mismatched ones), lets every task
``corrupt`` it in ``TASK_ORDER`` (recording its targets), runs the encoder once, and asks each task for
its ``loss``. Every corruption is applied to *all* rows, so the matching head cannot use "was this input
corrupted" as a shortcut; text-dependent losses (MLM) use the matching rows only.

Tasks here: ``ImageTextMatching`` (negatives: another product of the same sub-category, drawn by the
sampler), ``MaskedLanguageModel`` (random or alignment-guided masking), ``MaskedPatchModel`` (FashionBERT
MPM, any scale), ``Jigsaw`` (2x2 patch permutation), ``Camouflage`` (one 3x3 patch from another product)
and ``BlankToColor`` (masked 5x5 patches, feature regression). ``kaleido_tasks`` has ``Rotation`` (1x1)
and ``GreyToColor`` (4x4): they need features of rotated / grey photos (``Batch.extra``, computed by
``pretrain.transformed``), so they are opt-in (``AUX_TASK_NAMES``), not in the default ``TASK_NAMES``.
``category_task`` has the fine-tuning task ``CategoryTask`` ("category", ``FINETUNE_TASK_NAMES``): class
heads on [CLS] trained on the per-row labels ``Batch.labels``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samestyle.pretrain.model import Encoded
from samestyle.pretrain.patches import scale_slices


@dataclass
class Batch:
    """Inputs (mutated by ``corrupt``), labels and per-task targets of one step.

    ``tokens [N, T]``, ``patches [N, P, D]`` float32, ``align [N, T]`` token-patch alignment,
    ``match [N]`` float (1 for a matching pair), masks ``[N, T]`` / ``[N, P]`` bool, ``extra``: features
    of transformed images (e.g. ``aux_rot``), row n belonging to the image of row n.
    """

    tokens: Tensor
    patches: Tensor
    align: Tensor
    match: Tensor
    text_masked: Tensor = field(init=False)
    patch_masked: Tensor = field(init=False)
    targets: dict[str, Tensor] = field(default_factory=dict)
    extra: dict[str, Tensor] = field(default_factory=dict)
    """Per-row auxiliary inputs of the *image* side (``aux_*`` arrays of the data, by image row)."""
    bi: Tensor | None = None
    """``[N]`` the bi-encoder's cosine of each row's (image, text) pair, for residual matching."""
    labels: dict[str, Tensor] = field(default_factory=dict)
    """Per-row int64 class labels of the *image* product (``sub``, ``art``), for the ``category`` task."""

    def __post_init__(self) -> None:
        self.text_masked = torch.zeros_like(self.tokens, dtype=torch.bool)
        self.patch_masked = torch.zeros(self.patches.shape[:2], dtype=torch.bool)


class Task(nn.Module):
    """One pre-training task: its head, its input corruption and its loss."""

    name = "task"

    def corrupt(self, batch: Batch, gen: torch.Generator) -> None:
        """Change ``batch`` inputs in place and store targets under ``batch.targets``; default nothing."""

    def loss(self, enc: Encoded, batch: Batch) -> Tensor:
        raise NotImplementedError


class ImageTextMatching(Task):
    """Binary matching on [CLS]; ``score`` is the logit used for re-ranking.

    With ``residual`` the logit is ``head([CLS]) + exp(log_scale) * bi + bias``, ``bi`` the bi-encoder's
    cosine of the pair (``pretrain.joint``): the cross-encoder learns a correction to the bi-encoder
    instead of matching from scratch. ``init_scale`` is the initial multiplier of the cosine.

    With ``late`` a fine-grained term is added: ``w * mean over title tokens of max over patches of
    cos(t_proj(token output), p_proj(patch output))`` (a late-interaction "MaxSim" over the encoder's
    contextualised tokens), which gives matching a direct path from word pieces to image regions.
    """

    name = "itm"

    def __init__(
        self,
        width: int,
        residual: bool = False,
        init_scale: float = 10.0,
        late: bool = False,
        late_dim: int = 128,
    ) -> None:
        super().__init__()
        self.head = nn.Linear(width, 1)
        self.residual, self.late = residual, late
        if residual:
            nn.init.zeros_(self.head.weight)  # start as the bi-encoder: the correction grows from zero
            nn.init.zeros_(self.head.bias)
            self.log_scale = nn.Parameter(torch.tensor(float(init_scale)).log())
            self.bias = nn.Parameter(torch.tensor(0.0))
        if late:
            self.t_proj = nn.Linear(width, late_dim)
            self.p_proj = nn.Linear(width, late_dim)
            self.late_weight = nn.Parameter(torch.tensor(1.0))

    def late_score(self, enc: Encoded, pad: Tensor) -> Tensor:
        """``[N]`` mean over real title tokens (``~pad``) of their best cosine with any patch."""
        t = F.normalize(self.t_proj(enc.text), dim=-1)  # [N, T, d]
        p = F.normalize(self.p_proj(enc.patch), dim=-1)  # [N, P, d]
        best = torch.einsum("ntd,npd->ntp", t, p).amax(-1)  # [N, T]
        real = (~pad).float()
        return (best * real).sum(1) / real.sum(1).clamp(min=1.0)

    def score(self, enc: Encoded, bi: Tensor | None = None, pad: Tensor | None = None) -> Tensor:
        out = self.head(enc.cls).squeeze(-1)  # [N]
        if self.late:
            if pad is None:
                raise ValueError("late-interaction matching needs the title padding mask (tokens == 0)")
            out = out + self.late_weight * self.late_score(enc, pad)
        if not self.residual:
            return out
        if bi is None:
            from samestyle.errors import ConfigError

            raise ConfigError("residual matching needs the bi-encoder cosines (set data.joint_embeddings)")
        return out + self.log_scale.exp() * bi + self.bias

    def loss(self, enc: Encoded, batch: Batch) -> Tensor:
        return F.binary_cross_entropy_with_logits(self.score(enc, batch.bi, batch.tokens == 0), batch.match)


def gumbel_topk_mask(scores: Tensor, counts: Tensor, gen: torch.Generator) -> Tensor:
    """``[N, T]`` bool: per row ``counts[n]`` positions drawn without replacement, P ~ softmax(scores).

    ``-inf`` scores are never drawn (and reduce a row's count to its number of finite scores).
    """
    u = torch.rand(scores.shape, generator=gen).clamp(1e-9, 1 - 1e-9)
    keys = scores - torch.log(-torch.log(u))  # Gumbel-top-k = sampling without replacement
    rank = keys.argsort(dim=1, descending=True).argsort(dim=1)  # [N, T] rank of each position
    return (rank < counts[:, None]) & torch.isfinite(scores)


class MaskedLanguageModel(Task):
    """MLM over the local vocabulary; ``guided`` masks tokens with P ~ softmax(alignment / tau).

    Args:
        width, vocab: sizes. ratio: fraction of each title's tokens masked (at least one).
        guided: alignment-guided (Kaleido-BERT AGM) instead of uniform random masking.
        tau: temperature of the guided draw (small: the most aligned tokens almost always).
    """

    name = "mlm"

    def __init__(self, width: int, vocab: int, ratio: float = 0.15, guided: bool = False, tau: float = 0.05):
        super().__init__()
        self.head = nn.Sequential(
            nn.Linear(width, width), nn.GELU(), nn.LayerNorm(width), nn.Linear(width, vocab)
        )
        self.ratio, self.guided, self.tau = ratio, guided, tau

    def corrupt(self, batch: Batch, gen: torch.Generator) -> None:
        real = batch.tokens > 0
        counts = (real.sum(1).float() * self.ratio).round().clamp(min=1).long()
        scores = batch.align / self.tau if self.guided else torch.zeros_like(batch.align)
        scores = scores.masked_fill(~real, float("-inf"))
        mask = gumbel_topk_mask(scores, counts, gen)
        batch.targets[self.name] = batch.tokens.clone()
        batch.text_masked |= mask

    def loss(self, enc: Encoded, batch: Batch) -> Tensor:
        sel = batch.text_masked & (batch.match > 0)[:, None]  # [N, T]
        return F.cross_entropy(self.head(enc.text[sel]), batch.targets[self.name][sel])


class MaskedPatchModel(Task):
    """Masked patch modelling: regress the input features of masked patches of ``scales`` (squared L2).

    Args:
        width, patch_dim: sizes. ratio: fraction of the candidate patches masked per row (at least one).
        scales: scale indices (0 = 1x1 .. 4 = 5x5) whose patches may be masked; all when None.
    """

    name = "mpm"
    candidates: Tensor

    def __init__(self, width: int, patch_dim: int, ratio: float = 0.1, scales: tuple[int, ...] | None = None):
        super().__init__()
        self.head = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, patch_dim))
        self.ratio = ratio
        sl = scale_slices()
        idx = [
            i
            for s in (scales if scales is not None else range(len(sl)))
            for i in range(sl[s].start, sl[s].stop)
        ]
        self.register_buffer("candidates", torch.tensor(idx), persistent=False)

    def corrupt(self, batch: Batch, gen: torch.Generator) -> None:
        n, p = batch.patch_masked.shape
        scores = torch.full((n, p), float("-inf"))
        scores[:, self.candidates] = 0.0
        counts = torch.full((n,), max(1, round(self.ratio * len(self.candidates))), dtype=torch.long)
        mask = gumbel_topk_mask(scores, counts, gen) & ~batch.patch_masked
        batch.targets[self.name] = mask
        batch.targets[self.name + "/y"] = batch.patches.clone()
        batch.patch_masked |= mask

    def loss(self, enc: Encoded, batch: Batch) -> Tensor:
        sel = batch.targets[self.name]
        err = self.head(enc.patch[sel]) - batch.targets[self.name + "/y"][sel]  # [M, D]
        return err.pow(2).sum(-1).mean()  # squared distance per patch (patch rows have mean norm 1)


class BlankToColor(MaskedPatchModel):
    """Kaleido-BERT's blank-to-colour at the 5x5 scale: mask 10% of its 25 patches, regress their features."""

    name = "blank"

    def __init__(self, width: int, patch_dim: int, ratio: float = 0.1) -> None:
        super().__init__(width, patch_dim, ratio, scales=(4,))


class Jigsaw(Task):
    """Permute the four 2x2 patches and classify the order (24 classes, 0 = identity).

    With probability ``p_identity`` a row keeps its order (so clean inputs stay common), else a uniform
    one of the 24 orders.
    """

    name = "jigsaw"
    perms: Tensor

    def __init__(self, width: int, scale: int = 1, p_identity: float = 0.5) -> None:
        super().__init__()
        self.p_identity = p_identity
        self.slice = scale_slices()[scale]
        k = self.slice.stop - self.slice.start
        perms = torch.tensor(list(itertools.permutations(range(k))))  # [k!, k], row 0 identity
        self.register_buffer("perms", perms, persistent=False)
        self.head = nn.Linear(k * width, len(perms))

    def corrupt(self, batch: Batch, gen: torch.Generator) -> None:
        n = batch.tokens.shape[0]
        cls = torch.randint(len(self.perms), (n,), generator=gen)
        cls[torch.rand(n, generator=gen) < self.p_identity] = 0
        order = self.perms[cls] + self.slice.start  # [N, k]
        grid = batch.patches[torch.arange(n)[:, None], order]  # [N, k, D]
        batch.patches[:, self.slice] = grid
        batch.targets[self.name] = cls

    def loss(self, enc: Encoded, batch: Batch) -> Tensor:
        return F.cross_entropy(self.head(enc.patch[:, self.slice].flatten(1)), batch.targets[self.name])


class Camouflage(Task):
    """Replace one 3x3 patch with the same cell of another product (prob. ``p``); find it (or 'none')."""

    name = "camouflage"

    def __init__(self, width: int, scale: int = 2, p: float = 0.5) -> None:
        super().__init__()
        self.slice = scale_slices()[scale]
        self.p = p
        self.cell_head = nn.Linear(width, 1)
        self.none_head = nn.Linear(width, 1)

    def corrupt(self, batch: Batch, gen: torch.Generator) -> None:
        n = batch.tokens.shape[0]
        k = self.slice.stop - self.slice.start
        hit = torch.rand(n, generator=gen) < self.p
        cell = torch.randint(k, (n,), generator=gen)
        donor = (torch.arange(n) + 1 + torch.randint(max(n - 1, 1), (n,), generator=gen)) % n  # never itself
        rows = torch.arange(n)[hit]
        col = self.slice.start + cell[hit]
        batch.patches[rows, col] = batch.patches[donor[hit], col]
        batch.targets[self.name] = torch.where(hit, cell + 1, torch.zeros_like(cell))

    def loss(self, enc: Encoded, batch: Batch) -> Tensor:
        logits = torch.cat([self.none_head(enc.cls), self.cell_head(enc.patch[:, self.slice]).squeeze(-1)], 1)
        return F.cross_entropy(logits, batch.targets[self.name])


TASK_NAMES = ("itm", "mlm", "mpm", "jigsaw", "camouflage", "blank")
"""The default task set: needs only the prepared arrays."""
AUX_TASK_NAMES = ("rotation", "grey")
"""Opt-in tasks (``kaleido_tasks``) that need the ``aux_*`` arrays of ``pretrain.transformed``."""
FINETUNE_TASK_NAMES = ("category",)
"""Supervised fine-tuning tasks (``category_task``): they read ``Batch.labels``, corrupt nothing."""
TASK_ORDER = ("jigsaw", "camouflage", "rotation", "grey", "itm", "category", "mpm", "blank", "mlm")
"""Corruption order: patch re-arrangements first, then the transformed-photo swaps (1x1 rotated, 4x4
greyed: other grids than jigsaw / camouflage touch, so the aux rows still match), then masks (their
targets are the inputs after all of that; a swapped patch is never already hidden)."""


def build_tasks(
    names: tuple[str, ...],
    width: int,
    vocab: int,
    patch_dim: int,
    guided: bool,
    residual: bool = False,
    late: bool = False,
    n_classes: tuple[int, int] = (0, 0),
) -> nn.ModuleDict:
    """The tasks ``names`` (of ``TASK_NAMES``, ``AUX_TASK_NAMES``, ``FINETUNE_TASK_NAMES``) keyed by name,
    in ``TASK_ORDER``; ``n_classes`` = (subCategory, articleType) class counts of the ``category`` task."""
    from samestyle.pretrain import category_task, kaleido_tasks  # imported here: they import this module

    makers = {
        "itm": lambda: ImageTextMatching(width, residual=residual, late=late),
        "mlm": lambda: MaskedLanguageModel(width, vocab, guided=guided),
        "mpm": lambda: MaskedPatchModel(width, patch_dim),
        "jigsaw": lambda: Jigsaw(width),
        "camouflage": lambda: Camouflage(width),
        "blank": lambda: BlankToColor(width, patch_dim),
        "rotation": lambda: kaleido_tasks.Rotation(width),
        "grey": lambda: kaleido_tasks.GreyToColor(width, patch_dim),
        "category": lambda: category_task.CategoryTask(width, *n_classes),
    }
    unknown = set(names) - set(makers)
    if unknown:
        from samestyle.errors import ConfigError

        known = [*TASK_NAMES, *AUX_TASK_NAMES, *FINETUNE_TASK_NAMES]
        raise ConfigError(f"unknown pre-training task(s) {sorted(unknown)}; known: {known}")
    return nn.ModuleDict({n: makers[n]() for n in TASK_ORDER if n in names})
