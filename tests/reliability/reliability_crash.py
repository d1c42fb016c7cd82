"""The crash-test harness: a client for the fork server, the stage scenarios, and state comparisons.

A *scenario* is one CLI command run from a fixed start state (a folder copied into ``work/`` before each
try). The harness runs it once uninterrupted (the reference, tracing its file-system operations), then
for each chosen crash point: reset, run with a SIGKILL at that point, check what a reader finds (the
previous state, the final state, or for a stage without a previous state "nothing", never a mix), run
the command again to completion and check the result equals the reference.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ZYGOTE = Path(__file__).with_name("reliability_zygote.py")
SEED = 20240611
FLUSH_ROWS = 8  # feature-cache shard size inside the crash runs (see reliability_zygote._preload)
# What the crash tests tried, for the summary printed at the end of the session (conftest.py).
STATS: list[dict[str, Any]] = []


@dataclass(frozen=True)
class RunResult:
    exit: int | None
    signal: int | None
    seconds: float
    log: str

    @property
    def killed(self) -> bool:
        return self.signal == signal.SIGKILL


class Zygote:
    """Client of ``reliability_zygote.py``: one warm process that forks a child per CLI run."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "SAMESTYLE_CACHE": str(tmp / "samestyle-cache"),
            "RELIABILITY_FLUSH_ROWS": str(FLUSH_ROWS),
        }
        self._stderr = open(tmp / "zygote.stderr", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, str(ZYGOTE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
        )
        ready = self._read()
        assert ready.get("ready"), ready
        self._n = 0

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = (self.tmp / "zygote.stderr").read_text(errors="replace")
            raise RuntimeError(f"the fork server died:\n{err[-3000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(
        self,
        argv: Sequence[str],
        cwd: Path,
        *,
        crash_at: int | None = None,
        kill_after: float | None = None,
        trace: Path | None = None,
    ) -> RunResult:
        self._n += 1
        log = self.tmp / f"run-{self._n}.log"
        log.write_text("")  # a child killed before it opens its log leaves this empty one
        cmd = {
            "argv": list(argv),
            "cwd": str(cwd),
            "log": str(log),
            "crash_at": crash_at,
            "kill_after": kill_after,
            "trace": str(trace) if trace else None,
            "seed": self._n,
        }
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        return RunResult(answer["exit"], answer["signal"], answer["seconds"], log.read_text(errors="replace"))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


# ---- test data ----------------------------------------------------------------------------------

COLOURS = {"red": (220, 30, 30), "blue": (30, 40, 220), "green": (30, 200, 60), "black": (10, 10, 10)}
KINDS = ("shirt", "dress", "shoe", "watch")
N_PRODUCTS = 48


def _rows(version: int) -> list[dict[str, str]]:
    """Catalogue rows; version 2 drops six products of version 1, adds six and retitles six (same count)."""
    rows = []
    ids = list(range(N_PRODUCTS)) if version == 1 else [*range(6, N_PRODUCTS), *range(100, 106)]
    for i in ids:
        colour, kind = list(COLOURS)[i % 4], KINDS[(i // 4) % 4]
        title = f"{colour} {kind} style number {i}"
        if version == 2 and 20 <= i < 26:
            title = f"new {title} edition"
        rows.append({"sku": f"p{i}", "name": title, "cat": f"Apparel > {kind}", "img": f"p{i}.png"})
    rows.append({"sku": "", "name": "row without an id", "cat": "x", "img": ""})  # a fatal reject
    rows.append(
        {"sku": "noimg", "name": "red shirt without image", "cat": "Apparel > shirt", "img": "no.png"}
    )
    return rows


def write_inputs(root: Path) -> dict[str, Path]:
    """Images (shared by both versions) and the two catalogue CSVs; returns their paths."""
    img = root / "img"
    img.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in [*range(N_PRODUCTS), *range(100, 106)]:
        base = np.array(COLOURS[list(COLOURS)[i % 4]])
        rgb = np.clip(base + rng.integers(-25, 25, 3), 0, 255)
        Image.new("RGB", (12, 16), tuple(int(c) for c in rgb)).save(img / f"p{i}.png")
    out = {"img": img}
    for version in (1, 2):
        path = root / f"products-v{version}.csv"
        rows = _rows(version)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        out[f"v{version}"] = path
    return out


def ingest_argv(inputs: dict[str, Path], version: int) -> list[str]:
    return [
        "ingest",
        str(inputs[f"v{version}"]),
        "--out",
        "cat",
        "--image-root",
        str(inputs["img"]),
        "--column",
        "id=sku",
        "--column",
        "title=name",
        "--column",
        "category=cat",
        "--column",
        "image=img",
    ]


EMBED_ARGV = ["-v", "embed", "--catalog", "cat", "--out", "emb", "--cache", "cache", "--threads", "1"]
EMBED_ARGV += ["--image-encoder", "fake", "--text-encoder", "fake"]
INDEX_ARGV = ["index", "--catalog", "cat", "--embeddings", "emb", "--out", "idx"]
TRAIN_ARGV = ["-v", "train", "--out", "run", "--resume"]
for _override in (
    'data.catalog="cat"',
    'data.embeddings="emb"',
    "model.image_dim=16",
    "model.text_dim=32",
    "model.dim=16",
    "model.hidden=32",
    "train.epochs=8",
    "train.patience=2",
    "train.batch_size=16",
    "train.val_queries=10",
    "train.threads=1",
):
    TRAIN_ARGV += ["--set", _override]


# ---- states -------------------------------------------------------------------------------------


def catalog_state(work: Path) -> dict[str, Any] | None:
    """What a reader of ``work/cat`` gets (products, image root, metadata), or None for 'no catalogue'."""
    from samestyle.catalog.store import read_catalog
    from samestyle.errors import ArtifactError

    try:
        cat = read_catalog(work / "cat")
    except ArtifactError:
        return None
    return {"products": cat.products, "image_root": cat.image_root, "meta": cat.meta}


def emb_state(work: Path) -> dict[str, Any] | None:
    from samestyle.errors import ArtifactError
    from samestyle.pipeline.embeddings import EmbeddingSet

    try:
        emb = EmbeddingSet.load(work / "emb")
    except ArtifactError:
        return None
    return {
        "ids": emb.ids,
        "vectors": emb.vectors,
        "present": emb.present,
        "encoders": emb.encoders,
        "meta": emb.meta,
    }


def index_state(work: Path) -> dict[str, Any] | None:
    """Every space as (sorted ids, their vectors), the metadata rows, the manifest's meta; a few searches."""
    from samestyle.errors import ArtifactError
    from samestyle.index.product_index import ProductIndex

    try:
        index = ProductIndex.open(work / "idx")
    except ArtifactError:
        return None
    spaces = {}
    for name in index.spaces():
        ids = sorted(index.space(name).ids)
        vectors = index.get_vectors(name, ids)
        hits = index.search(name, vectors[:3], k=5, with_products=False)
        spaces[name] = {"ids": ids, "vectors": vectors, "hits": [[h.id for h in row] for row in hits]}
    rows = sorted(index.metadata.table.drop_columns(["key"]).to_pylist(), key=lambda r: r["id"])
    return {"spaces": spaces, "metadata": rows, "meta": index.meta}


def run_state(work: Path) -> dict[str, Any]:
    """The trained model's tensors and the metrics without wall times."""
    from safetensors.numpy import load_file

    metrics = json.loads((work / "run" / "metrics.json").read_text(encoding="utf-8"))
    metrics.pop("train_seconds")
    for record in metrics["history"]:
        record.pop("seconds")
    return {"model": load_file(str(work / "run" / "model.safetensors")), "metrics": metrics}


def same(a: Any, b: Any, path: str = "") -> str | None:
    """None when ``a`` equals ``b`` (arrays and floats within 1e-5); else where they differ."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return f"{path}: shape {a.shape} != {b.shape}"
        if a.dtype == bool or b.dtype == bool or a.dtype.kind in "OUS":
            return None if np.array_equal(a, b) else f"{path}: arrays differ"
        return None if np.allclose(a, b, atol=1e-5, rtol=1e-5) else f"{path}: max diff {np.abs(a - b).max()}"
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f"{path}: keys {sorted(set(a) ^ set(b))} differ"
        for k in a:
            if (diff := same(a[k], b[k], f"{path}.{k}")) is not None:
                return diff
        return None
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if (diff := same(x, y, f"{path}[{i}]")) is not None:
                return diff
        return None
    if isinstance(a, float) and isinstance(b, float):
        return None if np.isclose(a, b, atol=1e-5, rtol=1e-5) else f"{path}: {a} != {b}"
    return None if a == b else f"{path}: {a!r} != {b!r}"


# ---- the crash loop -----------------------------------------------------------------------------


@dataclass
class Scenario:
    """One command from one start state.

    Attributes:
        name: for messages and the summary.
        argv: the command (run in ``work/``; the re-run after a crash is the same command).
        start: the folder copied to ``work/`` before each try (its contents are the previous state).
        state: what a reader finds in ``work/`` (compared with :func:`same`), None for nothing.
        allowed: the states a crash may leave besides the final one (the previous state, or None).
        check_crash: extra checks of ``work/`` after a crash (returns facts used by ``check_rerun``).
        check_rerun: extra checks of the re-run's log given those facts.
        final: the state compared after the re-run (default ``state``).
    """

    name: str
    argv: list[str]
    start: Path
    state: Callable[[Path], Any] | None
    allowed: list[Any] = field(default_factory=list)
    check_crash: Callable[[Path], Any] | None = None
    check_rerun: Callable[[Any, RunResult], None] | None = None
    final: Callable[[Path], Any] | None = None


def _reset(work: Path, start: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(start, work, symlinks=True)


def choose_points(n_points: int, k: int, rng: random.Random) -> list[int]:
    """``k`` crash points spread over ``1..n_points``: one drawn at random from each of ``k`` equal strata."""
    k = min(k, n_points)
    edges = np.linspace(1, n_points + 1, k + 1)
    return sorted({rng.randrange(int(lo), max(int(lo) + 1, int(hi))) for lo, hi in itertools.pairwise(edges)})


def crash_loop(
    zygote: Zygote,
    scenario: Scenario,
    work: Path,
    n_ops_points: int,
    n_timed: int = 0,
    pick: Callable[[list[list[str]]], list[int]] | None = None,
) -> dict[str, Any]:
    """Run ``scenario``: the reference, then crashes at ``n_ops_points`` operation points and ``n_timed``
    random moments; every check failure raises AssertionError naming the point. ``pick`` chooses the
    points itself from the reference run's operations (``[[op, path], ...]``) instead."""
    rng = random.Random(f"{SEED}-{scenario.name}")
    final_of = scenario.final or scenario.state
    trace = work.parent / f"{scenario.name}.trace.json"
    _reset(work, scenario.start)
    ref = zygote.run(scenario.argv, work, trace=trace)
    assert ref.exit == 0, f"{scenario.name}: the uninterrupted run failed:\n{ref.log}"
    ops = json.loads(trace.read_text(encoding="utf-8"))
    final = final_of(work) if final_of else None
    final_seen = scenario.state(work) if scenario.state else None
    stats: dict[str, Any] = {"scenario": scenario.name, "ops": len(ops), "op_points": 0, "timed": 0}
    stats.update({"timed_landed": 0, "outcomes": {}, "reference_s": ref.seconds})
    points = pick(ops) if pick else choose_points(2 * len(ops), n_ops_points, rng)
    tries: list[tuple[str, dict[str, Any]]] = [(_point_label(p, ops), {"crash_at": p}) for p in points]
    tries += [
        (f"kill after {t:.3f}s", {"kill_after": t})
        for t in (rng.uniform(0, ref.seconds) for _ in range(n_timed))
    ]
    for label, how in tries:
        _reset(work, scenario.start)
        crashed = zygote.run(scenario.argv, work, **how)
        where = f"{scenario.name}, {label}"
        if "crash_at" in how:
            assert crashed.killed, f"{where}: expected a SIGKILL, got {crashed}:\n{crashed.log[-2000:]}"
            stats["op_points"] += 1
        else:
            stats["timed"] += 1
            if not crashed.killed:
                assert crashed.exit == 0, f"{where}: failed without a crash:\n{crashed.log[-2000:]}"
                continue  # finished before the kill
            stats["timed_landed"] += 1
        if scenario.state is not None:
            seen = scenario.state(work)
            matches = [i for i, ok in enumerate([final_seen, *scenario.allowed]) if same(seen, ok) is None]
            assert matches, (
                f"{where}: a reader finds a state that is neither the previous nor the final one "
                f"(vs final: {_short(same(seen, final_seen))}; "
                f"vs previous: {[_short(same(seen, a)) for a in scenario.allowed]})"
            )
            outcome = "final" if matches[0] == 0 else "previous"
            stats["outcomes"][outcome] = stats["outcomes"].get(outcome, 0) + 1
        facts = scenario.check_crash(work) if scenario.check_crash else None
        rerun = zygote.run(scenario.argv, work)
        assert rerun.exit == 0, f"{where}: the re-run failed:\n{rerun.log[-3000:]}"
        if final_of is not None:
            diff = same(final_of(work), final)
            assert diff is None, f"{where}: re-run result differs from the uninterrupted run: {_short(diff)}"
        if scenario.check_rerun:
            scenario.check_rerun(facts, rerun)
    STATS.append(stats)
    return stats


def _point_label(point: int, ops: list[list[str]]) -> str:
    op, path = ops[(point - 1) // 2]
    return f"point {point} ({'before' if point % 2 else 'after'} {op} {Path(path).name})"


def _short(text: str | None, limit: int = 300) -> str | None:
    return text if text is None or len(text) <= limit else text[:limit] + "..."


def cached_counts(log: str) -> dict[str, int]:
    """``{encoder name: products read from the cache}`` from an ``embed -v`` log."""
    found = re.findall(r"INFO samestyle\.features\.extract: (\S+): \d+ products, (\d+) cached", log)
    return {name: int(n) for name, n in found}
