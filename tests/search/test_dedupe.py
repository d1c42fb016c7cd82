"""Duplicate detection against plain-loop references, on clustered synthetic vectors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from samestyle.errors import ConfigError
from samestyle.eval.grouping import mean_f1_grouping
from samestyle.search.dedupe import (
    DedupeConfig,
    blend,
    calibrate,
    find_duplicates,
    item_matches,
    true_matches,
)


def clusters(n_groups: int = 12, per: int = 4, dim: int = 16, noise: float = 0.15, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_groups, dim))
    groups = np.repeat(np.arange(n_groups), per)
    x = centres[groups] + noise * rng.normal(size=(len(groups), dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), groups


def loop_matches(x: np.ndarray, thr: float, k: int, margin: float) -> list[set[int]]:
    """The rules written out pair by pair (k nearest others, threshold, keep-one, symmetric)."""
    n = len(x)
    sims = x @ x.T
    out: list[set[int]] = [{i} for i in range(n)]
    for i in range(n):
        others = sorted((j for j in range(n) if j != i), key=lambda j: -sims[i, j])[:k]
        found = [j for j in others if sims[i, j] >= thr]
        if not found and margin >= 0 and others and sims[i, others[0]] >= thr - margin:
            found = [others[0]]
        for j in found:
            out[i].add(j)
            out[j].add(i)
    return out


@pytest.mark.parametrize(("thr", "k", "margin"), [(0.8, 5, -1.0), (0.95, 3, 0.1), (0.5, 10, 0.0)])
def test_item_matches_equal_the_loop_reference(thr: float, k: int, margin: float) -> None:
    x, _ = clusters()
    cfg = DedupeConfig(thresholds={"image": thr}, k=k, min_one_margin=margin)
    assert item_matches({"image": x}, cfg) == loop_matches(x, thr, k, margin)


def test_blend_equals_the_loop_reference() -> None:
    x, _ = clusters(noise=0.4)
    sims = x @ x.T
    expected = np.zeros_like(x)
    for i in range(len(x)):
        for j in np.argsort(-sims[i])[:3]:
            expected[i] += max(sims[i, j], 0.0) ** 2 * x[j]
        expected[i] /= np.linalg.norm(expected[i])
    np.testing.assert_allclose(blend(x, 3, power=2.0), expected, atol=1e-5)


def test_blending_and_calibration_find_noisy_groups() -> None:
    x, g = clusters(noise=0.45, seed=1)
    plain = mean_f1_grouping(item_matches({"image": x}, DedupeConfig({"image": 0.99}, k=20)), true_matches(g))
    tuned, f1 = calibrate({"image": x}, g, DedupeConfig({"image": 0.9}, k=20, blend_k=3))
    assert f1 == pytest.approx(
        mean_f1_grouping(item_matches({"image": x}, tuned), true_matches(g))["mean_f1"]
    )
    assert f1 > plain["mean_f1"] + 0.2


def test_union_of_modalities_and_link_evidence() -> None:
    img = np.eye(4, dtype=np.float32)[[0, 0, 1, 2]]  # a~b by image
    txt = np.eye(4, dtype=np.float32)[[0, 1, 2, 2]]  # c~d by text
    result = find_duplicates(
        ["a", "b", "c", "d"], {"image": img, "text": txt}, DedupeConfig(min_one_margin=-1)
    )
    assert result.groups == [["a", "b"], ["c", "d"]]
    by_pair = {(link.a, link.b): link for link in result.links}
    assert by_pair["a", "b"].rule == "image:threshold" and by_pair["a", "b"].scores == {
        "image": 1.0,
        "text": 0.0,
    }
    assert by_pair["c", "d"].rule == "text:threshold"


def test_a_missing_modality_never_matches() -> None:
    img = np.zeros((3, 4), np.float32)
    img[0, 0] = img[1, 0] = 1.0  # row 2 has no image
    res = find_duplicates(["a", "b", "c"], {"image": img}, DedupeConfig({"image": 0.5}))
    assert res.groups == [["a", "b"]] and all("c" not in (link.a, link.b) for link in res.links)


def test_groups_respect_the_size_cap() -> None:
    x = np.ones((7, 4), np.float32) / 2.0  # all identical
    res = find_duplicates([f"p{i}" for i in range(7)], {"image": x}, DedupeConfig(max_group=3))
    assert all(len(g) <= 3 for g in res.groups) and sum(len(g) for g in res.groups) >= 6
    members = list(itertools.chain.from_iterable(res.groups))
    assert len(members) == len(set(members))


def test_bad_configs_are_clear() -> None:
    with pytest.raises(ConfigError, match="unknown modality"):
        DedupeConfig(thresholds={"colour": 0.5})
    with pytest.raises(ConfigError, match="no modality to match on"):
        item_matches({"text": np.eye(3)}, DedupeConfig(thresholds={"image": 0.5}))
    with pytest.raises(ConfigError, match="different item counts"):
        item_matches({"image": np.eye(3), "text": np.eye(4)}, DedupeConfig())
