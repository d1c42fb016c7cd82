"""The two kaleido tasks that need features of transformed photos: rotation (1x1) and grey-to-colour (4x4).

Both read ``Batch.extra`` (the ``aux_*`` arrays of ``pretrain.transformed``, row n belonging to the
image of row n) and raise ``ConfigError`` when it lacks their array, naming how to make it.

- ``Rotation`` (Kaleido-BERT's RR, scale 0): with probability ``p`` a row's 1x1 patch input is replaced
  by the 1x1 feature of its photo rotated by 90, 180 or 270 degrees (uniform); a linear head on the
  encoder's 1x1 output classifies 4 classes (0 = upright). Rows whose 1x1 patch a later task masks are
  left out of the loss (a masked input shows no rotation).
- ``GreyToColor`` (G2CM, scale 3): a fraction ``ratio`` of the 16 4x4 patch inputs of every row (at least
  one) is replaced by the same cell of the grey photo; an MLP head regresses the original colour
  features from the encoder outputs at those cells (squared L2 per patch, as ``MaskedPatchModel``).

Corruption order (``tasks.TASK_ORDER``): both come after the re-arrangements (``jigsaw``, ``camouflage``;
these touch the 2x2 and 3x3 grids only, so the aux rows still belong to the image of their row) and
before the masking tasks (``mpm``, ``blank``), so a patch they change is not already hidden, and the
masked-patch targets are the inputs the encoder would have seen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samestyle.errors import ConfigError
from samestyle.pretrain.model import Encoded
from samestyle.pretrain.patches import scale_slices
from samestyle.pretrain.tasks import Batch, Task, gumbel_topk_mask

_HOW = (
    "compute it with 'python -m samestyle.pretrain.transformed --config <pretrain.toml>' "
    "(samestyle pretrain does it when the config's tasks include 'rotation' or 'grey')"
)


def aux_input(batch: Batch, key: str, task: str, k: int) -> Tensor:
    """``batch.extra[key]`` checked to be ``[N, k, D]``; ConfigError naming ``task`` otherwise."""
    if key not in batch.extra:
        raise ConfigError(f"task '{task}' needs the '{key}' array (features of transformed photos); {_HOW}")
    x = batch.extra[key]
    n, _, d = batch.patches.shape
    if tuple(x.shape) != (n, k, d):
        raise ConfigError(f"task '{task}': '{key}' has shape {tuple(x.shape)}, expected {(n, k, d)}")
    return x


class Rotation(Task):
    """Rotation recognition on the 1x1 patch: 4 classes (0 upright, 1/2/3 = 90/180/270 degrees ccw).

    Args:
        width: encoder width. p: probability that a row's 1x1 patch is rotated. scale: the 1x1 scale.
    """

    name = "rotation"

    def __init__(self, width: int, p: float = 0.5, scale: int = 0) -> None:
        super().__init__()
        self.p = p
        self.index = scale_slices()[scale].start
        self.head = nn.Linear(width, 4)

    def corrupt(self, batch: Batch, gen: torch.Generator) -> None:
        rot = aux_input(batch, "aux_rot", self.name, 3)  # [N, 3, D]
        n = rot.shape[0]
        cls = torch.randint(1, 4, (n,), generator=gen)
        cls[torch.rand(n, generator=gen) >= self.p] = 0
        rows = torch.nonzero(cls > 0).flatten()
        batch.patches[rows, self.index] = rot[rows, cls[rows] - 1].to(batch.patches.dtype)
        batch.targets[self.name] = cls

    def loss(self, enc: Encoded, batch: Batch) -> Tensor:
        keep = ~batch.patch_masked[:, self.index]  # [N]
        logits = self.head(enc.patch[keep, self.index])
        if not keep.any():  # every 1x1 input masked: nothing to recognise
            return logits.sum() * 0.0
        return F.cross_entropy(logits, batch.targets[self.name][keep])


class GreyToColor(Task):
    """Grey-to-colour on the 4x4 grid: grey some cells' inputs, regress their colour features.

    Args:
        width, patch_dim: sizes. ratio: fraction of the 16 cells greyed per row (at least one).
        scale: the 4x4 scale index.
    """

    name = "grey"

    def __init__(self, width: int, patch_dim: int, ratio: float = 0.25, scale: int = 3) -> None:
        super().__init__()
        self.slice = scale_slices()[scale]
        self.ratio = ratio
        self.head = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, patch_dim))

    def corrupt(self, batch: Batch, gen: torch.Generator) -> None:
        k = self.slice.stop - self.slice.start
        grey = aux_input(batch, "aux_grey", self.name, k)  # [N, k, D]
        n = grey.shape[0]
        count = max(1, round(self.ratio * k))
        cells = gumbel_topk_mask(torch.zeros(n, k), torch.full((n,), count, dtype=torch.long), gen)  # [N, k]
        sel = torch.zeros(batch.patch_masked.shape, dtype=torch.bool)
        sel[:, self.slice] = cells & ~batch.patch_masked[:, self.slice]
        batch.targets[self.name] = sel
        batch.targets[self.name + "/y"] = batch.patches.clone()  # the colour features
        grid = batch.patches[:, self.slice]
        batch.patches[:, self.slice] = torch.where(sel[:, self.slice, None], grey.to(grid.dtype), grid)

    def loss(self, enc: Encoded, batch: Batch) -> Tensor:
        sel = batch.targets[self.name]
        err = self.head(enc.patch[sel]) - batch.targets[self.name + "/y"][sel]  # [M, D]
        if not sel.any():  # every 4x4 cell was masked before greying
            return err.sum() * 0.0
        return err.pow(2).sum(-1).mean()
