"""``pretrain.evaluate`` (what ``samestyle eval --cross-run`` and bench_pretrain.py measure) on fakes."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from pretrain_fakes import tiny_data, tiny_model_config

import samestyle.pretrain.run as run_mod
from samestyle.errors import ArtifactError
from samestyle.eval.protocols import sample100
from samestyle.pipeline.embeddings import EmbeddingSet
from samestyle.pretrain.categories import cls_features, head_predictions, linear_probe
from samestyle.pretrain.evaluate import (
    CrossEvalOptions,
    evaluate_cross_run,
    load_inputs,
    report_rows,
    short,
)
from samestyle.pretrain.train import PretrainConfig, PretrainTrainConfig, load_pretrain_run


def fake_embeddings(path: Path, data: dict[str, np.ndarray], spaces: tuple[str, ...] | None = None) -> Path:
    """joint-image / -text / -fused of the subset's products (plus two others), informative but noisy."""
    rng = np.random.default_rng(1)
    ids = [*data["ids"].tolist(), "other-1", "other-2"]
    base = rng.normal(size=(len(ids), 6))
    emb = EmbeddingSet(ids=ids)
    for space in spaces or ("joint-image", "joint-text", "joint-fused"):
        emb.add_space(space, base + 0.8 * rng.normal(size=base.shape), None, "fake")
    emb.save(path)
    return path


def make_run(tmp: Path, data: dict[str, np.ndarray], name: str, tasks: tuple[str, ...], **kw: object) -> Path:
    from samestyle.pretrain.run import pretrain_run

    train = PretrainTrainConfig(epochs=2, batch_size=8, warmup_steps=1, max_minutes=1.0)
    cfg = replace(PretrainConfig(model=tiny_model_config(data), train=train, tasks=tasks), **kw)  # type: ignore[arg-type]
    train_data = dict(data)
    if cfg.residual:  # training reads the bi-encoder cosines from the data
        rng = np.random.default_rng(2)
        v = rng.normal(size=(len(data["ids"]), 6)).astype(np.float32)
        train_data |= {"joint_img": v, "joint_txt": v}
    pretrain_run(cfg, tmp / name, data=train_data)
    return tmp / name


@pytest.fixture()
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, np.ndarray], Path]:
    torch.manual_seed(0)
    data = tiny_data()
    monkeypatch.setattr(run_mod, "ensure_data", lambda cfg: dict(data))  # no real subset in unit tests
    return data, fake_embeddings(tmp_path / "emb", data)


def test_evaluate_cross_run_agrees_with_the_pieces(tmp_path: Path, setup) -> None:
    data, emb = setup
    run = make_run(tmp_path, data, "ft", ("itm", "mlm", "category"), residual=True)
    opts = CrossEvalOptions(queries=8, cross_queries=8, rerank_k=(3, 50))
    res = evaluate_cross_run(run, emb, opts)
    inp = load_inputs(load_pretrain_run(run)[1], emb)
    test, train = inp.test, inp.train
    assert len(test) == 8 and res["n_test_products"] == 8
    groups = data["sub"][test]
    ref = sample100(inp.img[test], inp.txt[test], groups, n_queries=8, draws=1, seed=0)
    assert res["bi_encoder"] == short(ref) == res["bi_encoder_cross_queries"]
    # K >= the candidates (1 + 7): re-ranking re-scores all of them, which is the cross-encoder alone
    assert res["rerank_k50"]["sum_r"] == res["cross_alone"]["sum_r"]
    assert 0.0 <= res["mlm_acc_test"] <= 1.0
    model, _ = load_pretrain_run(run)
    cls = cls_features(model, data["tokens"], data["patches"])
    pred = head_predictions(model, cls[test])
    for level in ("sub", "art"):
        cats = res["categories"][level]
        assert cats["cross_head"]["acc"] == pytest.approx(float((pred[level] == data[level][test]).mean()))
        y = data[level]
        assert cats["joint_fused"] == linear_probe(inp.fused[train], y[train], inp.fused[test], y[test])
    assert res["config"]["tasks"] == ["itm", "mlm", "category"] and res["config"]["residual"] is True
    assert res["train"]["steps"] == 4 and "category" in res["train"]["last_epoch_loss"]

    rows = report_rows(res)
    assert rows["sample100/bi-encoder + re-rank K = 3"]["primary"] == res["rerank_k3"]["sum_r"]
    head_row = rows["category_scores/subCategory, fine-tuned head on [CLS]"]
    assert head_row["acc"] == head_row["primary"] == res["categories"]["sub"]["cross_head"]["acc"]
    assert "category_scores/articleType, linear probe on joint-fused" in rows
    assert all(isinstance(v, float | int) for m in rows.values() for v in m.values())

    opts2 = CrossEvalOptions(queries=3, cross_queries=0, categories=False, draws=3)
    res3 = evaluate_cross_run(run, emb, opts2)
    three = res3["bi_encoder"]
    one, avg = (short(sample100(inp.img[test], inp.txt[test], groups, n_queries=3, draws=d)) for d in (1, 3))
    assert three == avg != one  # 3 draws of 3 queries out of 8: the average differs from the first draw
    assert "cross_alone" not in res3


def test_a_run_without_the_head_reports_the_probes_only(tmp_path: Path, setup) -> None:
    data, emb = setup
    run = make_run(tmp_path, data, "pre", ("itm", "jigsaw"))
    res = evaluate_cross_run(run, emb, CrossEvalOptions(queries=8, cross_queries=0, rerank_k=(2,)))
    assert set(res["categories"]["sub"]) == {"cross_cls", "joint_fused"}
    assert "cross_alone" not in res and "bi_encoder_cross_queries" not in res
    assert np.isnan(res["mlm_acc_test"])  # no mlm head
    rows = report_rows(res, prefix="pre")
    assert "sample100/pre: bi-encoder + re-rank K = 2" in rows
    assert not any("fine-tuned" in r for r in rows)


def test_load_inputs_names_a_missing_space_or_product(tmp_path: Path, setup) -> None:
    data, _ = setup
    cfg = PretrainConfig()
    only_two = fake_embeddings(tmp_path / "two", data, ("joint-image", "joint-text"))
    with pytest.raises(ArtifactError, match="joint-fused"):
        load_inputs(cfg, only_two)
    fewer = dict(data) | {"ids": np.array([*data["ids"][:-1].tolist(), "not-embedded"])}
    emb = fake_embeddings(tmp_path / "emb2", data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_mod, "ensure_data", lambda cfg: fewer)
        with pytest.raises(ArtifactError, match="not-embedded"):
            load_inputs(cfg, emb)
