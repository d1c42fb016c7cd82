from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pretrain_fakes import tiny_data, tiny_model_config

from samestyle.errors import ArtifactError
from samestyle.pretrain.joint import HardNegativeSampler, attach_joint, top_neighbours
from samestyle.pretrain.model import Encoded
from samestyle.pretrain.rerank import CrossScorer
from samestyle.pretrain.run import init_weights, pretrain_run
from samestyle.pretrain.tasks import ImageTextMatching
from samestyle.pretrain.train import (
    PretrainConfig,
    Pretrainer,
    PretrainTrainConfig,
    load_pretrain_run,
    make_batch,
)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _with_joint(data: dict[str, np.ndarray], seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(data["ids"])
    img = _unit(rng.normal(size=(n, 5)))
    return data | {"joint_img": img, "joint_txt": _unit(img + 0.3 * rng.normal(size=(n, 5)))}


def test_top_neighbours_matches_a_plain_loop_and_never_returns_itself() -> None:
    rng = np.random.default_rng(0)
    q, g = _unit(rng.normal(size=(30, 4))), _unit(rng.normal(size=(30, 4)))
    got = top_neighbours(q, g, pool=5, chunk=7)
    for i in range(30):
        sims = [(float(q[i] @ g[j]), j) for j in range(30) if j != i]
        want = [j for _, j in sorted(sims, reverse=True)[:5]]
        assert got[i].tolist() == want


def test_hard_sampler_draws_text_swaps_from_i2t_and_image_swaps_from_t2i() -> None:
    i2t = np.array([[10, 11], [12, 13], [14, 15], [16, 17]])
    t2i = i2t + 100

    def fallback(rows: np.ndarray) -> np.ndarray:
        return np.full(len(rows), -1)

    rows = np.array([0, 1, 2, 3])
    hard = HardNegativeSampler(i2t, t2i, fallback, 1.0, np.random.default_rng(0))(rows)
    for k, r in enumerate(rows):
        table = i2t if k < 2 else t2i  # make_batch: first half swaps the text, second the image
        assert hard[k] in table[r]
    easy = HardNegativeSampler(i2t, t2i, fallback, 0.0, np.random.default_rng(0))(rows)
    assert (easy == -1).all()


def test_make_batch_carries_the_bi_encoder_cosine_of_each_row_pair() -> None:
    data = _with_joint(tiny_data())
    rows, neg = np.array([0, 1, 2, 3]), np.array([4, 5, 6, 7])
    b = make_batch(data, rows, neg)
    img_src, txt_src = [0, 1, 2, 3, 0, 1, 6, 7], [0, 1, 2, 3, 4, 5, 2, 3]
    want = [float(data["joint_img"][i] @ data["joint_txt"][t]) for i, t in zip(img_src, txt_src, strict=True)]
    assert b.bi is not None
    np.testing.assert_allclose(b.bi.numpy(), want, rtol=1e-5)


def test_residual_matching_starts_as_the_scaled_bi_encoder() -> None:
    task = ImageTextMatching(8, residual=True, init_scale=10.0)
    enc = Encoded(torch.randn(3, 8), torch.randn(3, 2, 8), torch.randn(3, 55, 8))
    bi = torch.tensor([0.1, -0.2, 0.5])
    torch.testing.assert_close(task.score(enc, bi), 10.0 * bi)
    plain = ImageTextMatching(8)
    assert plain.score(enc).shape == (3,) and not hasattr(plain, "log_scale")


def _cfg(data: dict[str, np.ndarray], **train: object) -> PretrainConfig:
    t = PretrainTrainConfig(
        epochs=2, batch_size=8, warmup_steps=1, max_minutes=1.0, hard_negatives=0.5, hard_pool=3
    )
    return PretrainConfig(model=tiny_model_config(data), train=replace(t, **train), residual=True)  # type: ignore[arg-type]


def test_residual_run_with_hard_negatives_trains_saves_and_scores(tmp_path: Path) -> None:
    data = _with_joint(tiny_data())
    metrics = pretrain_run(_cfg(data), tmp_path / "run", data=data)
    assert metrics["steps"] == 4
    model, cfg = load_pretrain_run(tmp_path / "run")
    assert cfg.residual and cfg.train.hard_negatives == 0.5
    with pytest.raises(ValueError, match="joint"):
        CrossScorer(model, data["tokens"], data["patches"])
    scorer = CrossScorer(model, data["tokens"], data["patches"], joint=(data["joint_img"], data["joint_txt"]))
    t, i = np.array([0, 1, 2]), np.array([0, 5, 2])
    got = scorer.pairs(t, i)
    bi = torch.from_numpy((data["joint_img"][i] * data["joint_txt"][t]).sum(1))
    with torch.inference_mode():
        want = model.itm_score(
            torch.from_numpy(data["tokens"][t]), torch.from_numpy(data["patches"][i].astype(np.float32)), bi
        )
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5)


def test_init_from_copies_same_shaped_weights_and_leaves_new_heads_fresh(tmp_path: Path) -> None:
    data = _with_joint(tiny_data())
    plain = replace(_cfg(data, hard_negatives=0.0), residual=False)
    pretrain_run(plain, tmp_path / "a", data=data)
    old, _ = load_pretrain_run(tmp_path / "a")
    new = Pretrainer(_cfg(data), torch.from_numpy(data["token_table"]))
    fresh = init_weights(new, tmp_path / "a")
    assert fresh == ["tasks.itm.bias", "tasks.itm.log_scale"]
    torch.testing.assert_close(new.encoder.text_proj.weight, old.encoder.text_proj.weight)
    with pytest.raises(ArtifactError, match="init_from"):
        init_weights(new, tmp_path / "nope")


def test_attach_joint_reads_vectors_by_id_and_names_a_missing_product(tmp_path: Path) -> None:
    from samestyle.pipeline.embeddings import EmbeddingSet

    data = tiny_data(n=6)
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in (5, 4, 3, 2, 1, 0)]  # another order than data["ids"]
    emb = EmbeddingSet(ids=ids)
    img, txt = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    emb.add_space("joint-image", img, None, "test")
    emb.add_space("joint-text", txt, None, "test")
    emb.save(tmp_path / "emb")
    out = attach_joint(data, tmp_path / "emb")
    np.testing.assert_allclose(out["joint_img"][0], _unit(img)[5], rtol=1e-5)
    np.testing.assert_allclose(out["joint_txt"][5], _unit(txt)[0], rtol=1e-5)
    data["ids"] = np.array([*data["ids"][:5], "ghost"])
    with pytest.raises(ArtifactError, match="ghost"):
        attach_joint(data, tmp_path / "emb")


def test_late_interaction_score_matches_a_plain_loop_and_ignores_padding() -> None:
    torch.manual_seed(0)
    task = ImageTextMatching(8, late=True, late_dim=4)
    enc = Encoded(torch.randn(2, 55, 8)[:, 0], torch.randn(2, 3, 8), torch.randn(2, 55, 8))
    pad = torch.tensor([[False, False, True], [False, True, True]])
    got = task.late_score(enc, pad)
    with torch.no_grad():
        for n in range(2):
            sims = []
            for t in range(3):
                if pad[n, t]:
                    continue
                tv = task.t_proj(enc.text[n, t])
                cos = [float(F.cosine_similarity(tv, task.p_proj(enc.patch[n, p]), dim=0)) for p in range(55)]
                sims.append(max(cos))
            assert float(got[n]) == pytest.approx(sum(sims) / len(sims), abs=1e-5)
    head = float(task.head(enc.cls[:1]).squeeze())
    assert float(task.score(enc, pad=pad)[0]) == pytest.approx(head + float(got[0]), abs=1e-5)
    with pytest.raises(ValueError, match="padding"):
        task.score(enc)


def test_a_late_interaction_run_saves_loads_and_scores(tmp_path: Path) -> None:
    data = _with_joint(tiny_data())
    pretrain_run(replace(_cfg(data), late=True), tmp_path / "run", data=data)
    model, cfg = load_pretrain_run(tmp_path / "run")
    assert cfg.late and "tasks.itm.t_proj.weight" in model.state_dict()
    scorer = CrossScorer(model, data["tokens"], data["patches"], joint=(data["joint_img"], data["joint_txt"]))
    assert np.isfinite(scorer.pairs(np.array([0, 1]), np.array([1, 0]))).all()
