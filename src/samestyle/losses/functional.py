"""Pure contrastive loss functions on L2-normalised embeddings ``[B, D]`` and style-group labels ``[B]``.

Every function here is stateless: tensors in, one scalar tensor out. Row ``i`` of ``q`` and row ``i`` of
``k`` are a positive pair; ``groups[i]`` is the style group of pair ``i``. Two rows with the same group are
the same style, so with ``group_aware=True`` they are never used as each other's negatives (they are
removed, not treated as positives).

Source of the forms (the eSSPR paper, Chen et al., "Unified Vision-Language Representation Modeling for
E-Commerce Same-Style Products Retrieval", WWW 2023 industry track, arXiv:2302.05093; the authors' loss
code is ``model_implement_details/loss.py`` in github.com/benchen4395/esspr_alibaba.com):

- product-to-product matching (PPM) is a cosine hinge over the in-batch similarity matrix,
  ``mean_j max(0, m - cos(q_i, k_i) + cos(q_i, k_j))``, one direction (anchor -> positive), averaged over
  all ``B`` columns with the zero diagonal term included; no group masking. :func:`cosine_hinge` averages
  over the valid negatives only (``B - 1`` without duplicates), masks same-group columns, and can also
  take the hardest negative (VSE++) and average both directions.
- product self-distinctiveness (PDC) is the same hinge between an augmented view (rows) and the
  originals (columns). :func:`self_distinctiveness` offers that form and an InfoNCE form.
- locality consistency takes each original's top-k (k=10 in the code) most similar positive-side
  embeddings and penalises ``max(0, (cos(z_i, r_j) - cos(z'_i, r_j))^2 - margin)`` averaged over them.
  :func:`locality_consistency` implements exactly that; with no ``reference`` it uses the batch itself.

:func:`info_nce` is the CLIP-style symmetric cross-entropy with group-aware masking; it is not in the
eSSPR code and is offered as the default form of :class:`samestyle.losses.ContrastiveUnit`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from samestyle.errors import ConfigError

HINGE_REDUCTIONS = ("mean", "hardest")
SELF_DISTINCT_FORMS = ("infonce", "hinge")


def group_mask(groups_a: Tensor, groups_b: Tensor) -> Tensor:
    """``[Ba, Bb]`` bool: ``True`` where row ``i`` of a and row ``j`` of b are in the same style group.

    Example:
        >>> group_mask(torch.tensor([0, 1, 0]), torch.tensor([0, 1, 0])).int().tolist()
        [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    """
    return groups_a.reshape(-1, 1) == groups_b.reshape(1, -1)  # [Ba, Bb]


def info_nce(
    q: Tensor,
    k: Tensor,
    groups: Tensor | None = None,
    temperature: float | Tensor = 0.07,
    *,
    symmetric: bool = True,
    group_aware: bool = True,
) -> Tensor:
    """InfoNCE where row ``i``'s positive is ``k[i]`` and other same-group columns leave the denominator.

    Args:
        q: ``[B, D]`` query-side embeddings, L2-normalised.
        k: ``[B, D]`` key-side embeddings, L2-normalised; ``k[i]`` is the positive of ``q[i]``.
        groups: ``[B]`` integer style-group ids; ``None`` means every row is its own group.
        temperature: softmax temperature (a float or a 0-d tensor, e.g. a learned one).
        symmetric: average the q->k and k->q cross-entropies (CLIP); else q->k only.
        group_aware: drop same-group off-diagonal entries from the denominator (``False``: ablation,
            they count as negatives).

    Returns:
        0-d tensor, the mean over rows.
    """
    batch = _check_pair(q, k, groups)
    if batch == 0:
        return _zero_like_graph(q)
    logits = (q @ k.T) / temperature  # [B, B]
    if group_aware and groups is not None:
        logits = logits.masked_fill(_same_group_off_diagonal(groups), float("-inf"))
    target = torch.arange(batch, device=q.device)  # [B]
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.T, target))
    return loss


def cosine_hinge(
    q: Tensor,
    k: Tensor,
    groups: Tensor | None = None,
    margin: float = 0.2,
    *,
    reduction: str = "mean",
    symmetric: bool = True,
    group_aware: bool = True,
) -> Tensor:
    """Cosine hinge ``max(0, m - cos(q_i, k_i) + cos(q_i, k_j))`` over valid negatives ``j``.

    A negative ``j`` of row ``i`` is ``j != i`` and, with ``group_aware``, ``groups[j] != groups[i]``.

    Args:
        q, k: ``[B, D]`` L2-normalised; row ``i`` is a positive pair.
        groups: ``[B]`` style-group ids, or ``None`` (every row its own group).
        margin: the hinge margin ``m``.
        reduction: ``"mean"`` over a row's valid negatives, or ``"hardest"`` (VSE++: the max).
        symmetric: average the q->k (rows) and k->q (columns) directions.
        group_aware: mask same-group columns (``False``: ablation).

    Returns:
        0-d tensor: the mean over rows that have at least one valid negative (0 when none has).
    """
    if reduction not in HINGE_REDUCTIONS:
        raise ConfigError(f"hinge reduction '{reduction}' is unknown; use one of {HINGE_REDUCTIONS}")
    batch = _check_pair(q, k, groups)
    sim = q @ k.T  # [B, B]
    valid = ~torch.eye(batch, dtype=torch.bool, device=q.device)  # [B, B]
    if group_aware and groups is not None:
        valid = valid & ~group_mask(groups, groups)
    loss = _hinge_rows(sim, valid, margin, reduction)
    if symmetric:
        loss = 0.5 * (loss + _hinge_rows(sim.T, valid.T, margin, reduction))
    return loss


def self_distinctiveness(
    z: Tensor,
    z_aug: Tensor,
    temperature: float | Tensor = 0.07,
    *,
    form: str = "infonce",
    margin: float = 0.2,
    groups: Tensor | None = None,
) -> Tensor:
    """Instance discrimination: ``z_aug[i]`` must be closer to ``z[i]`` than to any other ``z[j]``.

    Rows are the augmented views, columns the originals (as in the eSSPR code).

    Args:
        z: ``[B, D]`` embeddings of the products, L2-normalised.
        z_aug: ``[B, D]`` embeddings of an augmented view of the same products.
        temperature: used by ``form="infonce"``.
        form: ``"infonce"`` (cross-entropy over the batch) or ``"hinge"`` (the paper's cosine hinge).
        margin: used by ``form="hinge"``.
        groups: optional ``[B]`` style groups; when given, same-style originals are not negatives
            (the paper has no such masking: pure instance discrimination).
    """
    if form == "infonce":
        return info_nce(z_aug, z, groups, temperature, symmetric=False, group_aware=groups is not None)
    if form == "hinge":
        return cosine_hinge(z_aug, z, groups, margin, symmetric=False, group_aware=groups is not None)
    raise ConfigError(f"self-distinctiveness form '{form}' is unknown; use one of {SELF_DISTINCT_FORMS}")


def locality_consistency(
    z: Tensor,
    z_aug: Tensor,
    k: int = 10,
    *,
    reference: Tensor | None = None,
    margin: float = 0.0,
) -> Tensor:
    """The augmented view keeps the original's similarities to the original's top-k neighbours.

    For each row ``i``, take the ``k`` reference rows most similar to ``z[i]`` and average
    ``max(0, (cos(z_i, r_j) - cos(z_aug_i, r_j))^2 - margin)`` over them; then average over rows.

    Args:
        z: ``[B, D]`` originals, L2-normalised.
        z_aug: ``[B, D]`` augmented views of the same rows.
        k: neighbours per row, clamped to the number of candidates (10 in the eSSPR code).
        reference: ``[N, D]`` candidate neighbours (the paper uses the positive side of the batch);
            ``None`` uses ``z`` itself with each row's own entry excluded.
        margin: squared-difference tolerance (0 gives a plain mean squared difference).
    """
    if z.shape != z_aug.shape or z.ndim != 2:
        raise ValueError(f"z and z_aug must both be [B, D], got {tuple(z.shape)} and {tuple(z_aug.shape)}")
    ref = z if reference is None else reference
    if ref.ndim != 2 or ref.shape[1] != z.shape[1]:
        raise ValueError(f"reference must be [N, {z.shape[1]}], got {tuple(ref.shape)}")
    sim = z @ ref.T  # [B, N]
    sim_aug = z_aug @ ref.T  # [B, N]
    candidates = sim.detach()  # [B, N]; only used to pick neighbours
    n_candidates = ref.shape[0]
    if reference is None:
        candidates = candidates.masked_fill(
            torch.eye(z.shape[0], dtype=torch.bool, device=z.device), float("-inf")
        )
        n_candidates -= 1
    top = min(k, n_candidates)
    if top <= 0 or z.shape[0] == 0:
        return _zero_like_graph(sim)
    idx = candidates.topk(top, dim=1).indices  # [B, top]
    diff = (sim.gather(1, idx) - sim_aug.gather(1, idx)) ** 2  # [B, top]
    return (diff - margin).clamp(min=0).mean()


def _hinge_rows(sim: Tensor, valid: Tensor, margin: float, reduction: str) -> Tensor:
    """Hinge per row of ``sim [B, B]`` with the diagonal as positive; mean over rows with a negative."""
    pos = sim.diagonal().unsqueeze(1)  # [B, 1]
    cost = (margin - pos + sim).clamp(min=0)  # [B, B]
    cost = torch.where(valid, cost, torch.zeros_like(cost))  # [B, B]
    n_neg = valid.sum(dim=1)  # [B]
    has_neg = n_neg > 0  # [B]
    if not bool(has_neg.any()):
        return _zero_like_graph(sim)
    # [B]; for "hardest", costs are >= 0 so the masked zeros never beat a real negative
    per_row = cost.sum(dim=1) / n_neg.clamp(min=1) if reduction == "mean" else cost.amax(dim=1)
    return per_row[has_neg].mean()


def _same_group_off_diagonal(groups: Tensor) -> Tensor:
    """``[B, B]`` bool: same group and ``i != j`` (the would-be false negatives)."""
    same = group_mask(groups, groups)  # [B, B]
    return same & ~torch.eye(groups.shape[0], dtype=torch.bool, device=groups.device)


def _zero_like_graph(t: Tensor) -> Tensor:
    """A 0-d zero that stays connected to ``t``'s graph (so ``backward`` works and gives zero grads)."""
    return t.sum() * 0.0


def _check_pair(q: Tensor, k: Tensor, groups: Tensor | None) -> int:
    if q.ndim != 2 or q.shape != k.shape:
        raise ValueError(f"q and k must both be [B, D], got {tuple(q.shape)} and {tuple(k.shape)}")
    if groups is not None and tuple(groups.shape) != (q.shape[0],):
        raise ValueError(f"groups must be [{q.shape[0]}], got {tuple(groups.shape)}")
    return int(q.shape[0])
