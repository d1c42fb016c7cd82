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


@pytest.mark.parametrize("collect", ["store", "disk"])
def test_ray_engine_writes_the_same_embeddings(tmp_path: Path, collect: str) -> None:
    from samestyle.pipeline.ray_engine import embed_catalog_ray

    catalog = _catalog(tmp_path)
    local, _ = embed_catalog(
        catalog, tmp_path / "local", IMAGE_ENCODERS.build("fake"), TEXT_ENCODERS.build("fake"), None,
        progress=False,
    )  # fmt: skip
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        _, report = embed_catalog_ray(
            catalog, tmp_path / "ray", "fake", "fake", tmp_path / "cache", workers=2, batch_size=8,
            collect=collect, parts_dir=tmp_path / "parts",
        )  # fmt: skip
        assert report.with_image == local.present["image"].sum() == 60 - 5
        again, _ = embed_catalog_ray(
            catalog, tmp_path / "ray2", "fake", "fake", tmp_path / "cache", workers=2, collect=collect
        )
    finally:
        ray.shutdown()
    assert not (tmp_path / "parts").exists() or not any((tmp_path / "parts").iterdir())  # scratch removed
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


def test_an_actor_writing_parts_returns_only_rows_and_a_path_to_the_same_vectors(tmp_path: Path) -> None:
    from samestyle.pipeline.ray_engine import EncodeActor

    catalog = _catalog(tmp_path, 14)
    batch = {
        "row": np.arange(14),
        "path": np.array([str(catalog.image_root / p.image) if p.image else "" for p in catalog.products]),
        "text": np.array([p.text for p in catalog.products]),
    }
    direct = EncodeActor("fake", "fake", threads=1, batch_size=8)(batch)
    out = EncodeActor("fake", "fake", threads=1, batch_size=8, parts_dir=str(tmp_path))(batch)
    assert set(out) == {"row", "part"} and len(set(out["part"])) == 1
    with np.load(out["part"][0]) as part:
        assert set(part.files) == set(direct)
        for key in direct:
            np.testing.assert_array_equal(part[key], direct[key])
    assert not direct["image_ok"][5] and direct["image_ok"].sum() == 13  # the missing image stays absent


def test_collect_options_are_checked_before_ray_starts(tmp_path: Path) -> None:
    from samestyle.errors import ConfigError
    from samestyle.pipeline.ray_engine import embed_catalog_ray

    catalog = _catalog(tmp_path, 2)
    with pytest.raises(ConfigError, match="collect must be"):
        embed_catalog_ray(catalog, tmp_path / "o", "fake", "fake", None, collect="pipe")
    with pytest.raises(ConfigError, match="parts_dir"):
        embed_catalog_ray(catalog, tmp_path / "o", "fake", "fake", None, address="auto", collect="disk")
    assert not ray.is_initialized()


def test_cli_embed_on_ray_with_disk_parts_matches_the_local_engine(tmp_path: Path) -> None:
    from samestyle.catalog.store import write_catalog
    from samestyle.cli import main

    catalog = _catalog(tmp_path, 20)
    write_catalog(tmp_path / "cat", catalog.products, image_root=catalog.image_root)
    common = ["embed", "--catalog", str(tmp_path / "cat"), "--image-encoder", "fake"]
    common += ["--text-encoder", "fake"]
    assert main([*common, "--out", str(tmp_path / "local"), "--no-cache"]) == 0
    ray_args = ["--engine", "ray", "--ray-workers", "1", "--ray-collect", "disk"]
    assert main([*common, "--out", str(tmp_path / "ray"), "--no-cache", *ray_args,
                 "--ray-parts-dir", str(tmp_path / "parts")]) == 0  # fmt: skip
    local, got = EmbeddingSet.load(tmp_path / "local"), EmbeddingSet.load(tmp_path / "ray")
    for space in ("image", "text"):
        np.testing.assert_array_equal(got.present[space], local.present[space])
        np.testing.assert_allclose(got.vectors[space], local.vectors[space], atol=1e-6)
    assert list((tmp_path / "parts").iterdir()) == []
