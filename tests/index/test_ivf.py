"""IVF (faiss-ivf) against the exact twin: auto parameters, calibrated recall, filters, removes, reload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from index_helpers import pair_with_exact, recall

from samestyle.errors import ConfigError
from samestyle.index import FaissIVFIndex, IVFConfig, VectorIndex
from samestyle.index.ivf import auto_nlist


def test_auto_nlist_follows_size() -> None:
    assert auto_nlist(10) == 1
    assert auto_nlist(1_000_000) == 4096  # ~244 vectors a cell
    assert auto_nlist(100_000) == 1024
    assert all(auto_nlist(n) * 39 <= n for n in (100, 1000, 5000, 20_000))
    with pytest.raises(ConfigError, match="codec"):
        IVFConfig(codec="lsh")


@pytest.mark.parametrize("codec", ["sq8", "flat", "fp16"])
def test_calibrated_nprobe_reaches_target_recall(data, codec: str) -> None:
    vecs, queries = data(8000, 200, 32, seed=5, clusters=60)
    ivf = FaissIVFIndex(32, IVFConfig(codec=codec, target_recall=0.95))
    exact, _ = pair_with_exact(ivf, vecs)
    assert ivf.trained and ivf.nlist == auto_nlist(8000) and 1 <= ivf.nprobe <= ivf.nlist
    assert ivf.nprobe < ivf.nlist  # it found a cheaper setting than a full scan
    assert recall(ivf.search(queries, 10), exact.search(queries, 10)) >= 0.93


def test_untrained_buffer_is_exact_and_trains_at_min_train(unit) -> None:
    vecs = unit(600, 16, seed=2)
    ivf = FaissIVFIndex(16, IVFConfig(min_train=500))
    exact, _ = pair_with_exact(ivf, vecs[:400])
    assert not ivf.trained
    q = unit(5, 16, seed=3)
    got, want = ivf.search(q, 5), exact.search(q, 5)
    assert [[p for p, _ in r] for r in got] == [[p for p, _ in r] for r in want]
    ivf.add([f"x{i}" for i in range(200)], vecs[400:])
    assert ivf.trained and len(ivf) == 600


def test_filtered_cell_walk_fills_k_and_never_returns_disallowed(data) -> None:
    vecs, queries = data(6000, 40, 32, seed=8, clusters=50)
    ivf = FaissIVFIndex(32, IVFConfig(exact_filter_max=0))
    exact, ids = pair_with_exact(ivf, vecs)
    chosen = {ids[i] for i in np.flatnonzero(np.random.default_rng(4).random(len(ids)) < 0.02)}
    got = ivf.search(queries, 10, ivf.allow(chosen))
    want = exact.search(queries, 10, exact.allow(chosen))
    assert all(len(r) == 10 and {p for p, _ in r} <= chosen for r in got)
    assert recall(got, want) >= 0.8


def test_remove_upsert_and_reload_trained(data, tmp_path: Path) -> None:
    vecs, queries = data(3000, 30, 16, seed=9, clusters=20)
    ivf = FaissIVFIndex(16, IVFConfig(codec="sq8"))
    exact, ids = pair_with_exact(ivf, vecs)
    ivf.remove(ids[:500])
    exact.remove(ids[:500])
    assert not {p for r in ivf.search(queries, 20) for p, _ in r} & set(ids[:500])
    ivf.save(tmp_path / "ivf")
    loaded = VectorIndex.load(tmp_path / "ivf")
    assert isinstance(loaded, FaissIVFIndex) and loaded.trained and loaded.nprobe == ivf.nprobe
    assert loaded.search(queries, 10) == ivf.search(queries, 10)
    np.testing.assert_allclose(loaded.get_vectors(ids[600:610]), vecs[600:610], atol=loaded.reconstruct_atol)


def test_pq_codec_is_compact() -> None:
    ivf = FaissIVFIndex(64, IVFConfig(codec="pq", pq_m=16))
    assert ivf.config.pq_m == 16
    with pytest.raises(ConfigError, match="divide"):
        FaissIVFIndex(60, IVFConfig(codec="pq", pq_m=16))
