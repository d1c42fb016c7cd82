"""Evaluate one cross-encoder run on its held-out subset products (``samestyle eval --cross-run``).

On the test part of the run's prepared subset (``run.ensure_data``), with the bi-encoder vectors of an
``EmbeddingSet`` folder (``joint-image`` / ``joint-text`` / ``joint-fused``; default: the run's
``data.joint_embeddings``):

- sample-100 (i2t / t2i R@1/5/10, SumR; one draw, seed 0, same-subCategory negatives) for the bi-encoder
  alone, the bi-encoder + re-ranking of its top K by the cross-encoder (each K), and the cross-encoder
  alone on ``cross_queries`` queries (101 pairs a query; 0 skips it) beside the bi-encoder on the same;
- masked-word accuracy on held-out titles and a nearest-class-mean probe of [CLS] (cheap, per run);
- category ACC / macro-F1 (``categories``): the fine-tuned ``category`` head when the run has one, the
  linear probe on the frozen [CLS], and the same probe on the bi-encoder's ``joint-fused`` vectors.

``evaluate_cross_run`` returns a nested dict (the layout of ``benchmarks/results/pretrain.json``'s
entries, which ``benchmarks/bench_pretrain.py`` builds from these functions); ``report_rows`` flattens it
into ``eval.report.write_report`` rows.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samestyle.eval.protocols import sample100
from samestyle.pretrain.categories import cls_features, head_predictions, linear_probe
from samestyle.pretrain.rerank import CrossScorer, dot_score_fn, rerank_latency, rerank_score_fn
from samestyle.pretrain.tasks import Batch, MaskedLanguageModel
from samestyle.pretrain.train import PretrainConfig, Pretrainer

logger = logging.getLogger(__name__)
KEYS = ("i2t_r@1", "i2t_r@5", "i2t_r@10", "t2i_r@1", "t2i_r@5", "t2i_r@10", "sum_r")
LEVEL_NAMES = {"sub": "subCategory", "art": "articleType"}


@dataclass(frozen=True)
class CrossEvalOptions:
    """What to measure. ``cross_queries = 0`` skips the cross-encoder alone; ``categories = False`` the
    linear probes and the head; ``full_protocol`` adds the bi-encoder on 1,000 queries x 5 draws;
    ``draws`` is the number of sample-100 draws of every other row (the protocol's 5 with 1,000 queries)."""

    queries: int = 300
    cross_queries: int = 100
    rerank_k: tuple[int, ...] = (10,)
    latency_k: tuple[int, ...] = ()
    categories: bool = True
    full_protocol: bool = False
    draws: int = 1


@dataclass
class EvalInputs:
    """The prepared subset and its bi-encoder vectors (row i = product ``data["ids"][i]``)."""

    data: dict[str, np.ndarray]
    img: np.ndarray
    txt: np.ndarray
    fused: np.ndarray
    embeddings: str

    @property
    def test(self) -> np.ndarray:
        return np.flatnonzero(~self.data["is_train"])

    @property
    def train(self) -> np.ndarray:
        return np.flatnonzero(self.data["is_train"])


def load_inputs(cfg: PretrainConfig, embeddings: str | Path | None = None) -> EvalInputs:
    """The run's prepared arrays and the joint vectors of its products from ``embeddings``.

    Raises:
        ArtifactError: the folder lacks a joint space or a subset product.
    """
    from samestyle.pretrain.joint import subset_vectors
    from samestyle.pretrain.run import ensure_data

    data = ensure_data(cfg)
    folder = str(embeddings or cfg.data.joint_embeddings)
    spaces = ("joint-image", "joint-text", "joint-fused")
    vecs = subset_vectors(list(data["ids"]), folder, spaces)
    img, txt, fused = (vecs[s] for s in spaces)
    return EvalInputs(data, img, txt, fused, folder)


def short(res: dict[str, float]) -> dict[str, float]:
    """The sample-100 numbers reported (4 decimals)."""
    return {k: round(float(res[k]), 4) for k in (*KEYS, "n_queries", "n_filled")}


def _kw(inp: EvalInputs, n_queries: int, draws: int = 1) -> dict[str, Any]:
    return dict(n_queries=n_queries, draws=draws, seed=0, groups=inp.data["sub"][inp.test])


def bi_encoder_results(inp: EvalInputs, opts: CrossEvalOptions) -> dict[str, Any]:
    """``bi_encoder`` (``opts.queries``), ``bi_encoder_cross_queries``, ``bi_encoder_full_protocol``."""
    img, txt, test = inp.img[inp.test], inp.txt[inp.test], inp.test
    out: dict[str, Any] = {}
    if opts.full_protocol:
        out["bi_encoder_full_protocol"] = short(
            sample100(img, txt, inp.data["sub"][test], n_queries=1000, draws=5)
        )
    out["bi_encoder"] = short(sample100(img, txt, **_kw(inp, opts.queries, opts.draws)))
    if opts.cross_queries > 0:
        kw = _kw(inp, opts.cross_queries, opts.draws)
        out["bi_encoder_cross_queries"] = short(sample100(img, txt, **kw))
    return out


def make_scorer(model: Pretrainer, cfg: PretrainConfig, inp: EvalInputs) -> CrossScorer:
    """The run's ITM scorer over the test rows; residual runs get the bi-encoder vectors of those rows."""
    t = inp.test
    joint = (inp.img[t], inp.txt[t]) if cfg.residual else None
    return CrossScorer(model, inp.data["tokens"][t], inp.data["patches"][t], joint=joint)


def mlm_accuracy(model: Pretrainer, tokens: np.ndarray, patches: np.ndarray, seed: int = 0) -> float:
    """Top-1 accuracy of the MLM head on random 15% masks of held-out titles (image given); NaN without."""
    if "mlm" not in model.tasks:
        return float("nan")
    task = model.tasks["mlm"]
    assert isinstance(task, MaskedLanguageModel)
    b = Batch(torch.from_numpy(tokens), torch.from_numpy(patches.astype(np.float32)),
              torch.zeros(tokens.shape), torch.ones(len(tokens)))  # fmt: skip
    MaskedLanguageModel(1, 1, guided=False).corrupt(b, torch.Generator().manual_seed(seed))
    hits = total = 0
    with torch.inference_mode():
        for s in range(0, len(tokens), 256):
            sl = slice(s, s + 256)
            enc = model.encoder(b.tokens[sl], b.patches[sl], b.text_masked[sl])
            m = b.text_masked[sl]
            pred = task.head(enc.text[m]).argmax(-1)
            hits += int((pred == b.targets["mlm"][sl][m]).sum())
            total += int(m.sum())
    return hits / max(total, 1)


def centroid_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    """Nearest-class-mean accuracy (cosine, standardised features) on ``test``: a cheap ablation probe."""
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
    z = (x - mu) / sd
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-12
    labels = np.unique(y[train])
    cent = np.stack([z[train][y[train] == c].mean(0) for c in labels])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True) + 1e-12
    pred = labels[(z[test] @ cent.T).argmax(1)]
    return float((pred == y[test]).mean())


def category_results(model: Pretrainer, inp: EvalInputs, cls: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per level (``sub``, ``art``): ``cross_head`` (fine-tuned head, when the run has one), ``cross_cls``
    (linear probe on the frozen [CLS]) and ``joint_fused`` (the same probe on the bi-encoder's vectors)."""
    from samestyle.eval.grouping import category_scores

    train, test = inp.train, inp.test
    heads = head_predictions(model, cls[test]) if "category" in model.tasks else {}
    out: dict[str, dict[str, Any]] = {}
    for level in LEVEL_NAMES:
        y = inp.data[level]
        res: dict[str, Any] = {}
        if level in heads:
            res["cross_head"] = category_scores(y[test], heads[level], labels=sorted(set(y[test].tolist())))
        res["cross_cls"] = linear_probe(cls[train], y[train], cls[test], y[test])
        res["joint_fused"] = linear_probe(inp.fused[train], y[train], inp.fused[test], y[test])
        out[level] = res
    return out


def run_results(
    model: Pretrainer, cfg: PretrainConfig, inp: EvalInputs, opts: CrossEvalOptions
) -> dict[str, Any]:
    """One run's numbers: ``rerank_k{K}``, ``cross_alone``, ``mlm_acc_test``, ``cls_centroid_acc``, and
    with ``opts`` ``categories`` / ``latency``."""
    img, txt, test = inp.img[inp.test], inp.txt[inp.test], inp.test
    scorer = make_scorer(model, cfg, inp)
    bi = dot_score_fn(img, txt)
    res: dict[str, Any] = {}
    for k in opts.rerank_k:
        t0 = time.perf_counter()
        fn = rerank_score_fn(bi, scorer, k)
        res[f"rerank_k{k}"] = short(sample100(img, txt, score_fn=fn, **_kw(inp, opts.queries, opts.draws)))
        res[f"rerank_k{k}"]["seconds"] = round(time.perf_counter() - t0, 1)
    if opts.cross_queries > 0:
        t0 = time.perf_counter()
        kw = _kw(inp, opts.cross_queries, opts.draws)
        res["cross_alone"] = short(sample100(img, txt, score_fn=scorer, **kw))
        res["cross_alone"]["seconds"] = round(time.perf_counter() - t0, 1)
    data = inp.data
    res["mlm_acc_test"] = round(mlm_accuracy(model, data["tokens"][test], data["patches"][test]), 4)
    cls = cls_features(model, data["tokens"], data["patches"])
    res["cls_centroid_acc"] = {
        level: round(centroid_accuracy(cls, data[level], inp.train, test), 4) for level in LEVEL_NAMES
    }
    if opts.categories:
        res["categories"] = category_results(model, inp, cls)
    if opts.latency_k:
        res["latency"] = [rerank_latency(scorer, k) for k in opts.latency_k]
    return res


def run_summary(run: str | Path, cfg: PretrainConfig) -> dict[str, Any]:
    """``config`` (tasks and recipe switches) and ``train`` (its ``metrics.json``, last-epoch losses)."""
    config = {"tasks": list(cfg.tasks), "masking": cfg.masking, "weighting": cfg.weighting,
              "residual": cfg.residual, "hard_negatives": cfg.train.hard_negatives, "late": cfg.late,
              "init_from": cfg.train.init_from}  # fmt: skip
    path = Path(run) / "metrics.json"
    train: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    history = train.pop("history", None) or [{}]
    train["last_epoch_loss"] = {k: round(v, 4) for k, v in history[-1].get("loss", {}).items()}
    return {"config": config, "train": train}


def evaluate_cross_run(
    run: str | Path, embeddings: str | Path | None = None, opts: CrossEvalOptions | None = None
) -> dict[str, Any]:
    """Everything above for the run folder ``run``; the bi-encoder rows come first."""
    from samestyle.pretrain.train import load_pretrain_run

    opts = opts or CrossEvalOptions()
    model, cfg = load_pretrain_run(run)
    inp = load_inputs(cfg, embeddings)
    out: dict[str, Any] = {"embeddings": inp.embeddings, "n_test_products": len(inp.test),
                           "n_train_products": len(inp.train)}  # fmt: skip
    out |= bi_encoder_results(inp, opts)
    out |= run_results(model, cfg, inp, opts)
    out |= run_summary(run, cfg)
    logger.info("%s: %s", run, {k: v for k, v in out.items() if k != "train"})
    return out


def report_rows(result: dict[str, Any], prefix: str = "") -> dict[str, dict[str, float]]:
    """``evaluate_cross_run``'s result as ``{row name: metrics}`` for ``eval.report.write_report``.

    Row names start with the protocol (``sample100/``, ``category_scores/``) so the report labels the
    primary metric; ``prefix`` (e.g. the run name) goes after it.
    """
    rows: dict[str, dict[str, float]] = {}
    p = f"{prefix}: " if prefix else ""

    def retrieval(name: str, res: dict[str, float]) -> None:
        rows[f"sample100/{p}{name}"] = {"primary": res["sum_r"], **res}

    named = [("bi_encoder_full_protocol", "bi-encoder, 1,000 queries x 5 draws"),
             ("bi_encoder", "bi-encoder"), *[(k, f"bi-encoder + re-rank K = {k[8:]}")
             for k in result if k.startswith("rerank_k")],
             ("bi_encoder_cross_queries", "bi-encoder (the cross-alone queries)"),
             ("cross_alone", "cross-encoder alone")]  # fmt: skip
    for key, name in named:
        if key in result:
            retrieval(name, result[key])
    what = {"cross_head": "fine-tuned head on [CLS]", "cross_cls": "linear probe on frozen [CLS]",
            "joint_fused": "linear probe on joint-fused"}  # fmt: skip
    for level, methods in result.get("categories", {}).items():
        for method, scores in methods.items():
            rows[f"category_scores/{p}{LEVEL_NAMES[level]}, {what[method]}"] = dict(scores)
    rows[f"probes/{p}[CLS] nearest class mean, held-out acc"] = {
        LEVEL_NAMES[k]: v for k, v in result["cls_centroid_acc"].items()
    } | {"mlm_acc_test": result["mlm_acc_test"]}
    for lat in result.get("latency", []):
        rows[f"latency/{p}re-rank K = {int(lat['k'])}"] = dict(lat)
    train = result.get("train", {})
    rows[f"train/{p}run"] = {
        **{f"last_epoch_loss {k}": v for k, v in train.get("last_epoch_loss", {}).items()},
        **{k: float(train[k]) for k in ("steps", "train_seconds") if k in train},
    }
    return rows
