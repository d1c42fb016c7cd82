"""Cross-encoder scoring for the sample-100 protocol: alone, or re-ranking a bi-encoder's top K.

``CrossScorer`` turns the matching (ITM) logit of a trained ``Pretrainer`` into a
``samestyle.eval.protocols.ScoreFn`` over row indices of given token / patch arrays. ``rerank_score_fn``
keeps the bi-encoder order below its top K and orders the top K by the cross-encoder, which is the
FashionBERT / Kaleido-BERT deployment: the cheap bi-encoder retrieves, the cross-encoder re-scores.

Example:
    >>> scorer = CrossScorer(model, data["tokens"][test], data["patches"][test])  # doctest: +SKIP
    >>> fn = rerank_score_fn(dot_score_fn(img, txt), scorer, 10)  # doctest: +SKIP
    >>> sample100(img, txt, groups, score_fn=fn)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from samestyle.eval.protocols import Direction, ScoreFn
from samestyle.pretrain.train import Pretrainer

_OFFSET = 1e4  # lifts the re-scored top K above every bi-encoder score (cosines, |s| <= 1)


class CrossScorer:
    """ITM logits of (text row, image row) pairs.

    Args:
        model: a trained ``Pretrainer`` with an "itm" task (eval mode is set here).
        tokens: ``[N, T]`` local token ids; patches: ``[N, P, D]`` patch features (row i = product i).
        batch_size: pairs per forward pass.
        joint: ``(joint image [N, D], joint text [N, D])`` L2-normalised bi-encoder vectors; needed by a
            model trained with ``residual`` matching (its logit adds their scaled cosine).
    """

    def __init__(
        self,
        model: Pretrainer,
        tokens: np.ndarray,
        patches: np.ndarray,
        batch_size: int = 512,
        joint: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        if "itm" not in model.tasks:
            raise ValueError("the pre-trained model has no 'itm' head; train it with the itm task")
        if getattr(model.tasks["itm"], "residual", False) and joint is None:
            raise ValueError("this model scores a residual over the bi-encoder: pass joint=(image, text)")
        self.model = model.eval()
        self.tokens = torch.from_numpy(np.ascontiguousarray(tokens))
        self.patches = torch.from_numpy(np.ascontiguousarray(patches))
        self.batch_size = batch_size
        self.joint = (
            None if joint is None else tuple(torch.from_numpy(np.asarray(j, np.float32)) for j in joint)
        )

    def pairs(self, text_rows: NDArray[np.int64], image_rows: NDArray[np.int64]) -> NDArray[np.float32]:
        """``[M]`` logits of the pairs (``text_rows[m]``, ``image_rows[m]``)."""
        t_idx, i_idx = torch.from_numpy(text_rows.ravel()), torch.from_numpy(image_rows.ravel())
        out = []
        with torch.inference_mode():
            for s in range(0, len(t_idx), self.batch_size):
                sl = slice(s, s + self.batch_size)
                bi = None
                if self.joint is not None:
                    bi = (self.joint[0][i_idx[sl]] * self.joint[1][t_idx[sl]]).sum(-1)
                out.append(self.model.itm_score(self.tokens[t_idx[sl]], self.patches[i_idx[sl]].float(), bi))
        return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)

    def __call__(
        self, query_idx: NDArray[np.int64], cand: NDArray[np.int64], direction: Direction
    ) -> NDArray[Any]:
        q = np.broadcast_to(np.asarray(query_idx)[:, None], cand.shape)
        text, image = (cand, q) if direction == "i2t" else (q, cand)
        return self.pairs(np.ascontiguousarray(text), np.ascontiguousarray(image)).reshape(cand.shape)


def dot_score_fn(image: NDArray[Any], text: NDArray[Any]) -> ScoreFn:
    """The bi-encoder: dot products of L2-normalised image / text vectors (row i = product i)."""

    def score(query_idx: NDArray[np.int64], cand: NDArray[np.int64], direction: Direction) -> NDArray[Any]:
        q, c = (image, text) if direction == "i2t" else (text, image)
        return np.einsum("bd,bcd->bc", q[query_idx], c[cand])  # [B, C]

    return score


def rerank_score_fn(bi: ScoreFn, cross: ScoreFn, k: int) -> ScoreFn:
    """Scores whose order is: the bi-encoder's top ``k`` ordered by ``cross``, then the rest in bi order.

    Candidates tied with the ``k``-th bi-encoder score are re-scored too: cutting a tie at position ``k``
    would lift the tied candidates that happen to sort first (in sample-100 the positive is the first
    candidate) above the others, an optimistic tie-break the bi-encoder's pessimistic ranks never get.
    Duplicate titles tie often in Myntra (an R@10 artifact of +0.014 at K = 10 before this rule).
    """

    def score(query_idx: NDArray[np.int64], cand: NDArray[np.int64], direction: Direction) -> NDArray[Any]:
        s = np.asarray(bi(query_idx, cand, direction), dtype=np.float64)  # [B, C]
        kk = min(k, cand.shape[1])
        order = np.argsort(-s, axis=1, kind="stable")  # [B, C]
        kth = s[np.arange(len(cand)), order[:, kk - 1]]  # [B]
        counts = (s >= kth[:, None]).sum(1)  # the top kk and every candidate tied with the kk-th
        out = s.copy()
        plain = np.flatnonzero(counts == kk)  # most rows: one batched call of [B', kk] pairs
        tied = np.flatnonzero(counts > kk)  # the rest: one call each, with their m > kk candidates
        for rows, m in [(plain, kk), *((tied[i : i + 1], int(counts[tied[i]])) for i in range(len(tied)))]:
            if len(rows):
                top = order[rows, :m]  # [R, m]: a row's chosen candidates come first in its order
                sel = cand[rows[:, None], top]
                re = np.asarray(cross(query_idx[rows], sel, direction), dtype=np.float64)
                out[rows[:, None], top] = _OFFSET + re
        return out

    return score


def rerank_latency(scorer: CrossScorer, k: int, n_queries: int = 20, seed: int = 0) -> dict[str, float]:
    """Median / p90 seconds to re-score ``k`` candidates for one query (one forward of ``k`` pairs)."""
    rng = np.random.default_rng(seed)
    n = len(scorer.tokens)
    times = []
    for _ in range(n_queries):
        q = np.full(k, rng.integers(n), dtype=np.int64)
        c = rng.integers(n, size=k).astype(np.int64)
        t0 = time.perf_counter()
        scorer.pairs(c, q)
        times.append(time.perf_counter() - t0)
    arr = np.asarray(times)
    return {"k": float(k), "median_s": float(np.median(arr)), "p90_s": float(np.quantile(arr, 0.9))}
