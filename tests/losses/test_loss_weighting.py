"""Weightings: fixed, uncertainty (Kendall 2018) and FashionBERT's adaptive loss against loop references."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from samestyle.errors import ConfigError, UnknownComponentError
from samestyle.losses import (
    WEIGHTINGS,
    AdaptiveWeighting,
    FashionBertWeighting,
    FixedWeighting,
    UncertaintyWeighting,
    task_grad_sq_norms,
)

NAMES = ("nce/image-image", "nce/text-text", "reg/locality")


def terms_of(values: list[float], requires_grad: bool = False) -> dict[str, torch.Tensor]:
    return {
        n: torch.tensor(v, dtype=torch.float64, requires_grad=requires_grad)
        for n, v in zip(NAMES, values, strict=True)
    }


def ref_fashionbert(losses: list[float], alpha: float = 1.0) -> list[float]:
    """The closed form as written in the released FashionBERT code: products over the other tasks."""
    k = len(losses)
    exps = [math.exp(x) for x in losses]
    n = [(e / sum(exps)) ** 2 for e in exps]
    prods = []
    for i in range(k):
        p = 1.0
        for j in range(k):
            if j != i:
                p *= alpha * k - n[j]
        prods.append(p)
    return [p / sum(prods) for p in prods]


# ---------------------------------------------------------------- fixed


def test_fixed_weighting_exact_names_beat_patterns_and_default_applies() -> None:
    w = FixedWeighting({"reg/*": 0.1, "reg/locality": 0.5, "nce/text-*": 2.0}, default=1.0)
    total, weights = w(terms_of([1.0, 2.0, 4.0]))
    assert weights == {"nce/image-image": 1.0, "nce/text-text": 2.0, "reg/locality": 0.5}
    assert total.item() == pytest.approx(1.0 + 4.0 + 2.0)
    with pytest.raises(ValueError, match="no loss terms"):
        w({})


# ---------------------------------------------------------------- uncertainty


def test_uncertainty_weighting_matches_formula_and_learns() -> None:
    w = UncertaintyWeighting(NAMES, init_log_var=0.0)
    with torch.no_grad():
        w.log_vars.copy_(torch.tensor([0.0, 1.0, -0.5]))
    values = [1.5, 0.2, 3.0]
    total, weights = w(terms_of(values))
    s = [0.0, 1.0, -0.5]
    assert total.item() == pytest.approx(
        sum(math.exp(-si) * li + si for si, li in zip(s, values, strict=True)), rel=1e-6
    )
    assert weights == pytest.approx({n: math.exp(-si) for n, si in zip(NAMES, s, strict=True)}, rel=1e-6)
    total.backward()
    assert w.log_vars.grad is not None
    assert w.log_vars.grad.tolist() == pytest.approx(
        [1 - math.exp(-si) * li for si, li in zip(s, values, strict=True)], rel=1e-6
    )


def test_uncertainty_weights_stay_positive_after_steps_and_accept_subsets() -> None:
    w = UncertaintyWeighting(NAMES)
    opt = torch.optim.SGD(w.parameters(), lr=0.5)
    for _ in range(20):
        opt.zero_grad()
        total, weights = w(terms_of([5.0, 0.01, 1.0]))
        total.backward()
        opt.step()
    assert all(v > 0 for v in weights.values())
    assert weights["nce/text-text"] > weights["nce/image-image"]  # the smaller loss gets the larger weight
    _, partial = w({"reg/locality": torch.tensor(1.0)})
    assert list(partial) == ["reg/locality"]
    with pytest.raises(ValueError, match="not declared"):
        w({"nce/typo": torch.tensor(1.0)})


# ---------------------------------------------------------------- FashionBERT


def test_fashionbert_weights_match_the_released_closed_form() -> None:
    values = [2.0, 0.5, 1.0]
    total, weights = FashionBertWeighting(NAMES)(terms_of(values))
    want = ref_fashionbert(values)
    assert list(weights.values()) == pytest.approx(want, rel=1e-9)
    assert total.item() == pytest.approx(sum(w * x for w, x in zip(want, values, strict=True)), rel=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0.0, max_value=50.0), min_size=1, max_size=3),
    alpha=st.floats(min_value=1.0, max_value=4.0),
)
def test_fashionbert_weights_positive_and_sum_to_one(values: list[float], alpha: float) -> None:
    names = NAMES[: len(values)]
    w = FashionBertWeighting(names, alpha=alpha)
    _, weights = w({n: torch.tensor(v, dtype=torch.float64) for n, v in zip(names, values, strict=True)})
    assert all(x > 0 for x in weights.values())
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-9)
    assert list(weights.values()) == pytest.approx(ref_fashionbert(values, alpha), rel=1e-9)
    order = sorted(range(len(values)), key=lambda i: values[i])  # larger loss -> no smaller weight
    ws = list(weights.values())
    assert all(ws[order[i]] <= ws[order[i + 1]] + 1e-12 for i in range(len(order) - 1))


def test_fashionbert_detach_controls_gradient_through_weights() -> None:
    values = [2.0, 0.5, 1.0]
    terms = terms_of(values, requires_grad=True)
    total, weights = FashionBertWeighting(NAMES)(terms)
    total.backward()
    grads = [terms[n].grad.item() for n in NAMES]  # type: ignore[union-attr]
    assert grads == pytest.approx(list(weights.values()))  # constants: d total / d L_i = w_i
    terms = terms_of(values, requires_grad=True)
    total, weights = FashionBertWeighting(NAMES, detach=False)(terms)
    total.backward()
    assert [terms[n].grad.item() for n in NAMES] != pytest.approx(list(weights.values()))  # type: ignore[union-attr]


def test_fashionbert_grad_signal_uses_task_gradient_norms() -> None:
    shared = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    terms = {
        "nce/image-image": (shared**2).sum(),  # grad 2x -> ||g||^2 = 4 + 16 = 20
        "nce/text-text": 0.5 * shared[0],  # ||g||^2 = 0.25
        "reg/locality": shared.sum() * 0.0 + 1.0,  # no gradient
    }
    norms = task_grad_sq_norms(terms, [shared])
    assert [norms[n].item() for n in NAMES] == pytest.approx([20.0, 0.25, 0.0])
    w = FashionBertWeighting(NAMES, signal="grad")
    total, weights = w(terms, grad_sq_norms=norms)
    n = [20.0 / 20.25, 0.25 / 20.25, 0.0]
    inv = [1 / (3 - x) for x in n]
    assert list(weights.values()) == pytest.approx([x / sum(inv) for x in inv], rel=1e-9)
    total.backward()
    assert shared.grad is not None and torch.isfinite(shared.grad).all()
    with pytest.raises(ValueError, match="grad_sq_norms"):
        w(terms)


def test_fashionbert_single_term_and_bad_settings() -> None:
    total, weights = FashionBertWeighting(["a"])({"a": torch.tensor(3.0)})
    assert weights == {"a": 1.0} and total.item() == 3.0
    with pytest.raises(ConfigError, match="alpha"):
        FashionBertWeighting(NAMES, alpha=0.5)
    with pytest.raises(ConfigError, match="signal"):
        FashionBertWeighting(NAMES, signal="norm")
    with pytest.raises(ConfigError, match="distinct"):
        FashionBertWeighting(["a", "a"])


# ---------------------------------------------------------------- registry


def test_registry_builds_every_weighting() -> None:
    assert WEIGHTINGS.names() == ["fashionbert", "fixed", "uncertainty"]
    assert isinstance(WEIGHTINGS.build("fixed", weights={"reg/*": 0.1}), FixedWeighting)
    for name in ("uncertainty", "fashionbert"):
        w = WEIGHTINGS.build(name, names=NAMES)
        assert isinstance(w, AdaptiveWeighting)
        total, weights = w(terms_of([1.0, 2.0, 3.0]))
        assert set(weights) == set(NAMES) and torch.isfinite(total)
    with pytest.raises(UnknownComponentError, match="uncertainty"):
        WEIGHTINGS.get("uncertainy")
