"""SIGKILL at chosen points of ingest, embed, index and train (through the CLI, fake encoders).

After every kill: what a reader loads is the last good state (the previous artifact, or none, or the
finished one), never a mix; the same command run again finishes; its result equals an uninterrupted
run's (same products, same vectors within 1e-5, same trained weights). Crash points are drawn with a
fixed seed, one from each equal slice of the run's file-system operations, plus a few kills at random
moments; see reliability_crash.py and docs/reliability.md.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reliability_crash import (
    EMBED_ARGV,
    INDEX_ARGV,
    TRAIN_ARGV,
    RunResult,
    Scenario,
    Zygote,
    cached_counts,
    catalog_state,
    crash_loop,
    emb_state,
    index_state,
    ingest_argv,
    run_state,
    write_inputs,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

SCALE = float(os.environ.get("RELIABILITY_SCALE", "1"))  # e.g. 5 for a longer campaign
OP_POINTS = round(12 * SCALE)  # crash points per scenario at file-system operations (fixed seed)
TIMED = round(3 * SCALE)  # kills at random moments per scenario


class Lab:
    """Inputs, a warm fork server and the start states every scenario copies from."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inputs = write_inputs(root / "inputs")
        self.zygote = Zygote(root)
        self.work = root / "work"
        self.starts = root / "starts"
        self.empty = self._state("empty", [])
        self.v1 = self._state("v1", [ingest_argv(self.inputs, 1), EMBED_ARGV, INDEX_ARGV])
        self.v2_cat = self._state("v2-cat", [ingest_argv(self.inputs, 2)])
        self.v2_emb = self._state("v2-emb", [ingest_argv(self.inputs, 2), EMBED_ARGV])

    def _state(self, name: str, commands: list[list[str]]) -> Path:
        folder = self.starts / name
        folder.mkdir(parents=True)
        for argv in commands:
            result = self.zygote.run(argv, folder)
            assert result.exit == 0, f"building start state {name}: {argv[0]} failed:\n{result.log}"
        return folder

    def mix(self, name: str, parts: dict[str, Path]) -> Path:
        """A start state made of folders of others: ``{"cat": v2_cat, ...}`` (copied)."""
        folder = self.starts / name
        for sub, source in parts.items():
            shutil.copytree(source / sub, folder / sub)
        return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("crash"))
    yield lab
    lab.zygote.close()


def _with_rejects(work: Path) -> dict[str, Any] | None:
    state = catalog_state(work)
    if state is not None:
        state["rejects"] = (work / "cat" / "rejects.csv").read_text(encoding="utf-8")
    return state


def test_ingest_killed_into_an_empty_folder(lab: Lab) -> None:
    scenario = Scenario(
        "ingest-fresh",
        ingest_argv(lab.inputs, 2),
        lab.empty,
        catalog_state,
        allowed=[None],
        final=_with_rejects,
    )
    stats = crash_loop(lab.zygote, scenario, lab.work, OP_POINTS // 2, TIMED)
    assert stats["op_points"] >= 6


def test_ingest_killed_while_replacing_a_catalogue(lab: Lab) -> None:
    previous = catalog_state(lab.v1)
    assert previous is not None and len(previous["products"]) == 49
    scenario = Scenario(
        "ingest-overwrite",
        ingest_argv(lab.inputs, 2),
        lab.mix("ingest-overwrite", {"cat": lab.v1}),
        catalog_state,
        allowed=[previous],
        final=_with_rejects,
    )
    stats = crash_loop(lab.zygote, scenario, lab.work, OP_POINTS, TIMED)
    assert stats["outcomes"].get("previous") and stats["outcomes"].get("final")  # both sides were hit


def _cache_contents(cache_root: Path) -> dict[str, dict[tuple[str, str], np.ndarray]]:
    from samestyle.features.cache import FeatureCache
    from samestyle.pipeline.encoders import build_encoders

    out = {}
    for enc in build_encoders("fake", "fake"):
        assert enc is not None
        cache = FeatureCache(cache_root, enc.name, enc.dim)
        keys = list(cache._index)
        vectors, found = cache.lookup(keys)
        assert found.all()
        out[enc.name] = dict(zip(keys, vectors, strict=True))
    return out


def test_embed_killed_resumes_from_the_feature_cache(lab: Lab) -> None:
    reference = _cache_contents(lab.v2_emb / "cache")
    assert all(len(v) >= 40 for v in reference.values())

    def check_cache(work: Path) -> dict[str, int]:
        """Every vector the cache serves after the crash is the right one; returns how many per encoder."""
        sizes = {}
        for name, entries in _cache_contents(work / "cache").items():
            for key, vec in entries.items():
                assert np.allclose(vec, reference[name][key], atol=1e-6), f"cache {name} {key}: wrong vector"
            sizes[name] = len(entries)
        return sizes

    def check_resumed(sizes: dict[str, int], rerun: RunResult) -> None:
        assert cached_counts(rerun.log) == sizes  # the re-run reused every vector the killed run saved

    scenario = Scenario(
        "embed-fresh",
        EMBED_ARGV,
        lab.v2_cat,
        emb_state,
        allowed=[None],
        check_crash=check_cache,
        check_rerun=check_resumed,
    )
    stats = crash_loop(lab.zygote, scenario, lab.work, OP_POINTS + 4, TIMED)
    assert stats["ops"] > 20


def test_index_killed_while_replacing_an_index(lab: Lab) -> None:
    previous = index_state(lab.v1)
    assert previous is not None
    scenario = Scenario(
        "index-overwrite",
        INDEX_ARGV,
        lab.mix("index-overwrite", {"cat": lab.v2_emb, "emb": lab.v2_emb, "idx": lab.v1}),
        index_state,
        allowed=[previous],
    )
    stats = crash_loop(lab.zygote, scenario, lab.work, OP_POINTS, TIMED)
    assert stats["outcomes"].get("previous") and stats["outcomes"].get("final")


def test_training_killed_resumes_to_the_same_model(lab: Lab) -> None:
    import torch

    from samestyle.train.run import load_run

    def last_good_state(work: Path) -> int | None:
        """The run folder loads after the crash: the best model so far and the last checkpoint."""
        run = work / "run"
        if (run / "model.safetensors").exists():
            model, _ = load_run(run)
            assert not model.training
        if not (run / "checkpoint.pt").exists():
            return None
        ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
        assert 1 <= ckpt["state"]["epoch"] <= 8
        return int(ckpt["state"]["epoch"])

    def check_resumed(epoch: int | None, rerun: RunResult) -> None:
        if epoch is not None:
            assert re.search(rf"resumed \S+ at epoch {epoch}\b", rerun.log), rerun.log[-2000:]

    scenario = Scenario(
        "train-fresh",
        TRAIN_ARGV,
        lab.v2_emb,
        None,
        check_crash=last_good_state,
        check_rerun=check_resumed,
        final=run_state,
    )
    stats = crash_loop(lab.zygote, scenario, lab.work, OP_POINTS, TIMED + 1)
    assert stats["ops"] > 20


def test_embed_killed_while_replacing_embeddings(lab: Lab) -> None:
    previous = emb_state(lab.v1)
    assert previous is not None

    def between_ids_and_manifest(ops: list[list[str]]) -> list[int]:
        names = [Path(path).name for _, path in ops]
        first = next(
            i for i, (op, path) in enumerate(ops) if op == "replace" and Path(path).name.startswith("ids.")
        )
        last = max(
            i for i, (op, path) in enumerate(ops) if op == "replace" and path.endswith("embeddings.json")
        )
        assert names[first].startswith("ids.")
        return [2 * (first + 1), 2 * last + 1]  # just after ids.json, just before embeddings.json

    scenario = Scenario(
        "embed-overwrite",
        EMBED_ARGV,
        lab.mix("embed-overwrite", {"cat": lab.v2_cat, "emb": lab.v1, "cache": lab.v1}),
        emb_state,
        allowed=[previous],
    )
    crash_loop(lab.zygote, scenario, lab.work, 0, pick=between_ids_and_manifest)
