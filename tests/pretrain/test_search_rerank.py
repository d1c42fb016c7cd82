from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pretrain_fakes import tiny_data, tiny_model_config

from samestyle.errors import ArtifactError, ConfigError
from samestyle.pretrain.featurize import Tokenizer, resolve_image
from samestyle.pretrain.run import pretrain_run
from samestyle.pretrain.search_rerank import CrossReranker
from samestyle.pretrain.train import PretrainConfig, PretrainDataConfig, PretrainTrainConfig
from samestyle.types import Hit, Product

WORDS = {f"w{j}": 2 * j for j in range(1, 12)}  # "MiniLM id" = 2 x local id


def _data() -> dict[str, np.ndarray]:
    data = tiny_data()
    return data | {"vocab": 2 * np.arange(len(data["token_table"]))}


def _table(data: dict[str, np.ndarray]) -> np.ndarray:
    full = np.zeros((2 * len(data["token_table"]), 384), np.float32)
    full[data["vocab"]] = data["token_table"]
    return full


def _run(tmp_path: Path, data: dict[str, np.ndarray], residual: bool = False) -> Path:
    train = PretrainTrainConfig(epochs=1, batch_size=8, warmup_steps=1, max_minutes=1.0)
    work = PretrainDataConfig(work=str(tmp_path / "work"))  # no prepared data there
    cfg = PretrainConfig(model=tiny_model_config(data), train=train, residual=residual, data=work)
    if residual:
        rng = np.random.default_rng(0)
        data = data | {"joint_img": rng.normal(size=(24, 4)), "joint_txt": rng.normal(size=(24, 4))}
    pretrain_run(cfg, tmp_path / "run", data=data)
    return tmp_path / "run"


class FakePatches:
    def __init__(self, d: int) -> None:
        self.d = d
        self.calls: list[Any] = []

    def __call__(self, images: Sequence[Any]) -> np.ndarray:
        self.calls.extend(images)
        if any("broken" in str(i) for i in images):
            raise OSError("cannot identify image file")
        return np.stack([np.full((55, self.d), len(str(i)) % 5, np.float32) for i in images])


def _reranker(tmp_path: Path, data: dict[str, np.ndarray], run: Path) -> tuple[CrossReranker, FakePatches]:
    fake = FakePatches(data["patches"].shape[-1])
    tok = Tokenizer(6, encode=lambda t: [WORDS[w] for w in t.split() if w in WORDS])
    rr = CrossReranker(
        run, tmp_path / "img", data=data, featurize=fake, tokenizer=tok, token_table=_table(data)
    )
    return rr, fake


def test_text_query_reorders_the_top_k_by_the_cross_encoder_and_keeps_the_rest(tmp_path: Path) -> None:
    data = _data()
    rr, fake = _reranker(tmp_path, data, _run(tmp_path, data))
    hits = [Hit(f"p{i}", 1.0 - i / 10) for i in range(4)]
    hits += [
        Hit("new", 0.5, product=Product("new", "t", image="a/new.jpg")),
        Hit("noimg", 0.4),
        Hit("tail", 0.1),
    ]
    out = rr.rerank(hits, 6, text="w1 w3 w5")
    assert [h.id for h in out][-1] == "tail"  # beyond K: untouched
    assert out[5].id == "noimg" and out[5].scores["cross"] == -np.inf  # no image: after the scored ones
    assert fake.calls == [tmp_path / "img" / "a" / "new.jpg"]  # only the product outside the subset
    cross = [h.scores["cross"] for h in out[:5]]
    assert cross == sorted(cross, reverse=True)
    tokens = torch.zeros(1, 6, dtype=torch.long)
    tokens[0, :3] = torch.tensor([2, 6, 10])  # MiniLM ids of w1 w3 w5, read through the full table
    with torch.inference_mode():
        want = rr.model.itm_score(tokens, torch.from_numpy(data["patches"][2:3].astype(np.float32)))
    got = next(h for h in out if h.id == "p2").scores["cross"]
    assert got == pytest.approx(float(want[0]), rel=1e-5)


def test_image_query_scores_titles_and_a_broken_product_image_loses_only_its_hit(tmp_path: Path) -> None:
    data = _data()
    rr, _ = _reranker(tmp_path, data, _run(tmp_path, data))
    hits = [Hit("a", 0.9, product=Product("a", "w2 w4")), Hit("b", 0.8, product=Product("b", "w7"))]
    out = rr.rerank(hits, 2, image=tmp_path / "q.jpg")
    assert {h.id for h in out} == {"a", "b"} and all(np.isfinite(h.scores["cross"]) for h in out)
    broken = [Hit("x", 0.9, product=Product("x", "t", image="broken.jpg")), Hit("p1", 0.8)]
    out = rr.rerank(broken, 2, text="w1")
    assert [h.id for h in out] == ["p1", "x"]
    with pytest.raises(ConfigError, match="exactly one"):
        rr.rerank(hits, 2)
    with pytest.raises(ConfigError, match="at least 1"):
        rr.rerank(hits, 0, text="w1")


def test_residual_run_needs_the_bi_encoder_similarity_on_each_hit(tmp_path: Path) -> None:
    data = _data()
    rr, _ = _reranker(tmp_path, data, _run(tmp_path, data, residual=True))
    with pytest.raises(ConfigError, match="'p1'"):
        rr.rerank([Hit("p0", 0.9, scores={"image": 0.9}), Hit("p1", 0.8)], 2, text="w1")
    hits = [Hit("p0", 0.9, scores={"image": 0.2}), Hit("p1", 0.8, scores={"image": 0.9})]
    out = rr.rerank(hits, 2, text="w1")  # at init the correction is small: the larger cosine wins
    assert [h.id for h in out] == ["p1", "p0"]


def test_a_token_table_that_is_not_the_runs_is_refused(tmp_path: Path) -> None:
    data = _data()
    run = _run(tmp_path, data)
    with pytest.raises(ArtifactError, match="token table"):
        CrossReranker(run, data=data, featurize=FakePatches(8), token_table=_table(data) + 1.0)
    with pytest.raises(ArtifactError, match="prepared data"):
        CrossReranker(run, featurize=FakePatches(8), token_table=_table(data))


def test_resolve_image_keeps_absolute_paths() -> None:
    assert resolve_image("/x/y.jpg", Path("/root")) == Path("/x/y.jpg")
    assert resolve_image("y.jpg", Path("/root")) == Path("/root/y.jpg")
    assert resolve_image(None, Path("/root")) is None


def test_cli_refuses_rerank_without_a_run_or_for_a_product_query(capsys: pytest.CaptureFixture[str]) -> None:
    from samestyle.cli import main

    assert main(["search", "--index", "nowhere", "--text", "x", "--rerank", "5"]) != 0
    assert "--cross-run" in capsys.readouterr().err
    assert (
        main(["search", "--index", "nowhere", "--product-id", "p", "--rerank", "5", "--cross-run", "r"]) != 0
    )
    assert "--rerank" in capsys.readouterr().err


def test_patch_featurizer_reads_photos_like_prepare_and_names_a_broken_one(tmp_path: Path) -> None:
    from PIL import Image

    from samestyle.errors import SamestyleError
    from samestyle.models.fake import FakeImageEncoder
    from samestyle.pretrain.featurize import PatchFeaturizer
    from samestyle.pretrain.patches import kaleido_patches

    c = 6
    rng = np.random.default_rng(0)
    data = {"pca_mean": rng.normal(size=c), "pca_components": rng.normal(size=(c, 4)), "patch_scale": 2.0}
    enc = FakeImageEncoder(dim=c * 49)
    good, bad = tmp_path / "a.png", tmp_path / "bad.jpg"
    Image.new("RGB", (40, 60), "blue").save(good)
    bad.write_text("not an image")
    got = PatchFeaturizer(data, enc)([good])
    maps = enc.encode_images([good]).reshape(1, c, 7, 7)
    want = (kaleido_patches(maps) - data["pca_mean"]) @ data["pca_components"] / 2.0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    with pytest.raises(SamestyleError, match=r"bad\.jpg"):
        PatchFeaturizer(data, enc)([good, bad])
