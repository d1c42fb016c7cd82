"""Query views: short query-like texts made from a product's own title, a text augmentation for training.

The unified model's text head sees only whole titles ("Puma Men Danny Blue Slipper") during training, so a
short query ("Slipper", "Tshirts") is out of its distribution. A *query view* is 1 to ``max_words`` words
of the product's own title, in title order: a contiguous run or a non-contiguous subset, and with
probability 1/2 drawn without the first word (Myntra titles start with the brand). Views come from the
title only, never from the category labels, so the zero-shot category rows of the evaluation stay
zero-shot.

``train.query_views`` views per product are drawn deterministically from ``(train.seed, product id)``,
encoded once with the frozen text encoder that made the embeddings' "text" space (its registry key is
``emb.meta["encoder_keys"]["text"]``) and cached in a :class:`~samestyle.features.cache.FeatureCache`
under ``cache_dir()/features/query_views/`` keyed by ``(product id, text_sha256(view))``: a second run
encodes nothing. During training the anchor side's text is replaced, with probability
``train.query_view_prob`` per row, by one of its views (``Trainer._anchor_text``); validation and
evaluation never see views. Not available behind a ``[text_tower]``: the tower's input is cached MiniLM
hidden states, which views would need too.

Example:
    >>> title_views("Puma Men Danny Blue Slipper", 3, 3, np.random.default_rng(0))  # doctest: +SKIP
    ['Danny Blue', 'Slipper', 'Men Danny Slipper']
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from samestyle.errors import ArtifactError, ConfigError
from samestyle.features.cache import FeatureCache
from samestyle.features.extract import text_sha256
from samestyle.models.base import TextEncoder

if TYPE_CHECKING:
    from samestyle.catalog.store import Catalog
    from samestyle.pipeline.embeddings import EmbeddingSet
    from samestyle.train.loop import TrainConfig

log = logging.getLogger(__name__)

DROP_FIRST = 0.5  # probability that a view is drawn from the title without its first (brand-like) word
CONTIGUOUS = 0.5  # probability that a view is a contiguous run of words (else an ordered subset)
_ENCODE_CHUNK = 16384  # views encoded and committed to the cache at a time (a killed run keeps its work)


def check_query_views(train: TrainConfig, text_tower_kind: str = "pooled") -> None:
    """Raise ConfigError for bad ``[train]`` query-view options or views behind a text tower."""
    if not 0.0 <= train.query_view_prob <= 1.0:
        raise ConfigError(f"train.query_view_prob is {train.query_view_prob}; use a probability in [0, 1]")
    if train.query_views < 1 or train.query_view_words < 1:
        raise ConfigError(
            f"train.query_views ({train.query_views}) and train.query_view_words "
            f"({train.query_view_words}) must be at least 1"
        )
    if train.query_view_prob > 0 and text_tower_kind != "pooled":
        raise ConfigError(
            f'train.query_view_prob > 0 needs text_tower.kind = "pooled" (it is {text_tower_kind!r}): query '
            "views are encoded to frozen text vectors, but a text tower trains on cached MiniLM hidden "
            "states, which views do not have; set train.query_view_prob = 0 or drop [text_tower]"
        )


def _words(title: str) -> list[str]:
    """The title's whitespace words that hold a letter or digit ("-" or "&" alone is no query)."""
    words = title.split()
    kept = [w for w in words if any(c.isalnum() for c in w)]
    return kept or words or [title]


def title_views(title: str, k: int, max_words: int, rng: np.random.Generator) -> list[str]:
    """``k`` query views of ``title``: 1..``max_words`` of its words each, in title order, never empty.

    Distinct views are preferred; a title too short to have ``k`` distinct ones repeats them (a one-word
    title gives that word ``k`` times).
    """
    words = _words(title)
    out: list[str] = []
    for _ in range(8 * k):
        pool = words[1:] if len(words) > 1 and rng.random() < DROP_FIRST else words
        n = int(rng.integers(1, min(max_words, len(pool)) + 1))
        if rng.random() < CONTIGUOUS:
            start = int(rng.integers(0, len(pool) - n + 1))
            chosen = pool[start : start + n]
        else:
            chosen = [pool[i] for i in np.sort(rng.choice(len(pool), n, replace=False))]
        view = " ".join(chosen)
        if view not in out:
            out.append(view)
        if len(out) == k:
            return out
    return [out[i % len(out)] for i in range(k)]


def product_rng(seed: int, product_id: str) -> np.random.Generator:
    """A generator of its own for each (seed, product): a product's views do not depend on the split."""
    digest = hashlib.sha256(product_id.encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def query_view_texts(
    ids: Sequence[str], titles: Sequence[str], k: int, max_words: int, seed: int
) -> list[list[str]]:
    """The ``k`` views of each product (row order of ``ids``)."""
    pairs = zip(ids, titles, strict=True)
    return [title_views(title, k, max_words, product_rng(seed, pid)) for pid, title in pairs]


def encode_query_views(
    ids: Sequence[str],
    views: Sequence[Sequence[str]],
    encoder: TextEncoder,
    cache: FeatureCache | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """``[N, K, D]`` float32 vectors of the views; only views missing from ``cache`` are encoded (each
    distinct text once), and they are added to it."""
    k = len(views[0]) if views else 0
    if any(len(v) != k for v in views):
        raise ValueError("every product needs the same number of views")
    texts = [t for row in views for t in row]
    keys = [(pid, text_sha256(t)) for pid, row in zip(ids, views, strict=True) for t in row]
    if cache is not None:
        flat, found = cache.lookup(keys)
    else:
        flat, found = np.zeros((len(keys), encoder.dim), np.float32), np.zeros(len(keys), bool)
    missing = np.flatnonzero(~found)
    if missing.size:
        log.info("query views: encoding %d of %d views with %s", missing.size, len(keys), encoder.name)
    for start in range(0, missing.size, _ENCODE_CHUNK):
        rows = missing[start : start + _ENCODE_CHUNK]
        distinct = sorted({texts[i] for i in rows})
        vectors = encoder.encode_texts(distinct, batch_size=batch_size)
        where = {t: j for j, t in enumerate(distinct)}
        flat[rows] = vectors[[where[texts[i]] for i in rows]]
        if cache is not None:
            first = {keys[i]: i for i in rows[::-1]}  # a key repeats when a short title repeats a view
            cache.put(list(first), flat[list(first.values())])
    return flat.reshape(len(ids), k, -1)


def run_text_encoder(emb: EmbeddingSet, threads: int) -> TextEncoder:
    """The frozen text encoder that made ``emb``'s "text" space, rebuilt from its recorded registry key."""
    from samestyle.pipeline.encoders import build_encoders

    key = emb.meta.get("encoder_keys", {}).get("text")
    if not key:
        raise ArtifactError(
            "the embeddings record no text encoder key (meta.encoder_keys.text), so query views cannot be "
            "encoded with the encoder of their 'text' space; re-run 'samestyle embed', or set "
            "train.query_view_prob = 0"
        )
    encoder = build_encoders(None, str(key), threads=threads)[1]
    assert encoder is not None
    recorded = emb.encoders.get("text", "")
    if encoder.name != recorded or encoder.dim != emb.vectors["text"].shape[1]:
        raise ArtifactError(
            f"text encoder {key!r} is now {encoder.name!r} ({encoder.dim}-d), but the embeddings' 'text' "
            f"space was made by {recorded!r} ({emb.vectors['text'].shape[1]}-d); re-run 'samestyle embed'"
        )
    return encoder


def query_view_features(
    train: TrainConfig,
    catalog: Catalog,
    emb: EmbeddingSet,
    ids: Sequence[str],
    encoder: TextEncoder | None = None,
    cache_root: Path | None = None,
) -> np.ndarray:
    """``[len(ids), train.query_views, D]`` view vectors of ``ids`` (a split), encoded once and cached.

    ``encoder``: defaults to :func:`run_text_encoder`; ``cache_root``: defaults to
    ``cache_dir()/features/query_views``.
    """
    from samestyle.paths import cache_dir

    encoder = encoder if encoder is not None else run_text_encoder(emb, train.threads)
    root = cache_root if cache_root is not None else cache_dir() / "features" / "query_views"
    cache = FeatureCache(root, encoder.name, encoder.dim)
    titles = [catalog.get(i).title for i in ids]
    views = query_view_texts(ids, titles, train.query_views, train.query_view_words, train.seed)
    return encode_query_views(ids, views, encoder, cache)


__all__ = [
    "check_query_views",
    "encode_query_views",
    "query_view_features",
    "query_view_texts",
    "run_text_encoder",
    "title_views",
]
