"""Caption (title generation) metrics and the nearest-neighbour-title baseline. Pure functions, no torch.

Tokenisation (``words``): lower-cased ``\\w+`` runs, so punctuation is dropped on both sides
("Men's T-shirt" -> ``men s t shirt``). Every metric takes ``hyps`` (one string per item) and ``refs``
(a list of reference strings per item; Myntra has one title per product).

- ``corpus_bleu``: BLEU-4 of Papineni et al. (2002) at corpus level: clipped n-gram counts (n = 1..4)
  summed over the corpus, geometric mean of the four precisions, brevity penalty ``exp(1 - r / c)``
  when ``c < r``, with ``r`` the sum over items of the reference length closest to the hypothesis length
  (ties: the shorter). **No smoothing**: a zero (or undefined) precision gives BLEU 0.
- ``cider_d``: CIDEr-D of Vedantam et al. (2015), as in the coco-caption code: per n (1..4) tf-idf
  vectors with document frequencies over the *reference* corpus (``idf = log(N) - log(max(1, df))``),
  hypothesis weights clipped at the reference weights (``min(h, r) * r``), cosine, a gaussian length
  penalty ``exp(-(len_h - len_r)^2 / (2 * 6^2))``, mean over n, mean over references, times 10.
  Length is the number of words (coco-caption counts bigrams, the same difference for non-empty text).
- ``rouge_l``: ROUGE-L F-measure with beta = 1.2 on the longest common subsequence; with several
  references the best precision and the best recall are combined (as coco-caption does).

Example:
    >>> round(corpus_bleu(["a b c d"], [["a b c d"]]).score, 3)
    1.0
    >>> rouge_l(["a b c d"], [["a b c d"]])[0]
    1.0
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+")
Ngram = tuple[str, ...]


def words(text: str) -> list[str]:
    """Lower-cased word tokens (``\\w+`` runs) of ``text``."""
    return _WORD.findall(text.lower())


def ngram_counts(tokens: Sequence[str], n: int) -> Counter[Ngram]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _check(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference lists")
    if any(len(r) == 0 for r in refs):
        raise ValueError("every item needs at least one reference")


@dataclass(frozen=True)
class Bleu:
    """Corpus BLEU: ``score``, n-gram ``precisions``, ``brevity_penalty``, hypothesis / reference length."""

    score: float
    precisions: tuple[float, ...]
    brevity_penalty: float
    hyp_len: int
    ref_len: int


def corpus_bleu(hyps: Sequence[str], refs: Sequence[Sequence[str]], max_n: int = 4) -> Bleu:
    """Corpus BLEU-``max_n`` (see the module doc; no smoothing)."""
    _check(hyps, refs)
    hit, total = [0] * max_n, [0] * max_n
    c = r = 0
    for hyp, rs in zip(hyps, refs, strict=True):
        h = words(hyp)
        ref_toks = [words(x) for x in rs]
        c += len(h)
        r += min((abs(len(t) - len(h)), len(t)) for t in ref_toks)[1]
        for n in range(1, max_n + 1):
            hc = ngram_counts(h, n)
            best: Counter[Ngram] = Counter()
            for t in ref_toks:
                best |= ngram_counts(t, n)  # max count of each n-gram over the references
            hit[n - 1] += sum(min(k, best[g]) for g, k in hc.items())
            total[n - 1] += sum(hc.values())
    prec = tuple(h / t if t else 0.0 for h, t in zip(hit, total, strict=True))
    bp = 1.0 if c > r else (math.exp(1 - r / c) if c else 0.0)
    score = bp * math.exp(sum(math.log(p) for p in prec) / max_n) if min(prec) > 0 else 0.0
    return Bleu(score, prec, bp, c, r)


def _tfidf(counts: Counter[Ngram], df: Counter[Ngram], log_n: float) -> tuple[dict[Ngram, float], float]:
    vec = {g: k * (log_n - math.log(max(1.0, df[g]))) for g, k in counts.items()}
    return vec, math.sqrt(sum(v * v for v in vec.values()))


def cider_d(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], sigma: float = 6.0, max_n: int = 4
) -> tuple[float, list[float]]:
    """Corpus CIDEr-D (the mean) and the per-item scores (see the module doc)."""
    _check(hyps, refs)
    ref_toks = [[words(x) for x in rs] for rs in refs]
    df: Counter[Ngram] = Counter()
    for rs in ref_toks:
        df.update({g for t in rs for n in range(1, max_n + 1) for g in ngram_counts(t, n)})
    log_n = math.log(float(len(refs))) if refs else 0.0
    scores = []
    for hyp, rs in zip(hyps, ref_toks, strict=True):
        h = words(hyp)
        hv = [_tfidf(ngram_counts(h, n), df, log_n) for n in range(1, max_n + 1)]
        total = 0.0
        for t in rs:
            penalty = math.exp(-((len(h) - len(t)) ** 2) / (2 * sigma**2))
            for n in range(1, max_n + 1):
                (vh, nh), (vr, nr) = hv[n - 1], _tfidf(ngram_counts(t, n), df, log_n)
                dot = sum(min(w, vr.get(g, 0.0)) * vr.get(g, 0.0) for g, w in vh.items())
                total += (dot / (nh * nr) if nh and nr else 0.0) * penalty
        scores.append(10.0 * total / max_n / len(rs))
    return (float(np.mean(scores)) if scores else 0.0), scores


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, O(len(a) * len(b)))."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], beta: float = 1.2
) -> tuple[float, list[float]]:
    """Mean ROUGE-L F (beta 1.2) and the per-item scores (see the module doc)."""
    _check(hyps, refs)
    scores = []
    for hyp, rs in zip(hyps, refs, strict=True):
        h = words(hyp)
        p = r = 0.0
        for t in (words(x) for x in rs):
            m = lcs_length(h, t)
            p, r = max(p, m / len(h) if h else 0.0), max(r, m / len(t) if t else 0.0)
        scores.append((1 + beta**2) * p * r / (r + beta**2 * p) if p > 0 and r > 0 else 0.0)
    return (float(np.mean(scores)) if scores else 0.0), scores


def caption_scores(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> dict[str, float]:
    """``bleu4``, ``cider_d``, ``rouge_l``, ``exact`` (share of hypotheses with a reference's words)."""
    exact = [any(words(h) == words(x) for x in rs) for h, rs in zip(hyps, refs, strict=True)]
    return {
        "bleu4": corpus_bleu(hyps, refs).score,
        "cider_d": cider_d(hyps, refs)[0],
        "rouge_l": rouge_l(hyps, refs)[0],
        "exact": float(np.mean(exact)) if exact else 0.0,
    }


def nearest_neighbour_rows(train: np.ndarray, query: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """``[Q]`` int64: for each query row, the train row of highest cosine similarity (first on ties).

    Args:
        train: ``[N, D]`` vectors; query: ``[Q, D]``. Zero rows have cosine 0 with everything.
    """
    tn = train / np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
    qn = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    out = [np.argmax(qn[s : s + batch_size] @ tn.T, axis=1) for s in range(0, len(qn), batch_size)]
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def nearest_neighbour_titles(
    train_vecs: np.ndarray, train_titles: Sequence[str], query_vecs: np.ndarray
) -> list[str]:
    """The baseline caption: the title of the most similar (cosine) train item, per query."""
    return [train_titles[i] for i in nearest_neighbour_rows(train_vecs, query_vecs)]
