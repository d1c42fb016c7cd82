"""The text tower in a run: at init the frozen text path, trained, saved and loaded with the run, applied to
the catalogue, and used for query strings in the evaluation, on a tiny random MiniLM-shaped model."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from samestyle.catalog.store import Catalog, read_catalog, write_catalog  # noqa: E402
from samestyle.config import load_config  # noqa: E402
from samestyle.errors import ConfigError, SamestyleError  # noqa: E402
from samestyle.models.joint import JointModel  # noqa: E402
from samestyle.models.text import MiniLMTextEncoder  # noqa: E402
from samestyle.models.text_towers import (  # noqa: E402
    MiniLMHiddenStates,
    TextTowerConfig,
    build_text_tower,
    write_tiny_minilm,
)
from samestyle.pipeline.embeddings import EmbeddingSet  # noqa: E402
from samestyle.pipeline.joint import project  # noqa: E402
from samestyle.train.run import RunConfig, apply_run, build_model, load_run, train_run  # noqa: E402
from samestyle.types import Product  # noqa: E402

COLOURS = ["red", "blue", "green", "black", "white"]
KINDS = ["shirt", "dress", "shoe", "watch"]
STYLES = ["casual", "formal", "running", "cotton"]
WORDS = [*COLOURS, *KINDS, *STYLES, "men", "women"]
LENGTH = 8  # text_tower.max_length: every title fits (5 word pieces + [CLS]/[SEP])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_minilm(tmp_path_factory.mktemp("tiny") / "tiny-minilm", WORDS)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMESTYLE_CACHE", str(tmp_path / "cache"))  # the hidden-state cache goes here


def _site(tmp: Path, tiny: Path, n: int = 160) -> tuple[Catalog, EmbeddingSet]:
    """Products whose (fake) image features and titles share colour and kind; frozen text vectors from
    the tiny model itself, so the pooled path and the tower path start from the same encoder."""
    rng = np.random.default_rng(0)
    prods, latent = [], []
    for i in range(n):
        colour, kind = COLOURS[i % 5], KINDS[(i // 5) % 4]
        style, gender = STYLES[(i // 20) % 4], ["men", "women"][(i // 80) % 2]
        prods.append(
            Product(f"p{i}", f"{colour} {style} {gender} {kind}", category=("Apparel", kind, colour))
        )
        latent.append(np.r_[np.eye(5)[i % 5], np.eye(4)[(i // 5) % 4]])
    write_catalog(tmp / "cat", prods)
    image = np.asarray(latent) @ rng.normal(size=(9, 24)) + 0.3 * rng.normal(size=(n, 24))
    frozen = MiniLMTextEncoder(model_path=tiny, max_length=LENGTH).encode_texts([p.text for p in prods])
    emb = EmbeddingSet(ids=[p.id for p in prods])
    emb.add_space("image", image, None, "fake")
    emb.add_space("text", frozen, None, "tiny")
    emb.save(tmp / "emb")
    return read_catalog(tmp / "cat"), EmbeddingSet.load(tmp / "emb")


def _cfg(tmp: Path, tiny: Path, *extra: str) -> RunConfig:
    return load_config(
        RunConfig,
        None,
        [
            f'data.catalog="{tmp / "cat"}"',
            f'data.embeddings="{tmp / "emb"}"',
            "model.image_dim=24",
            "model.text_dim=384",
            "model.dim=16",
            "model.hidden=32",
            'text_tower.kind="finetune"',
            "text_tower.train_layers=1",
            f"text_tower.max_length={LENGTH}",
            f'text_tower.model_path="{tiny}"',
            "train.epochs=1",
            "train.batch_size=32",
            "train.patience=99",
            "train.val_queries=5",
            "train.threads=1",
            *extra,
        ],
    )


def _heads_only(model: JointModel) -> JointModel:
    """The same heads without the text tower (reads frozen text vectors)."""
    plain = JointModel(model.cfg)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("text_tower.")})
    return plain.eval()


def test_a_fresh_text_tower_is_the_frozen_text_path(tmp_path: Path, tiny: Path) -> None:
    cfg = _cfg(tmp_path, tiny)
    model = build_model(cfg).eval()
    assert model.has_text_tower and not _heads_only(model).has_text_tower
    texts = ["red casual men shirt", "blue formal women dress", "black shoe", "white cotton running watch"]
    rows = MiniLMHiddenStates(cfg.text_tower).encode_many(texts)
    assert rows.dtype == np.float16 and rows.shape == (4, LENGTH * 385)
    frozen = MiniLMTextEncoder(model_path=tiny, max_length=LENGTH).encode_texts(texts)
    via_tower = project(model, None, rows)["text"]
    via_frozen = project(_heads_only(model), None, frozen)["text"]
    np.testing.assert_allclose(via_tower, via_frozen, atol=2e-3)
    assert np.abs(via_tower[0] - via_tower[1]).max() > 0.05  # different texts: different vectors


def test_text_tower_errors_are_clear(tmp_path: Path, tiny: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.text_dim"):
        build_model(_cfg(tmp_path, tiny, "model.text_dim=32"))
    with pytest.raises(ConfigError, match="kind"):
        TextTowerConfig(kind="deep")  # type: ignore[arg-type]
    model = build_model(_cfg(tmp_path, tiny)).eval()
    with pytest.raises(SamestyleError, match="cached MiniLM hidden states"):
        project(model, None, np.ones((2, 384), np.float32))  # frozen vectors fed to a text tower
    from transformers import BertConfig, BertModel

    shallow = tmp_path / "shallow"
    two = BertConfig(hidden_size=384, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32)
    BertModel(two).save_pretrained(str(shallow))
    with pytest.raises(ConfigError, match="6-layer"):
        build_text_tower(TextTowerConfig(kind="finetune", model_path=str(shallow)))


def test_training_updates_saves_and_applies_the_text_tower(tmp_path: Path, tiny: Path) -> None:
    catalog, emb = _site(tmp_path, tiny)
    cfg = _cfg(tmp_path, tiny, "train.lr=0.01", "text_tower.lr_scale=1.0")
    fresh = build_text_tower(cfg.text_tower)
    metrics = train_run(cfg, tmp_path / "run", progress=False)
    assert np.isfinite(metrics["history"][0]["loss"]) and np.isfinite(metrics["best_val_sum_r"])
    assert '[text_tower]\nkind = "finetune"' in (tmp_path / "run" / "config.toml").read_text()

    model, back = load_run(tmp_path / "run")  # no flags: the tower comes from config.toml + safetensors
    assert back == cfg and model.has_text_tower and not model.training
    before, after = fresh.state_dict(), model.text_tower.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2  # the training steps moved the pretrained layer

    out = apply_run(tmp_path / "run", catalog, emb)
    rows = MiniLMHiddenStates(back.text_tower).encode_many([p.text for p in catalog.products])
    expected = project(model, None, rows)["text"]  # a new text: MiniLM up to layer 5, then the tower
    np.testing.assert_allclose(out.vectors["joint-text"], expected, atol=2e-3)
    frozen_path = project(_heads_only(model), None, emb.vectors["text"])["text"]
    assert np.abs(out.vectors["joint-text"] - frozen_path).max() > 0.05  # the trained tower is used
    fused = project(model, emb.vectors["image"], rows, emb.present["image"])["fused"]
    np.testing.assert_allclose(out.vectors["joint-fused"], fused, atol=2e-3)


def test_a_run_without_the_text_tower_section_loads_unchanged(tmp_path: Path, tiny: Path) -> None:
    _site(tmp_path, tiny)
    cfg = dataclasses.replace(_cfg(tmp_path, tiny), text_tower=TextTowerConfig())
    train_run(cfg, tmp_path / "run", progress=False)
    model, _ = load_run(tmp_path / "run")
    toml = tmp_path / "run" / "config.toml"
    text = toml.read_text()
    start = text.index("[text_tower]")
    end = text.index("\n[", start + 1)
    toml.write_text(text[:start] + text[end + 1 :])  # what a run written before the section looks like
    old, back = load_run(tmp_path / "run")
    assert back.text_tower == TextTowerConfig() and not old.has_text_tower
    x = np.random.default_rng(0).normal(size=(3, 384)).astype(np.float32)
    np.testing.assert_array_equal(project(old, None, x)["text"], project(model, None, x)["text"])


def test_the_eval_encodes_query_strings_through_the_tower(tmp_path: Path, tiny: Path) -> None:
    from samestyle.eval.methods import JointMethod
    from samestyle.eval.suites import MyntraContext, evaluate

    catalog, emb = _site(tmp_path, tiny)
    train_run(_cfg(tmp_path, tiny), tmp_path / "run", progress=False)
    method = JointMethod(emb, tmp_path / "run", catalog)
    assert method.query_inputs is not None
    items = method.items()
    titles = [catalog.products[i].title for i in (0, 7, 42)]
    queries = method.queries(method.query_inputs(titles))
    assert queries is not None
    np.testing.assert_allclose(queries, items["text"][[0, 7, 42]], atol=2e-3)  # a title = its product

    encoder = MiniLMTextEncoder(model_path=tiny, max_length=LENGTH)

    def frozen(texts: Sequence[str]) -> np.ndarray:
        return encoder.encode_texts(list(texts))

    split = json.loads((tmp_path / "run" / "split.json").read_text())
    ctx = MyntraContext(catalog, emb, split, None, frozen)
    scores = evaluate(method, ctx, ["category"])  # zero-shot names go through the tower, not `frozen`
    assert "subCategory zero-shot (name as text query)" in scores
    with pytest.raises(SamestyleError, match="cached MiniLM hidden states"):
        method.queries(ctx.encode(["shirt"]))  # the frozen vectors would not fit the tower


def test_feature_dropout_falls_on_the_text_tower_output_not_its_cached_rows(
    tmp_path: Path, tiny: Path
) -> None:
    from samestyle.losses.unit import ContrastiveUnit
    from samestyle.losses.weighting import FixedWeighting
    from samestyle.train.data import build_train_data
    from samestyle.train.loop import Trainer
    from samestyle.train.run import text_tower_features

    catalog, emb = _site(tmp_path, tiny, n=40)
    cfg = _cfg(tmp_path, tiny, "train.feature_dropout=0.5")
    rows = text_tower_features(cfg.text_tower, catalog, emb, progress=False)
    assert rows is not None and rows.dtype == np.float16
    data = build_train_data(catalog, emb, emb.ids, text_features=rows)
    assert data.text.dtype == torch.float16 and data.text.shape == (40, LENGTH * 385)
    model = build_model(cfg)
    trainer = Trainer(
        model, ContrastiveUnit(cfg.loss), FixedWeighting({}), cfg.train, tmp_path, lambda m, s: None
    )
    tower_ids = {id(p) for p in model.text_tower.parameters()}
    groups = [g for g in trainer.opt.param_groups if {id(p) for p in g["params"]} & tower_ids]
    assert len(groups) == 1 and {id(p) for p in groups[0]["params"]} == tower_ids
    assert groups[0]["lr_scale"] == cfg.text_tower.lr_scale
    seen: list[torch.Tensor] = []
    model.text_tower.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    model.eval()  # no dropout inside the layers: only the trainer's feature dropout differs
    a = torch.arange(8)
    view = trainer._view(data, a, data.image_present[a])
    plain = model(data.image[a], data.text[a], data.image_present[a])
    assert torch.equal(seen[0], data.text[a])  # hidden states and mask reach the tower untouched
    assert view.text is not None and plain.text is not None
    assert not torch.allclose(view.text, plain.text, atol=1e-3)  # ... and the view is still perturbed
