"""The issue-B bi-encoder inside cross-encoder training: joint vectors, hard negatives, residual scores.

A cross-encoder trained from scratch on a few thousand products on a CPU does not learn image-text
matching from random in-batch negatives (the first run's ITM loss stayed at ln 2). Two things fix that:

- **Residual scoring.** The matching logit is ``head([CLS]) + a * cos(joint image, joint text) + b``
  with ``a`` learned (``ImageTextMatching(residual=True)``): at initialisation it re-ranks exactly as the
  bi-encoder does, so training only has to learn a *correction* the patches and word pieces support.
- **Hard negatives from the bi-encoder.** Half of the mismatched pairs (``hard_fraction``) are drawn from
  the bi-encoder's top ``pool`` neighbours of the product (the texts its image ranks highest for the
  text-swapped half, the images its text ranks highest for the image-swapped half), the rest from the
  same sub-category: the negatives a re-ranker actually sees in a top-K list.

``attach_joint`` adds ``joint_img`` / ``joint_txt`` ``[N, D]`` (L2-normalised, row i = product ``ids[i]``)
to the prepared arrays from an ``EmbeddingSet`` folder with ``joint-image`` / ``joint-text`` spaces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from samestyle.errors import ArtifactError


def subset_vectors(
    ids: Sequence[object], embeddings: str | Path, spaces: Sequence[str]
) -> dict[str, np.ndarray]:
    """``{space: [len(ids), D]}`` float32 vectors of the products ``ids`` from an embeddings folder.

    Raises:
        ArtifactError: the folder lacks one of ``spaces``, or a product has no vector there.
    """
    from samestyle.pipeline.embeddings import EmbeddingSet

    emb = EmbeddingSet.load(embeddings, verify=False)
    for space in spaces:
        if space not in emb.vectors:
            raise ArtifactError(
                f"{embeddings}: no '{space}' vectors (has {sorted(emb.vectors)}); "
                "run 'samestyle embed --model RUN' with the issue-B run first"
            )
    pos = {pid: i for i, pid in enumerate(emb.ids)}
    missing = [str(i) for i in ids if str(i) not in pos]
    if missing:
        raise ArtifactError(
            f"{embeddings}: {len(missing)} products have no joint vector, e.g. '{missing[0]}'"
        )
    rows = np.array([pos[str(i)] for i in ids])
    return {space: np.asarray(emb.vectors[space][rows], dtype=np.float32) for space in spaces}


def attach_joint(data: dict[str, np.ndarray], embeddings: str | Path) -> dict[str, np.ndarray]:
    """``data`` plus unit ``joint_img`` / ``joint_txt`` of its ``ids`` from the embeddings folder.

    Raises:
        ArtifactError: as ``subset_vectors``.
    """
    vecs = subset_vectors(list(data["ids"]), embeddings, ("joint-image", "joint-text"))
    out = dict(data)
    for key, space in (("joint_img", "joint-image"), ("joint_txt", "joint-text")):
        v = vecs[space]
        out[key] = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return out


def top_neighbours(query: np.ndarray, gallery: np.ndarray, pool: int, chunk: int = 2048) -> np.ndarray:
    """``[N, pool]`` indices of each query row's highest-scoring gallery rows, itself (row i) excluded.

    ``query`` and ``gallery`` are row-aligned ``[N, D]`` (row i of both = product i).
    """
    n = len(query)
    pool = min(pool, n - 1)
    out = np.empty((n, pool), dtype=np.int64)
    for s in range(0, n, chunk):
        sim = query[s : s + chunk] @ gallery.T  # [c, N]
        sim[np.arange(len(sim)), np.arange(s, s + len(sim))] = -np.inf
        top = np.argpartition(-sim, pool - 1, axis=1)[:, :pool] if pool < n else np.argsort(-sim, axis=1)
        order = np.take_along_axis(sim, top, 1).argsort(axis=1)[:, ::-1]
        out[s : s + len(sim)] = np.take_along_axis(top, order, 1)
    return out


class HardNegativeSampler:
    """Negatives for ``make_batch``: its first half swaps the text, the second half swaps the image.

    Args:
        i2t: ``[N, M]`` for each row the rows whose *text* its image ranks highest (``top_neighbours``).
        t2i: ``[N, M]`` for each row the rows whose *image* its text ranks highest.
        fallback: a sampler (e.g. ``train.NegativeSampler``) for the other negatives.
        hard_fraction: probability that a negative comes from the neighbour lists.
        rng: the random generator.
    """

    def __init__(
        self,
        i2t: np.ndarray,
        t2i: np.ndarray,
        fallback: Callable[[np.ndarray], np.ndarray],
        hard_fraction: float,
        rng: np.random.Generator,
    ) -> None:
        self.i2t, self.t2i, self.fallback = i2t, t2i, fallback
        self.hard_fraction, self.rng = hard_fraction, rng

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        out = np.asarray(self.fallback(rows)).copy()
        half = len(rows) // 2
        hard = self.rng.random(len(rows)) < self.hard_fraction
        pick = self.rng.integers(self.i2t.shape[1], size=len(rows))
        for k in np.flatnonzero(hard):
            table = self.i2t if k < half else self.t2i
            out[k] = table[rows[k], pick[k]]
        return out
