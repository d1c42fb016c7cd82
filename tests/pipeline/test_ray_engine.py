"""``embed --engine ray`` on a local 2-CPU Ray with the fake encoders equals the local embed path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samestyle.catalog.store import Catalog
from samestyle.models import IMAGE_ENCODERS, TEXT_ENCODERS
from samestyle.pipeline.embed import embed_catalog
from samestyle.pipeline.embeddings import EmbeddingSet
from samestyle.types import Product

ray = pytest.importorskip("ray", reason="the Ray engine needs ray[data] (make install)")


def _catalog(tmp: Path, n: int = 60) -> Catalog:
    rng = np.random.default_rng(0)
    (tmp / "img").mkdir()
    products = []
    for i in range(n):
        image = f"p{i}.png"
        if i % 13 == 5:
            image = "missing.png"  # fails to open: zero row, present False, in both engines
        else:
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            Image.new("RGB", (20, 28), colour).save(tmp / "img" / image)
        products.append(Product(id=f"p{i}", title=f"product {i} colour {i % 7}", image=image))
    return Catalog(products=products, image_root=tmp / "img")


def test_ray_engine_writes_the_same_embeddings(tmp_path: Path) -> None:
    from samestyle.pipeline.ray_engine import embed_catalog_ray

    catalog = _catalog(tmp_path)
    local, _ = embed_catalog(
        catalog, tmp_path / "local", IMAGE_ENCODERS.build("fake"), TEXT_ENCODERS.build("fake"), None,
        progress=False,
    )  # fmt: skip
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        _, report = embed_catalog_ray(
            catalog, tmp_path / "ray", "fake", "fake", tmp_path / "cache", workers=2, batch_size=8
        )
        assert report.with_image == local.present["image"].sum() == 60 - 5
        again, _ = embed_catalog_ray(
            catalog, tmp_path / "ray2", "fake", "fake", tmp_path / "cache", workers=2
        )
    finally:
        ray.shutdown()
    loaded = EmbeddingSet.load(tmp_path / "ray")
    assert loaded.ids == local.ids
    for space in ("image", "text"):
        np.testing.assert_array_equal(loaded.present[space], local.present[space])
        np.testing.assert_allclose(loaded.vectors[space], local.vectors[space], atol=1e-6)
        np.testing.assert_allclose(again.vectors[space], local.vectors[space], atol=1e-6)  # from the cache
    assert loaded.encoders == local.encoders


def test_ray_data_progress_bars_are_off_during_the_run_and_restored_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from samestyle.pipeline import ray_engine

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = True
    seen: list[bool] = []

    def spy(*args: object) -> object:
        seen.append(ray.data.DataContext.get_current().enable_progress_bars)
        raise RuntimeError("stop here")

    monkeypatch.setattr(ray_engine, "_run", spy)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        with pytest.raises(RuntimeError, match="stop here"):
            ray_engine.embed_catalog_ray(_catalog(tmp_path, 3), tmp_path / "o", "fake", "fake", None)
    finally:
        ray.shutdown()
    assert seen == [False]
    assert ctx.enable_progress_bars is True


def test_actors_infer_at_most_16_inputs_a_thread() -> None:
    from samestyle.pipeline.ray_engine import EncodeActor

    assert EncodeActor(None, "fake", threads=1, batch_size=64).batch_size == 16
    assert EncodeActor(None, "fake", threads=2, batch_size=64).batch_size == 32
    assert EncodeActor(None, "fake", threads=1, batch_size=8).batch_size == 8
