"""Config composition, joint model, training data groups, trainer resume, CCA, embeddings artifact."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from samestyle.catalog.store import write_catalog
from samestyle.config import dump_toml, from_dict, load_config
from samestyle.errors import ArtifactError, ConfigError
from samestyle.models.cca import CCAMap
from samestyle.models.joint import FUSIONS, JointConfig, JointModel
from samestyle.pipeline.embeddings import EmbeddingSet
from samestyle.train.data import build_train_data, pair_batches
from samestyle.train.run import RunConfig, load_run, train_run
from samestyle.types import Product


@dataclass(frozen=True)
class _Inner:
    dim: int = 8
    names: tuple[str, ...] = ("a",)
    scale: float | None = None


@dataclass(frozen=True)
class _Outer:
    seed: int = 0
    inner: _Inner = field(default_factory=_Inner)


def test_config_overrides_round_trip_and_errors(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("seed = 4\n[inner]\ndim = 16\n", encoding="utf-8")
    cfg = load_config(_Outer, tmp_path / "c.toml", ['inner.names=["x", "y"]', "inner.scale=0.5"])
    assert cfg == _Outer(4, _Inner(16, ("x", "y"), 0.5))
    assert from_dict(_Outer, tomllib.loads(dump_toml(cfg))) == cfg
    with pytest.raises(ConfigError, match="Did you mean 'dim'"):
        load_config(_Outer, None, ["inner.dimm=3"])
    with pytest.raises(ConfigError, match="expected int"):
        load_config(_Outer, None, ['seed="many"'])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(_Outer, tmp_path / "missing.toml")


@pytest.mark.parametrize("fusion", FUSIONS)
def test_joint_model_outputs_are_normalised_and_text_only_without_image(fusion: str) -> None:
    torch.manual_seed(0)
    model = JointModel(JointConfig(image_dim=12, text_dim=10, dim=8, hidden=16, fusion=fusion)).eval()
    present = torch.tensor([True, False, True])
    out = model(torch.randn(3, 12), torch.randn(3, 10), present)
    assert out.fused is not None and out.image is not None and out.text is not None
    assert torch.allclose(out.fused.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(out.image[1], torch.zeros(8))  # absent image -> zero row
    assert torch.allclose(out.fused[1], out.text[1], atol=1e-6)  # ... and fused falls back to text


def _toy(tmp: Path, n: int = 240) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    cats = rng.integers(0, 4, n)
    prods = [
        Product(str(i), f"title {i % (n - 5)}", category=("A", f"c{cats[i]}", f"t{cats[i]}"))
        for i in range(n)
    ]
    write_catalog(tmp / "cat", prods)
    latent = rng.normal(size=(n, 8))
    emb = EmbeddingSet(ids=[p.id for p in prods])
    emb.add_space("image", latent @ rng.normal(size=(8, 24)) + 0.2 * rng.normal(size=(n, 24)), None, "f")
    emb.add_space("text", latent @ rng.normal(size=(8, 12)) + 0.2 * rng.normal(size=(n, 12)), None, "f")
    emb.save(tmp / "emb")
    return tmp / "cat", tmp / "emb"


def test_train_data_groups_merge_titles_and_pairs(tmp_path: Path) -> None:
    from samestyle.catalog.store import read_catalog

    cat, emb_dir = _toy(tmp_path, n=20)
    data = build_train_data(
        read_catalog(cat),
        EmbeddingSet.load(emb_dir),
        [str(i) for i in range(20)],
        extra_pairs=[("1", "2", 2.0), ("2", "3", 1.0), ("1", "99", 1.0)],
    )
    g = data.groups.tolist()
    assert g[0] == g[15]  # "title 0" twice (i % 15): one style group
    assert g[1] == g[2] == g[3] and g[4] != g[1]  # merged along pairs, transitively
    assert len(data.pairs) == 22  # 20 self pairs + 2 in-split pairs ("99" is not in the split)
    batches = pair_batches(data, 8, torch.Generator().manual_seed(0))
    assert sum(len(b) for b in batches) >= 16 and all(len(b) <= 8 for b in batches)


def _cfg(cat: Path, emb: Path, epochs: int) -> RunConfig:
    return load_config(
        RunConfig,
        None,
        [
            f'data.catalog="{cat}"',
            f'data.embeddings="{emb}"',
            "model.image_dim=24",
            "model.text_dim=12",
            "model.dim=8",
            "model.hidden=16",
            f"train.epochs={epochs}",
            "train.batch_size=32",
            "train.patience=99",
            "train.val_queries=10",
            "train.threads=1",
        ],
    )


def test_training_learns_and_resume_continues(tmp_path: Path) -> None:
    cat, emb = _toy(tmp_path)
    m = train_run(_cfg(cat, emb, 2), tmp_path / "run", progress=False)
    assert m["epochs_run"] == 2
    m2 = train_run(_cfg(cat, emb, 4), tmp_path / "run", resume=True, progress=False)
    assert m2["epochs_run"] == 4 and [h["epoch"] for h in m2["history"]] == [1, 2, 3, 4]
    first, last = m2["history"][0], m2["history"][-1]
    assert last["loss"] < first["loss"]
    model, cfg = load_run(tmp_path / "run")
    assert cfg.train.epochs == 4 and not model.training
    with pytest.raises(ArtifactError):
        load_run(tmp_path / "nothing")


def test_cca_aligns_correlated_views() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(600, 4))
    x = z @ rng.normal(size=(4, 30)) + 0.1 * rng.normal(size=(600, 30))
    y = z @ rng.normal(size=(4, 20)) + 0.1 * rng.normal(size=(600, 20))
    cca = CCAMap(dim=4).fit(x[:500], y[:500])
    sims = cca.image(x[500:]) @ cca.text(y[500:]).T  # held-out rows
    assert (sims.argmax(1) == np.arange(100)).mean() > 0.8


def test_embeddings_round_trip_and_checksum(tmp_path: Path) -> None:
    emb = EmbeddingSet(ids=["a", "b", "c"])
    emb.add_space("image", np.eye(3, 4) * 3, np.array([True, False, True]), "enc")
    emb.save(tmp_path / "e")
    back = EmbeddingSet.load(tmp_path / "e", verify=True)
    assert back.ids == ["a", "b", "c"] and back.space("image")[0] == ["a", "c"]
    assert np.allclose(np.linalg.norm(back.vectors["image"], axis=1), [1, 0, 1])
    first = sorted(p.name for p in (tmp_path / "e").iterdir())
    emb.save(tmp_path / "e")  # a second save writes new data files, then the manifest, then drops the old
    second = sorted(p.name for p in (tmp_path / "e").iterdir())
    assert len(first) == len(second) and not set(first) & set(second) - {"embeddings.json"}
    image = next(p for p in (tmp_path / "e").glob("image.*.npy") if ".present." not in p.name)
    np.save(image, np.zeros((3, 4), np.float32))  # tampered after the manifest
    with pytest.raises(ArtifactError, match="checksum"):
        EmbeddingSet.load(tmp_path / "e", verify=True)


def test_embeddings_written_before_the_tags_still_load(tmp_path: Path) -> None:
    import json

    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "ids.json").write_text(json.dumps(["a", "b"]), encoding="utf-8")
    vecs = np.eye(2, 3, dtype=np.float32)
    np.save(folder / "text.npy", vecs)
    np.save(folder / "text.present.npy", np.array([True, True]))
    from samestyle.fsio import file_sha256

    spaces = {"text": {"dim": 3, "count": 2, "encoder": "enc", "sha256": file_sha256(folder / "text.npy")}}
    (folder / "embeddings.json").write_text(
        json.dumps({"format_version": 1, "n": 2, "spaces": spaces, "meta": {}}), encoding="utf-8"
    )
    back = EmbeddingSet.load(folder)
    assert back.ids == ["a", "b"] and np.array_equal(back.vectors["text"], vecs)


def test_an_all_zero_vector_is_marked_absent_not_indexed(tmp_path: Path) -> None:
    emb = EmbeddingSet(ids=["a", "b", "c"])
    emb.add_space("text", np.array([[1.0, 0], [0, 0], [0, 2.0]]), None, "enc")
    assert emb.present["text"].tolist() == [True, False, True] and emb.space("text")[0] == ["a", "c"]
