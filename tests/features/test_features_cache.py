"""FeatureCache: round trip, persistence, new hashes, compaction, damaged and orphan shards."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from samestyle.errors import ArtifactError
from samestyle.features.cache import MANIFEST, FeatureCache

NAME = "fake-image/colour/v1-d4"


def vecs(n: int, start: float = 0.0, dim: int = 4) -> np.ndarray:
    return (np.arange(n * dim, dtype=np.float32).reshape(n, dim) + start) / 7


def test_round_trip_and_persistence(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, NAME, 4)
    keys = [("a", "h1"), ("b", "h2"), ("c", "h3")]
    cache.put(keys, vecs(3))
    got, found = cache.lookup([("b", "h2"), ("zz", "h"), ("a", "h1")])
    assert found.tolist() == [True, False, True]
    np.testing.assert_array_equal(got[0], vecs(3)[1])
    assert got[1].tolist() == [0, 0, 0, 0] and got.dtype == np.float32
    reopened = FeatureCache(tmp_path, NAME, 4)
    assert len(reopened) == 3
    np.testing.assert_array_equal(reopened.lookup(keys)[0], vecs(3))
    assert (tmp_path / "fake-image__colour__v1-d4" / MANIFEST).exists()


def test_changed_hash_is_a_new_entry_and_compact_drops_stale(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, NAME, 4)
    cache.put([("a", "old"), ("b", "h")], vecs(2))
    cache.put([("a", "new")], vecs(1, start=100))
    assert cache.lookup([("a", "new")])[1].all() and cache.lookup([("a", "old")])[1].all()
    kept = cache.compact(live_keys=[("a", "new"), ("b", "h")])
    assert kept == 2
    reopened = FeatureCache(tmp_path, NAME, 4)
    got, found = reopened.lookup([("a", "new"), ("a", "old"), ("b", "h")])
    assert found.tolist() == [True, False, True]
    np.testing.assert_array_equal(got[0], vecs(1, start=100)[0])
    assert sorted(p.name for p in reopened.dir.glob("part-*")) == [
        "part-00002.keys.parquet",
        "part-00002.npy",
    ]


def test_later_put_wins_for_a_repeated_key(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, NAME, 4)
    cache.put([("a", "h")], vecs(1))
    cache.put([("a", "h")], vecs(1, start=5))
    np.testing.assert_array_equal(FeatureCache(tmp_path, NAME, 4).lookup([("a", "h")])[0], vecs(1, start=5))
    assert cache.compact() == 1


def test_float16_storage(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, "maps/v1", 1280 * 49, dtype="float16")
    x = np.random.default_rng(0).standard_normal((3, 1280 * 49)).astype(np.float32)
    cache.put([("a", "1"), ("b", "2"), ("c", "3")], x)
    got = FeatureCache(tmp_path, "maps/v1", 1280 * 49).lookup([("c", "3")])[0]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[0], x[2], atol=4e-3)
    assert (cache.dir / "part-00000.npy").stat().st_size < x.nbytes // 2 + 1000


def test_truncated_shard_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = FeatureCache(tmp_path, NAME, 4)
    cache.put([("a", "1")], vecs(1))
    cache.put([("b", "2")], vecs(1, start=3))
    npy = cache.dir / "part-00001.npy"
    npy.write_bytes(npy.read_bytes()[:-8])  # torn write
    with caplog.at_level(logging.WARNING):
        reopened = FeatureCache(tmp_path, NAME, 4)
    assert "part-00001" in caplog.text
    assert reopened.lookup([("a", "1"), ("b", "2")])[1].tolist() == [True, False]
    reopened.put([("b", "2")], vecs(1, start=3))  # recomputed
    assert FeatureCache(tmp_path, NAME, 4).lookup([("b", "2")])[1].all()


def test_missing_keys_file_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = FeatureCache(tmp_path, NAME, 4)
    cache.put([("a", "1")], vecs(1))
    (cache.dir / "part-00000.keys.parquet").write_bytes(b"PAR1 torn")
    with caplog.at_level(logging.WARNING):
        assert len(FeatureCache(tmp_path, NAME, 4)) == 0
    assert "damaged shard" in caplog.text


def test_orphan_shard_from_a_killed_writer_is_ignored_and_cleaned(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, NAME, 4)
    cache.put([("a", "1")], vecs(1))
    # a writer killed after its shard but before the manifest, plus a leftover temp file
    np.save(cache.dir / "part-00001.npy", vecs(1))
    (cache.dir / ".part-00002.npy.abc.tmp").write_bytes(b"half")
    reopened = FeatureCache(tmp_path, NAME, 4)
    assert len(reopened) == 1
    reopened.put([("b", "2")], vecs(1))  # skips the orphan's number
    assert (reopened.dir / "part-00002.npy").exists()
    reopened.compact()
    assert sorted(p.name for p in reopened.dir.iterdir() if p.name.startswith((".part", "part"))) == [
        "part-00003.keys.parquet",
        "part-00003.npy",
    ]
    assert len(FeatureCache(tmp_path, NAME, 4)) == 2


def test_unreadable_manifest_starts_empty(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = FeatureCache(tmp_path, NAME, 4)
    cache.put([("a", "1")], vecs(1))
    (cache.dir / MANIFEST).write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert len(FeatureCache(tmp_path, NAME, 4)) == 0
    assert "manifest" in caplog.text


def test_dim_mismatch_and_bad_put_are_refused(tmp_path: Path) -> None:
    FeatureCache(tmp_path, NAME, 4).put([("a", "1")], vecs(1))
    with pytest.raises(ArtifactError, match="dim 4"):
        FeatureCache(tmp_path, NAME, 8)
    with pytest.raises(ValueError):
        FeatureCache(tmp_path, NAME, 4).put([("a", "1")], vecs(2))
    FeatureCache(tmp_path, NAME, 4).put([], np.zeros((0, 4), np.float32))  # no-op


def test_compact_of_an_empty_cache(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, NAME, 4)
    cache.put([("a", "1")], vecs(1))
    assert cache.compact(live_keys=[]) == 0
    assert len(FeatureCache(tmp_path, NAME, 4)) == 0
