"""extract_features: catalogue order, bad images, incremental re-runs, torn shards, pipelining."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
from features_helpers import CountingImageEncoder, CountingTextEncoder
from PIL import Image

from samestyle.catalog.store import Catalog
from samestyle.features import FeatureCache, extract_features
from samestyle.features.extract import file_sha256, text_sha256
from samestyle.models import l2_normalize
from samestyle.types import Modality

GOOD = [f"p{i}" for i in range(8)]


def test_image_features_with_bad_images(catalog: Catalog, caplog: pytest.LogCaptureFixture) -> None:
    enc = CountingImageEncoder()
    with caplog.at_level(logging.WARNING):
        fm = extract_features(catalog, enc, None, batch_size=3, progress=False)
    assert fm.ids == [p.id for p in catalog] and fm.modality is Modality.IMAGE and fm.dim == 8
    assert fm.present.tolist() == [True] * 8 + [False] * 4
    assert not fm.vectors[8:].any() and fm.vectors.dtype == np.float32
    assert "corrupt-file" in caplog.text and "bad.jpg" in caplog.text  # fails at embed time
    assert "gone" in caplog.text and "none.png" in caplog.text  # missing file
    assert "flagged" not in caplog.text  # known bad at ingest: skipped quietly
    v = l2_normalize(fm.vectors[:8])
    assert v[0] @ v[4] == pytest.approx(1.0) and v[0] @ v[1] > v[0] @ v[2]  # same colour, red ~ dark red
    assert enc.encoded == 8


def test_matches_direct_encoding(catalog: Catalog) -> None:
    enc = CountingImageEncoder()
    fm = extract_features(catalog, enc, None, batch_size=4, progress=False)
    paths = [catalog.image_path(catalog.get(i)) for i in GOOD]
    np.testing.assert_allclose(fm.vectors[:8], enc.encode_images(paths), atol=1e-6)


def test_incremental_rerun_computes_only_new_and_changed(catalog: Catalog, tmp_path: Path) -> None:
    enc = CountingImageEncoder()
    cache = FeatureCache(tmp_path / "cache", enc.name, enc.dim)
    first = extract_features(catalog, enc, cache, batch_size=3, progress=False)
    assert enc.encoded == 8
    again = extract_features(
        catalog, enc, FeatureCache(tmp_path / "cache", enc.name, enc.dim), progress=False
    )
    assert enc.encoded == 8  # nothing recomputed
    np.testing.assert_array_equal(again.vectors, first.vectors)
    np.testing.assert_array_equal(again.present, first.present)

    # p1 gets a new (blue) image; p99 is a new product
    root = catalog.image_root
    assert root is not None
    Image.new("RGB", (60, 80), (20, 40, 200)).save(root / "images" / "p1.png")
    Image.new("RGB", (60, 80), (0, 0, 0)).save(root / "images" / "p99.png")
    new = dataclasses.replace(catalog.get("p0"), id="p99", image="images/p99.png")
    changed = Catalog([*catalog.products, new], image_root=root)
    third = extract_features(
        changed, enc, FeatureCache(tmp_path / "cache", enc.name, enc.dim), progress=False
    )
    assert enc.encoded == 10
    np.testing.assert_allclose(third.vectors[1], first.vectors[2], atol=1e-6)  # now blue like p2
    assert third.present[-1]


def test_ingest_hash_is_used_when_present(catalog: Catalog, tmp_path: Path) -> None:
    enc = CountingImageEncoder()
    cache = FeatureCache(tmp_path / "c", enc.name, enc.dim)
    extract_features(catalog, enc, cache, progress=False)
    p0 = catalog.get("p0")
    path = catalog.image_path(p0)
    assert path is not None and (p0.id, file_sha256(path)) in cache
    hashed = dataclasses.replace(p0, image_sha256="f" * 64)
    extract_features(Catalog([hashed], catalog.image_root), enc, cache, progress=False)
    assert (p0.id, "f" * 64) in cache and enc.encoded == 9


def test_torn_shard_is_recomputed(catalog: Catalog, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    enc = CountingImageEncoder()
    cache = FeatureCache(tmp_path / "cache", enc.name, enc.dim)
    first = extract_features(
        catalog, enc, cache, batch_size=4, progress=False, flush_rows=4
    )  # two shards of 4
    shard = cache.dir / "part-00001.npy"
    shard.write_bytes(shard.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        again = extract_features(
            catalog, enc, FeatureCache(tmp_path / "cache", enc.name, enc.dim), progress=False
        )
    assert "part-00001" in caplog.text
    assert enc.encoded == 8 + 4
    np.testing.assert_allclose(again.vectors, first.vectors, atol=1e-6)


def test_text_features_are_incremental(catalog: Catalog, tmp_path: Path) -> None:
    enc = CountingTextEncoder()
    cache = FeatureCache(tmp_path / "cache", enc.name, enc.dim)
    fm = extract_features(catalog, enc, cache, batch_size=2, progress=False)
    assert fm.present.all() and fm.modality is Modality.TEXT and enc.encoded == len(catalog)
    np.testing.assert_allclose(fm.vectors, enc.encode_texts([p.text for p in catalog]), atol=1e-6)
    retitled = dataclasses.replace(catalog.get("p3"), title="green gown")
    products = [retitled if p.id == "p3" else p for p in catalog]
    enc.encoded = 0
    extract_features(Catalog(products, catalog.image_root), enc, cache, progress=False)
    assert enc.encoded == 1 and ("p3", text_sha256("green gown")) in cache


def test_pipelined_and_inline_decoding_agree(catalog: Catalog) -> None:
    a = extract_features(
        catalog, CountingImageEncoder(), None, batch_size=3, progress=False, decode_workers=0
    )
    b = extract_features(
        catalog, CountingImageEncoder(), None, batch_size=3, progress=False, decode_workers=3
    )
    np.testing.assert_array_equal(a.vectors, b.vectors)
    np.testing.assert_array_equal(a.present, b.present)


def test_cache_of_another_encoder_is_refused(catalog: Catalog, tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, "other/v1", 8)
    with pytest.raises(ValueError, match="other/v1"):
        extract_features(catalog, CountingImageEncoder(), cache, progress=False)


def test_empty_catalogue(tmp_path: Path) -> None:
    enc = CountingImageEncoder()
    fm = extract_features(Catalog([]), enc, FeatureCache(tmp_path, enc.name, enc.dim), progress=False)
    assert fm.vectors.shape == (0, 8) and fm.ids == []
