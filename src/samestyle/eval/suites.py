"""The Myntra evaluation suite: one fixed set of held-out protocols for any :class:`Method`.

Held out = the ``test`` split (every KAGL product is in it; see :mod:`samestyle.datasets.myntra`).
Galleries are the whole catalogue (as in the KAGL harness); queries come from held-out products only.
On a sub-catalogue, ``MyntraContext.kagl_restricted`` scores "KAGL restricted to the gallery"
(:func:`samestyle.eval.kagl.restrict_qrels`; rows marked :data:`RESTRICTED`), not comparable with the
full-gallery KAGL rows.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from samestyle.catalog.store import Catalog
from samestyle.datasets.kagl import KaglQrels
from samestyle.eval.kagl import restrict_qrels
from samestyle.eval.methods import Method
from samestyle.eval.probe import fit_predict_linear
from samestyle.eval.protocols import (
    category_scores,
    kagl_attribute_to_product,
    kagl_text_to_image,
    same_label_precision,
    sample100,
    weighted_doc_vectors,
)
from samestyle.models.recognizer import CategoryRecognizer, RecognizerConfig
from samestyle.pipeline.embeddings import EmbeddingSet

log = logging.getLogger(__name__)
PROTOCOLS = ("same-label", "kagl", "sample100", "category")
RESTRICTED = " [restricted to the catalogue]"
"""Suffix of the KAGL row names when ``MyntraContext.kagl_restricted`` is set."""
TextFeatures = Callable[[Sequence[str]], np.ndarray]


@dataclass
class MyntraContext:
    """What every method is scored against: catalogue labels, split rows, KAGL qrels, query features."""

    catalog: Catalog
    emb: EmbeddingSet
    split: dict[str, list[str]]
    kagl: KaglQrels | None
    text_features: TextFeatures  # frozen text encoder, for query strings
    kagl_restricted: bool = False  # KAGL: only the queries and judged products in this gallery
    _cache: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pos = {pid: i for i, pid in enumerate(self.emb.ids)}
        self.rows = {
            k: np.array([pos[i] for i in v if i in pos], dtype=np.int64) for k, v in self.split.items()
        }
        prods = [self.catalog.get(i) for i in self.emb.ids]
        self.labels = {
            f"category{d + 1}": np.array([p.category[d] if len(p.category) > d else "" for p in prods])
            for d in range(3)
        }
        self.titles = np.array([p.title for p in prods])
        self.has_image = self.emb.present["image"]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        key = "\x1f".join(texts)
        if key not in self._cache:
            self._cache[key] = self.text_features(list(texts))
        return self._cache[key]


def _same_label(
    method: Method, ctx: MyntraContext, items: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    out = {}
    lab = ctx.labels["category3"]
    for modality in ("image", "text"):
        keep = ctx.has_image if modality == "image" else np.ones(len(lab), bool)
        idx = np.flatnonzero(keep)
        pool = np.flatnonzero(np.isin(idx, ctx.rows["test"]))
        out[f"same-articleType {modality}->{modality}"] = same_label_precision(
            items[modality][idx], lab[idx], n_queries=1000, k=10, seed=0, query_pool=pool
        )
    return out


def _kagl(method: Method, ctx: MyntraContext, items: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    if ctx.kagl is None:
        return {}
    gallery = np.flatnonzero(ctx.has_image)
    ids = [ctx.emb.ids[i] for i in gallery]
    t2i, tasks, tag = ctx.kagl.text_to_image, ctx.kagl.attribute_tasks, ""
    if ctx.kagl_restricted:
        t2i, tag = restrict_qrels(t2i, ids), RESTRICTED
        tasks = {task: restrict_qrels(qrels, ids) for task, qrels in tasks.items()}
        log.info("KAGL restricted to the catalogue: %d text->image queries", len(t2i))
    queries = list(t2i)
    if not queries:
        return {}
    qv = method.queries(ctx.encode(queries))
    if qv is None:
        return {}
    out = {
        f"KAGL text->image{tag}": kagl_text_to_image(
            qv, items["image"][gallery], ids, t2i, query_keys=queries
        )
    }
    for task, qrels in tasks.items():
        values = list(qrels)
        if not values:
            continue
        av = method.queries(ctx.encode(values))
        assert av is not None
        w = ctx.kagl.doc_weights(task)
        docs = weighted_doc_vectors(items["image"][gallery], items["text"][gallery], (w["image"], w["text"]))
        out[f"KAGL {task} (0.9 image + 0.1 text){tag}"] = kagl_attribute_to_product(
            av, docs, ids, qrels, values
        )
        if "fused" in items:
            out[f"KAGL {task} (fused){tag}"] = kagl_attribute_to_product(
                av, items["fused"][gallery], ids, qrels, values
            )
    return out


def _sample100(
    method: Method, ctx: MyntraContext, items: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    if method.queries(ctx.encode(["probe"])) is None:
        return {}
    test = ctx.rows["test"][ctx.has_image[ctx.rows["test"]]]
    res = sample100(
        items["image"][test],
        items["text"][test],
        ctx.labels["category2"][test],
        n_queries=1000,
        n_negatives=100,
        draws=5,
        seed=0,
    )
    return {"sample-100 (test, same subCategory negatives)": res}


def _category(
    method: Method, ctx: MyntraContext, items: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    feats = items["fused"] if "fused" in items else np.concatenate([items["image"], items["text"]], axis=1)
    train, test = ctx.rows["train"], ctx.rows["test"]
    levels = {"category2": "subCategory", "category3": "articleType"}
    recognizers = _recognizers(ctx, feats, list(levels))
    for level, name in levels.items():
        lab = ctx.labels[level]
        pred = fit_predict_linear(feats[train], lab[train], feats[test])
        out[f"{name} linear probe"] = category_scores(lab[test], pred)
        for row, (rec, dense) in recognizers.items():
            out[f"{name} recognizer, {row}"] = category_scores(
                lab[test], rec.predict(ctx.titles[test].tolist(), dense, level)
            )
        heads = getattr(method, "category_heads", None)  # a run trained with [category]
        if heads is not None and level in heads.classes and "fused" in items:
            out[f"{name} head (trained with the model)"] = category_scores(
                lab[test], heads.predict(items["fused"][test], level)
            )
            photo = test[ctx.has_image[test]]
            out[f"{name} head, image only"] = category_scores(
                lab[photo], heads.predict(items["image"][photo], level)
            )
        names = sorted(set(lab[train]))
        qv = method.queries(ctx.encode(names))
        if qv is not None and "fused" in items:
            zs = np.asarray(names)[(items["fused"][test] @ qv.T).argmax(1)]
            out[f"{name} zero-shot (name as text query)"] = category_scores(lab[test], zs)
    return out


def _recognizers(
    ctx: MyntraContext, feats: np.ndarray, levels: Sequence[str]
) -> dict[str, tuple[CategoryRecognizer, np.ndarray | None]]:
    """The hybrid category recogniser fitted on the train split: on title words alone (the same for every
    method: the reference), and on title words + this method's vectors (the fused one, or image+text)."""
    train, test = ctx.rows["train"], ctx.rows["test"]
    labels = {level: ctx.labels[level][train] for level in levels}
    titles = ctx.titles[train].tolist()
    words = CategoryRecognizer.fit(titles, None, labels, RecognizerConfig(dense_norm=0.0, inputs=""))
    both = CategoryRecognizer.fit(titles, feats[train], labels)
    return {"title words alone": (words, None), "title words + embedding": (both, feats[test])}


SUITE = {"same-label": _same_label, "kagl": _kagl, "sample100": _sample100, "category": _category}


def evaluate(
    method: Method, ctx: MyntraContext, protocols: Sequence[str] = PROTOCOLS
) -> dict[str, dict[str, float]]:
    """Run the chosen protocols; returns ``{row name: metrics}``."""
    inputs = getattr(method, "query_inputs", None)
    if inputs is not None:  # the method encodes query strings itself (a run with a text tower)
        ctx = dataclasses.replace(ctx, text_features=inputs, _cache={})
    items = method.items()
    results: dict[str, dict[str, float]] = {}
    for name in protocols:
        log.info("%s: %s", method.name, name)
        results.update(SUITE[name](method, ctx, items))
    return results
