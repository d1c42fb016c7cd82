"""ContrastiveUnit: configured term names, each term equal to the pure function, missing rows dropped."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from samestyle.errors import ConfigError
from samestyle.losses import (
    DEFAULT_PAIRS,
    ContrastiveConfig,
    ContrastiveUnit,
    Embeddings,
    cosine_hinge,
    info_nce,
    locality_consistency,
    parse_pair,
    self_distinctiveness,
)
from samestyle.types import Modality


def unit_rows(b: int, d: int, seed: int) -> torch.Tensor:
    x = torch.randn(b, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True)


def side(b: int, seed: int, d: int = 4, **present: torch.Tensor) -> Embeddings:
    return Embeddings(
        image=unit_rows(b, d, seed),
        text=unit_rows(b, d, seed + 1),
        fused=unit_rows(b, d, seed + 2),
        present=present,
    )


def req(emb: Embeddings, modality: Modality | str) -> torch.Tensor:
    """The embeddings of ``modality``, which the test knows are there."""
    value = emb.get(modality)
    assert value is not None
    return value


GROUPS = torch.tensor([0, 1, 0, 2, 3, 1])


def test_default_unit_returns_exactly_the_configured_names() -> None:
    unit = ContrastiveUnit()
    terms = unit(side(6, 1), side(6, 10), GROUPS)
    assert list(terms) == list(unit.term_names) == [f"nce/{p}" for p in DEFAULT_PAIRS]
    assert all(t.shape == () and torch.isfinite(t) for t in terms.values())


@pytest.mark.parametrize(
    ("config", "names"),
    [
        (ContrastiveConfig(pairs=("image-image",)), ["nce/image-image"]),
        (ContrastiveConfig(loss="hinge", pairs=("fused-text", "within:image-text")),
         ["hinge/fused-text", "hinge/within:image-text"]),
        (ContrastiveConfig(pairs=("text-text",), regularizers=("locality", "self_distinct")),
         ["nce/text-text", "reg/self_distinct", "reg/locality"]),
        (ContrastiveConfig(pairs=(), regularizers=("locality",)), ["reg/locality"]),
    ],
)  # fmt: skip
def test_configured_names(config: ContrastiveConfig, names: list[str]) -> None:
    unit = ContrastiveUnit(config)
    aug = side(6, 20) if config.regularizers else None
    assert list(unit(side(6, 1), side(6, 10), GROUPS, aug)) == names == list(unit.term_names)


def test_each_cross_term_equals_the_pure_function() -> None:
    unit = ContrastiveUnit(ContrastiveConfig(temperature_init=0.1))
    a, p = side(6, 1), side(6, 10)
    terms = unit(a, p, GROUPS)
    t = unit.temperature()
    for pair in DEFAULT_PAIRS:
        _, qa, kb = parse_pair(pair)
        want = info_nce(req(a, qa), req(p, kb), GROUPS, t)
        assert terms[f"nce/{pair}"].item() == pytest.approx(want.item(), rel=1e-12)


def test_hinge_form_uses_margin_and_reduction() -> None:
    cfg = ContrastiveConfig(loss="hinge", pairs=("image-text",), margin=0.3, hinge_reduction="hardest")
    a, p = side(6, 1), side(6, 10)
    got = ContrastiveUnit(cfg)(a, p, GROUPS)["hinge/image-text"]
    want = cosine_hinge(req(a, "image"), req(p, "text"), GROUPS, 0.3, reduction="hardest")
    assert got.item() == pytest.approx(want.item())


def test_within_product_term_pools_both_sides() -> None:
    unit = ContrastiveUnit(ContrastiveConfig(pairs=("within:image-text",)))
    a, p = side(6, 1), side(6, 10)
    got = unit(a, p, GROUPS)["nce/within:image-text"]
    want = info_nce(
        torch.cat([req(a, "image"), req(p, "image")]),
        torch.cat([req(a, "text"), req(p, "text")]),
        torch.cat([GROUPS, GROUPS]),
        unit.temperature(),
    )
    assert got.item() == pytest.approx(want.item())


def test_rows_without_a_modality_are_dropped_from_its_terms_only() -> None:
    has_image = torch.tensor([True, False, True, True, False, True])
    unit = ContrastiveUnit(ContrastiveConfig(pairs=("image-text", "text-text")))
    a, p = side(6, 1, image=has_image), side(6, 10)
    terms = unit(a, p, GROUPS)
    t = unit.temperature()
    want = info_nce(req(a, "image")[has_image], req(p, "text")[has_image], GROUPS[has_image], t)
    assert terms["nce/image-text"].item() == pytest.approx(want.item())
    assert terms["nce/text-text"].item() == pytest.approx(
        info_nce(req(a, "text"), req(p, "text"), GROUPS, t).item()
    )


def test_absent_modality_gives_a_zero_term_and_keeps_the_key() -> None:
    unit = ContrastiveUnit(ContrastiveConfig(pairs=("image-image", "text-text")))
    a = Embeddings(text=unit_rows(4, 3, 1))
    p = Embeddings(image=unit_rows(4, 3, 2), text=unit_rows(4, 3, 3))
    terms = unit(a, p, torch.arange(4))
    assert list(terms) == ["nce/image-image", "nce/text-text"]
    assert terms["nce/image-image"].item() == 0.0
    nobody = torch.zeros(4, dtype=torch.bool)
    terms = unit(side(4, 1, text=nobody), side(4, 5), torch.arange(4))
    assert terms["nce/text-text"].item() == 0.0


def test_regularisers_average_over_available_modalities() -> None:
    cfg = ContrastiveConfig(
        pairs=(), regularizers=("self_distinct", "locality"), reg_modalities=("image", "fused"), locality_k=3
    )
    unit = ContrastiveUnit(cfg)
    a, p, aug = side(6, 1), side(6, 10), side(6, 20)
    terms = unit(a, p, GROUPS, aug)
    t = unit.temperature()
    distinct = [self_distinctiveness(req(a, m), req(aug, m), t, groups=GROUPS) for m in ("image", "fused")]
    local = [locality_consistency(req(a, m), req(aug, m), 3, reference=req(p, m)) for m in ("image", "fused")]
    assert terms["reg/self_distinct"].item() == pytest.approx(torch.stack(distinct).mean().item())
    assert terms["reg/locality"].item() == pytest.approx(torch.stack(local).mean().item())
    hinge = ContrastiveUnit(ContrastiveConfig(loss="hinge", pairs=(), regularizers=("self_distinct",)))
    got = hinge(a, p, GROUPS, Embeddings(text=req(aug, "text")))["reg/self_distinct"]
    assert got.item() == pytest.approx(
        self_distinctiveness(req(a, "text"), req(aug, "text"), form="hinge", groups=GROUPS).item()
    )


def test_regularisers_need_the_augmented_view() -> None:
    unit = ContrastiveUnit(ContrastiveConfig(regularizers=("locality",)))
    with pytest.raises(ValueError, match="anchor_aug"):
        unit(side(4, 1), side(4, 2), torch.arange(4))


def test_temperature_is_learned_log_parameterised_and_clamped() -> None:
    unit = ContrastiveUnit()
    assert unit.log_temperature is not None and unit.log_temperature.requires_grad
    assert unit.temperature().item() == pytest.approx(0.07)
    a = Embeddings(image=unit_rows(6, 4, 1).float().requires_grad_(True))
    sum(unit(a, Embeddings(image=unit_rows(6, 4, 2).float()), GROUPS).values()).backward()
    assert unit.log_temperature.grad is not None and torch.isfinite(unit.log_temperature.grad)
    grad = req(a, "image").grad
    assert grad is not None and torch.isfinite(grad).all()
    with torch.no_grad():
        unit.log_temperature.fill_(math.log(1e-6))
    assert unit.temperature().item() == pytest.approx(0.01)
    assert unit.log_temperature.item() == pytest.approx(math.log(0.01))  # the parameter itself is clamped
    frozen = ContrastiveUnit(ContrastiveConfig(learn_temperature=False))
    assert frozen.log_temperature is not None and not frozen.log_temperature.requires_grad
    hinge = ContrastiveUnit(ContrastiveConfig(loss="hinge"))
    assert hinge.log_temperature is None and list(hinge.parameters()) == []
    with pytest.raises(ConfigError):
        hinge.temperature()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loss": "triplet"},
        {"pairs": ("image-audio",)},
        {"pairs": ("image_text",)},
        {"pairs": ("within:text-text",)},
        {"pairs": ("image-text", "image-text")},
        {"regularizers": ("dropout",)},
        {"reg_modalities": ("video",)},
        {"hinge_reduction": "sum"},
        {"temperature_init": 5.0},
        {"locality_k": 0},
    ],
)
def test_bad_config_is_a_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ContrastiveConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_shapes_are_rejected() -> None:
    unit = ContrastiveUnit()
    with pytest.raises(ValueError, match="image"):
        unit(side(5, 1), side(6, 2), GROUPS)
    with pytest.raises(ValueError, match="present"):
        unit(side(6, 1, text=torch.ones(5, dtype=torch.bool)), side(6, 2), GROUPS)
    with pytest.raises(ValueError, match="unknown modalities"):
        Embeddings(present={"audio": torch.ones(2, dtype=torch.bool)})
    assert Embeddings(image=torch.zeros(2, 3)).get(Modality.IMAGE) is not None


def test_embeddings_wrap_a_model_output() -> None:
    src = side(3, 1)
    mask = torch.tensor([True, False, True])
    wrapped = Embeddings.of(src, present={"image": mask})
    assert wrapped.image is src.image and wrapped.fused is src.fused
    assert torch.equal(wrapped.rows("image"), mask)  # type: ignore[arg-type]
    assert torch.equal(wrapped.rows("text"), torch.ones(3, dtype=torch.bool))  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(min_value=1, max_value=6),
    d=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=10_000),
    loss=st.sampled_from(["infonce", "hinge"]),
)
def test_any_batch_gives_finite_named_terms(b: int, d: int, seed: int, loss: str) -> None:
    gen = torch.Generator().manual_seed(seed)
    groups = torch.randint(0, 3, (b,), generator=gen)
    present = {"image": torch.rand(b, generator=gen) > 0.3}
    cfg = ContrastiveConfig(
        loss=loss, pairs=(*DEFAULT_PAIRS, "within:image-text"), regularizers=("self_distinct", "locality")
    )
    unit = ContrastiveUnit(cfg)
    terms = unit(side(b, seed, d, **present), side(b, seed + 7, d), groups, side(b, seed + 13, d))
    assert list(terms) == list(unit.term_names)
    assert all(t.shape == () and torch.isfinite(t) and t.item() >= 0.0 for t in terms.values())
