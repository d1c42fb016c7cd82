"""The prepared Myntra arrays against a recomputation from the cached maps (skipped when absent)."""

from pathlib import Path

import numpy as np
import pytest

from samestyle.pretrain.patches import PatchPCA, kaleido_patches
from samestyle.pretrain.train import PretrainConfig

pytestmark = pytest.mark.real


def test_prepared_patches_match_the_cached_maps() -> None:
    from samestyle.pretrain.run import data_path

    path = data_path(PretrainConfig())
    if not path.exists():
        pytest.skip(f"{path} not prepared (run 'samestyle pretrain --config configs/pretrain.toml')")
    from samestyle.features.cache import FeatureCache
    from samestyle.paths import cache_dir
    from samestyle.pretrain.prepare import load_data

    data = load_data(path)
    cache_root = cache_dir() / "features"
    if not (cache_root / "efficientnet-lite0__onnx__v1__map").exists():
        pytest.skip("no cached maps")
    from samestyle.catalog.store import read_catalog

    catalog_dir = Path(PretrainConfig().data.catalog)
    if not catalog_dir.exists():
        pytest.skip("no Myntra catalogue")
    catalog = read_catalog(catalog_dir)
    cache = FeatureCache(cache_root, "efficientnet-lite0/onnx/v1/map", 1280 * 49, dtype="float16")
    rows = [0, len(data["ids"]) - 1]  # one train, one test product
    keys = [(str(data["ids"][r]), str(catalog.get(str(data["ids"][r])).image_sha256)) for r in rows]
    maps, found = cache.lookup(keys)
    assert found.all()
    pca = PatchPCA(data["pca_mean"], data["pca_components"])
    want = pca.transform(kaleido_patches(maps.reshape(2, 1280, 7, 7))) / float(data["patch_scale"])
    np.testing.assert_allclose(data["patches"][rows].astype(np.float32), want, atol=0.02, rtol=0.02)
    assert data["is_train"][0] and not data["is_train"][-1]
    assert np.isfinite(data["align"][data["tokens"] > 0]).all()
    assert np.isneginf(data["align"][data["tokens"] == 0]).all()
