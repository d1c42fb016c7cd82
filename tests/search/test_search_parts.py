"""Rocchio refinement, the session store, query composition, explanations and the LDA map."""

from __future__ import annotations

import time

import numpy as np
import pytest

from samestyle.errors import ConfigError, NotFoundError
from samestyle.models.lda import LDAProjection
from samestyle.search.compose import METHODS, compose_vectors
from samestyle.search.explain import shared_attributes
from samestyle.search.session import Rocchio, SessionStore
from samestyle.types import Product


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_rocchio_is_the_weighted_sum() -> None:
    q, liked, disliked = np.array([1.0, 0, 0]), np.array([[0, 1.0, 0], [0, 0, 1.0]]), np.array([[1.0, 1, 0]])
    got = Rocchio(a=1.0, b=0.5, c=0.2).refine(q, liked, disliked)
    np.testing.assert_allclose(got, unit(q + 0.5 * liked.mean(0) - 0.2 * disliked.mean(0)), atol=1e-6)
    np.testing.assert_allclose(Rocchio().refine(q, np.zeros((0, 3)), np.zeros((0, 3))), q)


def test_session_feedback_last_mark_wins_and_everything_marked_is_seen() -> None:
    store = SessionStore()
    s = store.create("joint-image", np.ones(4))
    s.feedback(liked=["a", "b"], disliked=["c"])
    s.feedback(disliked=["a"])
    assert s.liked == ["b"] and s.disliked == ["c", "a"] and s.seen == {"a", "b", "c"}
    assert store.get(s.id) is s


def test_sessions_expire_and_are_capped() -> None:
    store = SessionStore(ttl_s=0.05, max_sessions=2)
    first = store.create("x", np.ones(2))
    time.sleep(0.1)
    with pytest.raises(NotFoundError, match="unknown, or expired"):
        store.get(first.id)
    ids = [store.create("x", np.ones(2)).id for _ in range(3)]
    assert len(store) == 2
    with pytest.raises(NotFoundError):
        store.get(ids[0])


def _linear_projector(wi: np.ndarray, wt: np.ndarray):
    def project(image, text):
        out = {}
        if image is not None:
            out["image"] = unit(image @ wi)
        if text is not None:
            out["text"] = unit(text @ wt)
        if image is not None and text is not None:
            out["fused"] = unit(out["image"] + out["text"])
        return out

    return project


def test_compositions_follow_their_formulas() -> None:
    rng = np.random.default_rng(0)
    wi, wt = rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    project = _linear_projector(wi, wt)
    vocab: dict[str, np.ndarray] = {}

    def text_features(texts: list[str]) -> np.ndarray:
        return np.stack([vocab.setdefault(t, rng.normal(size=5)) for t in texts])

    image = rng.normal(size=(1, 6))
    img = unit(image @ wi)
    t = lambda s: unit(text_features([s]) @ wt)  # noqa: E731
    got = {
        m: compose_vectors(m, project, text_features, image, ["in white"], ["red shirt"], 1.0)
        for m in METHODS
    }
    default = compose_vectors("delta", project, text_features, image, ["in white"], ["red shirt"])
    np.testing.assert_allclose(
        default, unit(img + 2.0 * (t("red shirt in white") - t("red shirt"))), atol=1e-6
    )
    np.testing.assert_allclose(got["fused"], unit(img + t("in white")), atol=1e-6)
    np.testing.assert_allclose(got["sum"], unit(img + t("in white")), atol=1e-6)
    np.testing.assert_allclose(got["delta"], unit(img + t("red shirt in white") - t("red shirt")), atol=1e-6)
    np.testing.assert_allclose(got["fused-title"], unit(img + t("red shirt, in white")), atol=1e-6)
    with pytest.raises(ConfigError, match="known: fused"):
        compose_vectors("average", project, text_features, image, ["x"])
    with pytest.raises(ConfigError, match="needs the product's title"):
        compose_vectors("delta", project, text_features, image, ["x"])


def test_shared_attributes_and_category_prefix() -> None:
    q = Product(
        "q", "t", category=("Apparel", "Topwear", "Shirts"), attributes={"colour": "Red", "season": "Fall"}
    )
    h = Product(
        "h", "t", category=("Apparel", "Topwear", "Tshirts"), attributes={"colour": "red", "season": "Summer"}
    )
    assert shared_attributes(q, h) == {"colour": "Red", "category": "Apparel/Topwear"}
    assert shared_attributes(None, h) == {}


def test_lda_pulls_groups_together() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(10), 8)
    signal = rng.normal(size=(10, 3))[groups]  # group identity lives in 3 of 20 dims
    x = np.hstack([signal * 0.5, rng.normal(size=(80, 17)) * 2.0])

    def margin(v: np.ndarray) -> float:
        v = unit(v)
        sims = v @ v.T
        same = groups[:, None] == groups[None, :]
        return float(sims[same & ~np.eye(80, dtype=bool)].mean() - sims[~same].mean())

    lda = LDAProjection(dim=5).fit(x[::2], groups[::2])
    assert margin(lda.transform(x)) > margin(x) + 0.2
    with pytest.raises(ConfigError):
        LDAProjection().transform(x)
