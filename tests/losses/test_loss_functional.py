"""Pure loss functions against plain-Python loop references (the slow twins)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from samestyle.errors import ConfigError
from samestyle.losses import (
    cosine_hinge,
    group_mask,
    info_nce,
    locality_consistency,
    self_distinctiveness,
)

Matrix = list[list[float]]


# ---------------------------------------------------------------- references: explicit loops over i, j


def ref_cos(q: torch.Tensor, k: torch.Tensor) -> Matrix:
    a, b = q.tolist(), k.tolist()
    return [
        [sum(x * y for x, y in zip(a[i], b[j], strict=True)) for j in range(len(b))] for i in range(len(a))
    ]


def transpose(s: Matrix) -> Matrix:
    return [[s[i][j] for i in range(len(s))] for j in range(len(s[0]))]


def ref_nce_rows(s: Matrix, groups: list[int], t: float, group_aware: bool) -> float:
    total = 0.0
    for i in range(len(s)):
        denom = 0.0
        for j in range(len(s)):
            if group_aware and j != i and groups[j] == groups[i]:
                continue
            denom += math.exp(s[i][j] / t)
        total += -(s[i][i] / t - math.log(denom))
    return total / len(s)


def ref_info_nce(
    q: torch.Tensor,
    k: torch.Tensor,
    groups: torch.Tensor,
    t: float,
    symmetric: bool = True,
    group_aware: bool = True,
) -> float:
    s = ref_cos(q, k)
    g = groups.tolist()
    loss = ref_nce_rows(s, g, t, group_aware)
    if symmetric:
        loss = 0.5 * (loss + ref_nce_rows(transpose(s), g, t, group_aware))
    return loss


def ref_hinge_rows(s: Matrix, groups: list[int], m: float, reduction: str, group_aware: bool) -> float:
    per_row = []
    for i in range(len(s)):
        costs = []
        for j in range(len(s)):
            if j == i or (group_aware and groups[j] == groups[i]):
                continue
            costs.append(max(0.0, m - s[i][i] + s[i][j]))
        if costs:
            per_row.append(sum(costs) / len(costs) if reduction == "mean" else max(costs))
    return sum(per_row) / len(per_row) if per_row else 0.0


def ref_hinge(
    q: torch.Tensor,
    k: torch.Tensor,
    groups: torch.Tensor,
    m: float,
    reduction: str = "mean",
    symmetric: bool = True,
    group_aware: bool = True,
) -> float:
    s = ref_cos(q, k)
    g = groups.tolist()
    loss = ref_hinge_rows(s, g, m, reduction, group_aware)
    if symmetric:
        loss = 0.5 * (loss + ref_hinge_rows(transpose(s), g, m, reduction, group_aware))
    return loss


def ref_locality(
    z: torch.Tensor, z_aug: torch.Tensor, k: int, reference: torch.Tensor | None = None, margin: float = 0.0
) -> float:
    ref = z if reference is None else reference
    s, s_aug = ref_cos(z, ref), ref_cos(z_aug, ref)
    total, count = 0.0, 0
    for i in range(len(s)):
        cands = [j for j in range(len(ref)) if not (reference is None and j == i)]
        cands.sort(key=lambda j: s[i][j], reverse=True)
        for j in cands[:k]:
            total += max(0.0, (s[i][j] - s_aug[i][j]) ** 2 - margin)
            count += 1
    return total / count if count else 0.0


# ---------------------------------------------------------------- helpers


def unit_rows(b: int, d: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=gen, dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True)


DUP_GROUPS = torch.tensor([0, 1, 0, 2, 1, 3])  # two duplicated groups
UNIQUE_GROUPS = torch.arange(6)


# ---------------------------------------------------------------- group_mask


def test_group_mask_matches_loop() -> None:
    a, b = torch.tensor([3, 1, 3]), torch.tensor([1, 3, 2, 3])
    got = group_mask(a, b).tolist()
    assert got == [[a[i].item() == b[j].item() for j in range(4)] for i in range(3)]


# ---------------------------------------------------------------- info_nce


@pytest.mark.parametrize("groups", [DUP_GROUPS, UNIQUE_GROUPS])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("group_aware", [True, False])
def test_info_nce_matches_loop(groups: torch.Tensor, symmetric: bool, group_aware: bool) -> None:
    q, k = unit_rows(6, 5, 1), unit_rows(6, 5, 2)
    got = info_nce(q, k, groups, 0.1, symmetric=symmetric, group_aware=group_aware)
    want = ref_info_nce(q, k, groups, 0.1, symmetric, group_aware)
    assert got.item() == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_info_nce_group_masking_changes_loss_only_with_shared_groups() -> None:
    q, k = unit_rows(6, 5, 3), unit_rows(6, 5, 4)
    aware = info_nce(q, k, UNIQUE_GROUPS, 0.1)
    blind = info_nce(q, k, UNIQUE_GROUPS, 0.1, group_aware=False)
    assert aware.item() == blind.item()
    assert torch.equal(info_nce(q, k, None, 0.1), blind)
    aware = info_nce(q, k, DUP_GROUPS, 0.1)
    blind = info_nce(q, k, DUP_GROUPS, 0.1, group_aware=False)
    assert aware.item() < blind.item()  # removing denominator terms can only lower the loss


def test_info_nce_tensor_temperature_gets_gradient() -> None:
    q, k = unit_rows(4, 3, 5), unit_rows(4, 3, 6)
    q.requires_grad_(True)
    t = torch.tensor(0.07, dtype=torch.float64, requires_grad=True)
    info_nce(q, k, torch.tensor([0, 0, 1, 2]), t).backward()
    assert t.grad is not None and torch.isfinite(t.grad)
    assert q.grad is not None and torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0


def test_info_nce_empty_and_single_row() -> None:
    empty = torch.zeros(0, 3, requires_grad=True)
    assert info_nce(empty, empty.detach()).item() == 0.0
    one = unit_rows(1, 3, 7)
    assert info_nce(one, one).item() == pytest.approx(0.0)


# ---------------------------------------------------------------- cosine_hinge


@pytest.mark.parametrize("groups", [DUP_GROUPS, UNIQUE_GROUPS])
@pytest.mark.parametrize("reduction", ["mean", "hardest"])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("group_aware", [True, False])
def test_cosine_hinge_matches_loop(
    groups: torch.Tensor, reduction: str, symmetric: bool, group_aware: bool
) -> None:
    q, k = unit_rows(6, 4, 8), unit_rows(6, 4, 9)
    got = cosine_hinge(q, k, groups, 0.3, reduction=reduction, symmetric=symmetric, group_aware=group_aware)
    want = ref_hinge(q, k, groups, 0.3, reduction, symmetric, group_aware)
    assert got.item() == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_cosine_hinge_relates_to_the_papers_form() -> None:
    """eSSPR's PPM: one direction, mean over all B columns with the zero diagonal term included."""
    b, m = 6, 0.2
    q, k = unit_rows(b, 4, 10), unit_rows(b, 4, 11)
    s = ref_cos(q, k)
    paper = sum(sum(max(0.0, -s[i][i] + s[i][j] + m * (i != j)) for j in range(b)) / b for i in range(b)) / b
    ours = cosine_hinge(q, k, None, m, symmetric=False)
    assert ours.item() * (b - 1) / b == pytest.approx(paper, rel=1e-9)


def test_cosine_hinge_group_masking_changes_loss_only_with_shared_groups() -> None:
    # positives well aligned; rows 0 and 2 are one style and near-duplicates, so without masking each
    # is the other's costliest negative
    q = unit_rows(6, 4, 12)
    q[2] = q[0] + 0.05 * unit_rows(1, 4, 13)[0]
    k = q + 0.05 * unit_rows(6, 4, 14)
    q, k = q / q.norm(dim=1, keepdim=True), k / k.norm(dim=1, keepdim=True)
    groups = torch.tensor([0, 1, 0, 2, 3, 4])
    for reduction in ("mean", "hardest"):
        unique = torch.arange(6)
        same = cosine_hinge(q, k, unique, 0.5, reduction=reduction)
        assert same.item() == cosine_hinge(q, k, unique, 0.5, reduction=reduction, group_aware=False).item()
        aware = cosine_hinge(q, k, groups, 0.5, reduction=reduction)
        blind = cosine_hinge(q, k, groups, 0.5, reduction=reduction, group_aware=False)
        assert aware.item() < blind.item() - 1e-3


def test_cosine_hinge_near_zero_for_perfect_embeddings() -> None:
    z = torch.eye(5, 8, dtype=torch.float64)  # positives identical, negatives orthogonal
    for reduction in ("mean", "hardest"):
        assert cosine_hinge(z, z.clone(), torch.arange(5), 0.2, reduction=reduction).item() == 0.0


def test_cosine_hinge_all_one_group_is_zero_but_differentiable() -> None:
    q = unit_rows(4, 3, 14).requires_grad_(True)
    loss = cosine_hinge(q, unit_rows(4, 3, 15), torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and q.grad is not None and torch.equal(q.grad, torch.zeros_like(q))


def test_cosine_hinge_rejects_unknown_reduction_and_bad_shapes() -> None:
    q = unit_rows(3, 2, 16)
    with pytest.raises(ConfigError, match="reduction"):
        cosine_hinge(q, q, reduction="max")
    with pytest.raises(ValueError, match="groups"):
        cosine_hinge(q, q, torch.arange(4))
    with pytest.raises(ValueError, match=r"\[B, D\]"):
        info_nce(q, unit_rows(4, 2, 17))


# ---------------------------------------------------------------- regularisers


@pytest.mark.parametrize("groups", [None, DUP_GROUPS])
def test_self_distinctiveness_forms_match_loops(groups: torch.Tensor | None) -> None:
    z, z_aug = unit_rows(6, 5, 18), unit_rows(6, 5, 19)
    aware = groups is not None
    g = UNIQUE_GROUPS if groups is None else groups
    got = self_distinctiveness(z, z_aug, 0.2, groups=groups)
    assert got.item() == pytest.approx(ref_info_nce(z_aug, z, g, 0.2, symmetric=False, group_aware=aware))
    got = self_distinctiveness(z, z_aug, form="hinge", margin=0.4, groups=groups)
    assert got.item() == pytest.approx(ref_hinge(z_aug, z, g, 0.4, symmetric=False, group_aware=aware))
    with pytest.raises(ConfigError):
        self_distinctiveness(z, z_aug, form="triplet")


def test_self_distinctiveness_is_small_when_views_agree() -> None:
    z = torch.eye(4, 6, dtype=torch.float64)
    assert self_distinctiveness(z, z.clone(), form="hinge").item() == 0.0
    assert self_distinctiveness(z, z.clone(), 0.01).item() < 1e-30


@pytest.mark.parametrize("k", [1, 3, 10])
@pytest.mark.parametrize("margin", [0.0, 0.05])
@pytest.mark.parametrize("with_reference", [False, True])
def test_locality_consistency_matches_loop(k: int, margin: float, with_reference: bool) -> None:
    z, z_aug = unit_rows(6, 5, 20), unit_rows(6, 5, 21)
    reference = unit_rows(7, 5, 22) if with_reference else None
    got = locality_consistency(z, z_aug, k, reference=reference, margin=margin)
    assert got.item() == pytest.approx(ref_locality(z, z_aug, k, reference, margin), rel=1e-9, abs=1e-12)


def test_locality_consistency_zero_for_identical_views_and_tiny_batches() -> None:
    z = unit_rows(5, 4, 23)
    assert locality_consistency(z, z.clone(), 3).item() == 0.0
    one = unit_rows(1, 4, 24)
    assert locality_consistency(one, unit_rows(1, 4, 25)).item() == 0.0  # no neighbour but itself


def test_regularisers_give_finite_gradients() -> None:
    z = unit_rows(6, 5, 26).requires_grad_(True)
    z_aug = unit_rows(6, 5, 27).requires_grad_(True)
    (self_distinctiveness(z, z_aug) + locality_consistency(z, z_aug, 3)).backward()
    for t in (z, z_aug):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


# ---------------------------------------------------------------- properties over shapes


@settings(max_examples=40, deadline=None)
@given(
    b=st.integers(min_value=1, max_value=7),
    d=st.integers(min_value=1, max_value=5),
    n_groups=st.integers(min_value=1, max_value=7),
    seed=st.integers(min_value=0, max_value=10_000),
    symmetric=st.booleans(),
)
def test_losses_scalar_finite_and_match_loops_for_any_shape(
    b: int, d: int, n_groups: int, seed: int, symmetric: bool
) -> None:
    q = unit_rows(b, d, seed).requires_grad_(True)
    k = unit_rows(b, d, seed + 1)
    groups = torch.randint(0, n_groups, (b,), generator=torch.Generator().manual_seed(seed))
    nce = info_nce(q, k, groups, 0.5, symmetric=symmetric)
    hinge = cosine_hinge(q, k, groups, 0.2, symmetric=symmetric)
    loc = locality_consistency(q, k, 3)
    for loss in (nce, hinge, loc):
        assert loss.shape == () and torch.isfinite(loss) and loss.item() >= 0.0
    assert nce.item() == pytest.approx(ref_info_nce(q, k, groups, 0.5, symmetric), rel=1e-9, abs=1e-12)
    assert hinge.item() == pytest.approx(ref_hinge(q, k, groups, 0.2, "mean", symmetric), rel=1e-9, abs=1e-12)
    assert loc.item() == pytest.approx(ref_locality(q, k, 3), rel=1e-9, abs=1e-12)
    (nce + hinge + loc).backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()
