"""Query views (train/query_views.py): generation, encoding + cache reuse, the anchor-text swap, config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from samestyle.catalog.store import read_catalog, write_catalog
from samestyle.config import load_config
from samestyle.errors import ArtifactError, ConfigError
from samestyle.features.cache import FeatureCache
from samestyle.losses.unit import ContrastiveUnit
from samestyle.losses.weighting import FixedWeighting
from samestyle.models.fake import FakeTextEncoder
from samestyle.models.joint import JointConfig, JointModel
from samestyle.pipeline.embeddings import EmbeddingSet
from samestyle.train.data import TrainData, build_train_data
from samestyle.train.loop import TrainConfig, Trainer
from samestyle.train.query_views import (
    encode_query_views,
    product_rng,
    query_view_features,
    query_view_texts,
    title_views,
)
from samestyle.train.run import RunConfig, train_run
from samestyle.types import Product

_COLOURS = ("Red", "Blue", "Black", "Navy Blue", "Grey")
_KINDS = ("Tshirt", "Casual Shoes", "Watch", "Track Pants", "Kurta")


def _is_ordered_subset(view: list[str], words: list[str]) -> bool:
    it = iter(words)
    return all(any(w == x for x in it) for w in view)


def _is_contiguous(view: list[str], words: list[str]) -> bool:
    return any(words[i : i + len(view)] == view for i in range(len(words)))


def test_views_are_deterministic_short_ordered_title_words() -> None:
    title = "Puma Men Future Cat Remix SF Black Casual Shoes"
    views = title_views(title, 3, 3, product_rng(0, "p1"))
    assert views == title_views(title, 3, 3, product_rng(0, "p1"))  # same (seed, id): same views
    assert len(views) == 3 and len(set(views)) == 3
    for v in views:
        words = v.split()
        assert 1 <= len(words) <= 3 and _is_ordered_subset(words, title.split())
    others = {tuple(title_views(title, 3, 3, product_rng(s, "p1"))) for s in range(1, 6)}
    assert len(others) > 1  # the seed matters
    many = [title_views(title, 1, 3, product_rng(s, "p1"))[0] for s in range(200)]
    assert {"Puma" in v.split() for v in many} == {True, False}  # the brand-like first word sometimes goes
    multi = [v.split() for v in many if len(v.split()) > 1]
    assert {_is_contiguous(v, title.split()) for v in multi} == {True, False}  # runs and subsets


def test_short_and_odd_titles_still_give_k_nonempty_views() -> None:
    rng = np.random.default_rng(0)
    assert title_views("Socks", 3, 3, rng) == ["Socks"] * 3
    two = title_views("Titan Watch", 4, 3, rng)
    assert len(two) == 4 and set(two) <= {"Titan", "Watch", "Titan Watch"}
    dashed = title_views("Nike - & Shoe", 3, 3, rng)
    assert all(v and "-" not in v.split() and "&" not in v.split() for v in dashed)
    assert len(title_views("- -", 2, 3, rng)) == 2 and all(title_views("- -", 2, 3, rng))  # all punctuation


def test_views_of_a_product_do_not_depend_on_the_other_products() -> None:
    ids, titles = ["a", "b", "c"], ["Red Nike Running Shoe", "Blue Puma Tshirt", "Black Titan Watch"]
    forward = query_view_texts(ids, titles, 2, 3, seed=7)
    backward = query_view_texts(ids[::-1], titles[::-1], 2, 3, seed=7)
    assert forward == backward[::-1]
    assert all(len(v) == 2 for v in forward)


class _Counting(FakeTextEncoder):
    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.encoded: list[str] = []

    def _encode_text_batch(self, texts: list[str]) -> np.ndarray:
        self.encoded += texts
        return super()._encode_text_batch(texts)


def test_views_are_encoded_once_then_read_from_the_cache(tmp_path: Path) -> None:
    ids = [str(i) for i in range(30)]
    titles = [f"Brand{i % 4} Men {_COLOURS[i % 5]} {_KINDS[i % 5]}" for i in range(30)]
    views = query_view_texts(ids, titles, 3, 2, seed=0)
    first = _Counting(16)
    out = encode_query_views(ids, views, first, FeatureCache(tmp_path, first.name, 16))
    assert out.shape == (30, 3, 16)
    distinct = {v for row in views for v in row}
    assert sorted(first.encoded) == sorted(distinct)  # each distinct text once, across products
    assert np.allclose(out[5, 1], FakeTextEncoder(16).encode_texts([views[5][1]])[0])
    second = _Counting(16)
    again = encode_query_views(ids, views, second, FeatureCache(tmp_path, second.name, 16))
    assert second.encoded == [] and np.array_equal(again, out)
    more = query_view_texts(ids, titles, 4, 2, seed=0)  # a 4th view each: the first 3 are the same ...
    assert all(row[:3] == old for row, old in zip(more, views, strict=True) if len(set(old)) == 3)
    third = _Counting(16)
    encode_query_views(ids, more, third, FeatureCache(tmp_path, third.name, 16))
    assert third.encoded and set(third.encoded) <= {row[3] for row in more}  # ... so only the 4th is new


def _data(n: int = 64, k: int = 2, dim: int = 6) -> TrainData:
    g = torch.Generator().manual_seed(0)
    return TrainData(
        ids=[str(i) for i in range(n)],
        image=torch.randn(n, 8, generator=g),
        text=torch.randn(n, dim, generator=g),
        image_present=torch.ones(n, dtype=torch.bool),
        groups=torch.arange(n),
        pairs=torch.stack([torch.arange(n), torch.arange(n)], 1),
        weights=torch.ones(n),
        labels={},
        query_views=100.0 + torch.arange(n * k * dim, dtype=torch.float32).reshape(n, k, dim),
    )


def _trainer(tmp_path: Path, **train: float) -> Trainer:
    torch.manual_seed(0)
    model = JointModel(JointConfig(image_dim=8, text_dim=6, dim=4, hidden=8))
    cfg = TrainConfig(batch_size=16, feature_dropout=0.0, **train)  # type: ignore[arg-type]
    return Trainer(model, ContrastiveUnit(), FixedWeighting({}), cfg, tmp_path, lambda m, s: None)


def test_anchor_texts_are_swapped_for_views_at_the_configured_rate(tmp_path: Path) -> None:
    data = _data(n=2000)
    a = torch.arange(2000)
    text = _trainer(tmp_path, query_view_prob=0.4)._anchor_text(data, a)
    swapped = (text >= 100).all(1)
    assert ((text >= 100).any(1) == swapped).all()  # a row is a whole view or its own text
    assert 0.35 < swapped.float().mean() < 0.45
    rows = a[swapped]
    views = data.query_views
    assert views is not None
    own = (text[swapped][:, None, :] == views[rows]).all(2)  # [S, K]: which of its own views it is
    assert own.any(1).all() and own.float().mean(0).min() > 0.4  # ... picked among all K
    assert torch.equal(text[~swapped], data.text[a[~swapped]])
    everything = _trainer(tmp_path, query_view_prob=1.0)._anchor_text(data, a)
    assert (everything >= 100).all()


def test_probability_zero_is_exactly_the_old_step(tmp_path: Path) -> None:
    with_views, without = _data(), _data()
    without.query_views = None
    runs = []
    for data in (with_views, without):
        trainer = _trainer(tmp_path)  # query_view_prob = 0 (the default)
        trainer.train_epoch(data)
        runs.append((trainer.model.state_dict(), trainer.gen.get_state()))
    assert torch.equal(runs[0][1], runs[1][1])  # no draw from the batch generator
    assert all(torch.equal(v, runs[1][0][k]) for k, v in runs[0][0].items())
    moved = _trainer(tmp_path, query_view_prob=1.0)
    moved.train_epoch(_data())
    assert not all(torch.equal(v, runs[0][0][k]) for k, v in moved.model.state_dict().items())


def test_resume_continues_the_view_draws_exactly(tmp_path: Path) -> None:
    straight = _trainer(tmp_path / "a", query_view_prob=0.5)
    straight.train_epoch(_data())
    straight.train_epoch(_data())
    first = _trainer(tmp_path / "b", query_view_prob=0.5)
    first.train_epoch(_data())
    first.save_checkpoint()
    resumed = _trainer(tmp_path / "b", query_view_prob=0.5)
    assert resumed.load_checkpoint()
    resumed.train_epoch(_data())
    done = resumed.model.state_dict()
    assert all(torch.equal(v, done[k]) for k, v in straight.model.state_dict().items())


def test_bad_options_and_a_text_tower_are_config_errors(tmp_path: Path) -> None:
    tower = load_config(RunConfig, None, ['text_tower.kind="finetune"', "train.query_view_prob=0.3"])
    with pytest.raises(ConfigError, match="hidden states"):
        train_run(tower, tmp_path / "run", progress=False)  # fails before reading any data
    for bad in ("train.query_view_prob=1.5", "train.query_views=0"):
        with pytest.raises(ConfigError, match="query_view"):
            train_run(load_config(RunConfig, None, [bad]), tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="no query views"):
        data = _data()
        data.query_views = None
        _trainer(tmp_path, query_view_prob=0.5).train_epoch(data)


def _site(tmp: Path, n: int = 120, meta: bool = True) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    prods = [
        Product(str(i), f"Brand{i % 7} Men {_COLOURS[i % 5]} {_KINDS[i % 5]} {i}", category=("A", "b", "c"))
        for i in range(n)
    ]
    write_catalog(tmp / "cat", prods)
    emb = EmbeddingSet(ids=[p.id for p in prods], meta={"encoder_keys": {"text": "fake"}} if meta else {})
    enc = FakeTextEncoder(32)
    emb.add_space("image", rng.normal(size=(n, 12)), None, "f")
    emb.add_space("text", enc.encode_texts([p.title for p in prods]), None, enc.name)
    emb.save(tmp / "emb")
    return tmp / "cat", tmp / "emb"


def test_train_run_builds_views_with_the_embeddings_encoder_and_reuses_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMESTYLE_CACHE", str(tmp_path / "cache"))
    cat, emb = _site(tmp_path)
    opts = [f'data.catalog="{cat}"', f'data.embeddings="{emb}"', "model.image_dim=12", "model.text_dim=32"]
    opts += ["model.dim=8", "model.hidden=16", "train.epochs=1", "train.batch_size=32", "train.threads=1"]
    opts += ["train.val_queries=5", "train.query_view_prob=0.5"]
    cfg = load_config(RunConfig, None, opts)
    train_run(cfg, tmp_path / "run", progress=False)
    manifest = tmp_path / "cache" / "features" / "query_views" / "fake-text__bow__v1-d32" / "manifest.json"
    shards = manifest.read_text(encoding="utf-8")
    assert '"rows"' in shards
    train_run(cfg, tmp_path / "run2", progress=False)
    assert manifest.read_text(encoding="utf-8") == shards  # the second run encoded (and wrote) nothing
    catalog, emb_set = read_catalog(cat), EmbeddingSet.load(emb)
    ids = emb_set.ids[:10]
    views = query_view_features(cfg.train, catalog, emb_set, ids)
    text = build_train_data(catalog, emb_set, ids).text
    assert views.shape == (10, 3, 32)
    sims = views.mean(1) @ text.numpy().T  # [10, 10]: views vs titles, same encoder
    assert np.diag(sims).mean() > sims[~np.eye(10, dtype=bool)].mean() + 0.2  # closest to their own title


def test_embeddings_without_a_recorded_text_encoder_are_refused(tmp_path: Path) -> None:
    cat, emb = _site(tmp_path, n=20, meta=False)
    catalog, emb_set = read_catalog(cat), EmbeddingSet.load(emb)
    with pytest.raises(ArtifactError, match="encoder_keys"):
        query_view_features(TrainConfig(), catalog, emb_set, ["1"], cache_root=tmp_path)


_WORK = Path(__file__).resolve().parents[2] / ".cache" / "samestyle" / "work" / "myntra"


@pytest.mark.real
@pytest.mark.skipif(not (_WORK / "emb" / "embeddings.json").exists(), reason="needs the Myntra work folder")
def test_real_views_use_the_encoder_of_the_text_space(tmp_path: Path) -> None:
    """Slow twin: the real MiniLM, rebuilt from the embeddings' record, gives a whole-title "view" the
    vector of the frozen "text" space, and real views stay close to their product's title."""
    from samestyle.train.query_views import run_text_encoder

    emb = EmbeddingSet.load(_WORK / "emb", verify=False)
    catalog = read_catalog(_WORK / "catalog")
    rows = list(range(0, 40000, 4000))
    ids = [emb.ids[r] for r in rows]
    encoder = run_text_encoder(emb, threads=1)
    whole = encode_query_views(ids, [[catalog.get(i).text] for i in ids], encoder)[:, 0]
    assert np.allclose(whole, emb.vectors["text"][rows], atol=2e-3)
    views = query_view_features(TrainConfig(), catalog, emb, ids, encoder=encoder, cache_root=tmp_path)
    sims = views.mean(1) @ emb.vectors["text"][rows].T
    assert (sims.argmax(1) == np.arange(len(ids))).mean() >= 0.8
