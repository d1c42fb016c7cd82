"""Grocery training: photo -> product pairs, the carved split, training on fake features, val-only table."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from samestyle.errors import ConfigError, SamestyleError
from samestyle.eval import grocery as G
from samestyle.losses.unit import ContrastiveConfig, ContrastiveUnit, Embeddings
from samestyle.models.fake import FakeImageEncoder, FakeTextEncoder
from samestyle.models.joint import JointConfig
from samestyle.paths import shared_data_dir
from samestyle.train.data import TrainData
from samestyle.train.grocery import GroceryRunConfig, effective_loss, train_grocery
from samestyle.train.grocery_data import (
    carve_split,
    concat_train_data,
    grocery_train_data,
    photo_texts,
    product_rows,
)
from samestyle.train.loop import TrainConfig
from samestyle.train.run import load_run


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fake_features(seed: int = 0, val_seed: int = 1, per_class: int = 10) -> G.GroceryFeatures:
    """6 products (fine ids 3, 1, 4, 0, 5, 2: not sorted); photos = noisy copies of the iconic image."""
    rng = np.random.default_rng(seed)
    groups = np.array([3, 1, 4, 0, 5, 2])
    gal_img, gal_txt = _unit(rng, 6, 16), _unit(rng, 6, 12)
    name_txt = gal_txt + 0.3 * _unit(rng, 6, 12)
    train_groups = np.repeat(groups, per_class)  # file order: class blocks
    train_img = gal_img[np.repeat(np.arange(6), per_class)] + 0.6 * _unit(rng, 6 * per_class, 16)
    vrng = np.random.default_rng(val_seed)
    q_groups = np.array([3, 3, 1, 4, 4, 0, 2])  # 7 val photos of 5 classes
    rows = product_rows(groups, q_groups)
    photo_img = gal_img[rows] + 0.6 * _unit(vrng, 7, 16)
    return G.GroceryFeatures(
        query_groups=q_groups,
        gallery_groups=groups,
        photo_paths=[Path(f"val/{i}.jpg") for i in range(7)],
        iconic_paths=[Path(f"iconic/{g}.jpg") for g in groups],
        photo_img=photo_img / np.linalg.norm(photo_img, axis=1, keepdims=True),
        query_txt=name_txt[rows],
        gal_img=gal_img,
        gal_txt=gal_txt,
        class_names=[f"class {g}" for g in groups],
        encoders={"image": "fake", "text": "fake"},
        train_img=train_img / np.linalg.norm(train_img, axis=1, keepdims=True),
        train_groups=train_groups,
        train_paths=[Path(f"/data/train/c{g}/{i}.jpg") for i, g in enumerate(train_groups)],
        name_txt=name_txt,
    )


def small_config(**over: object) -> GroceryRunConfig:
    cfg = GroceryRunConfig(
        model=JointConfig(dim=16, hidden=32, dropout=0.0),
        train=TrainConfig(epochs=12, batch_size=32, lr=5e-3, patience=100, warmup_epochs=0.5),
    )
    return replace(cfg, **over)  # type: ignore[arg-type]


def test_pairs_join_each_photo_to_its_own_product_only() -> None:
    prod_groups = np.array([7, 5, 9])
    photo_groups = np.array([5, 9, 5, 7, 9])
    data = grocery_train_data(
        np.eye(3, 4), np.eye(3, 2), prod_groups, np.ones((5, 4)), np.zeros((5, 2)), photo_groups
    )
    pairs = data.pairs.numpy()
    photo_pairs = pairs[pairs[:, 0] >= 3]
    assert sorted(photo_pairs[:, 0].tolist()) == [3, 4, 5, 6, 7]  # each photo once, as the anchor
    for a, b in photo_pairs:
        assert b < 3 and prod_groups[b] == photo_groups[a - 3]  # its product, never another
    assert [tuple(p) for p in pairs[pairs[:, 0] < 3]] == [(0, 0), (1, 1), (2, 2)]  # product self pairs
    assert data.groups.tolist() == [7, 5, 9, 5, 9, 5, 7, 9]  # group-aware masking by fine class
    no_self = grocery_train_data(
        np.eye(3, 4), np.eye(3, 2), prod_groups, np.ones((5, 4)), np.zeros((5, 2)), photo_groups, False
    )
    assert len(no_self.pairs) == 5 and len(no_self) == 8
    with pytest.raises(SamestyleError, match=r"classes \[8\]"):
        product_rows(prod_groups, np.array([5, 8]))


def test_carved_split_is_by_photo_disjoint_and_takes_each_class_tail() -> None:
    groups = np.array([2] * 10 + [0] * 3 + [1] + [4] * 7)
    tr, va = carve_split(groups, 0.15)
    assert set(tr).isdisjoint(va) and sorted([*tr, *va]) == list(range(len(groups)))
    assert va.tolist() == [8, 9, 12, 19, 20]  # ceil(1.5) = 2 of 10, 1 of 3, none of 1, ceil(1.05) = 2 of 7
    assert 13 in tr  # a one-photo class stays in train
    _, va2 = carve_split(groups, 0.5)
    assert va2.tolist() == [5, 6, 7, 8, 9, 11, 12, 17, 18, 19, 20]


def test_concat_shifts_rows_and_groups() -> None:
    a = grocery_train_data(np.eye(2, 3), np.eye(2, 2), np.array([0, 1]), np.ones((1, 3)), np.ones((1, 2)),
                           np.array([1]))  # fmt: skip
    b = grocery_train_data(np.eye(2, 3), np.eye(2, 2), np.array([0, 1]), np.ones((2, 3)), np.ones((2, 2)),
                           np.array([0, 0]))  # fmt: skip
    c = concat_train_data(a, b)
    assert len(c) == 7 and c.pairs.tolist() == [[0, 0], [1, 1], [2, 1], [3, 3], [4, 4], [5, 3], [6, 3]]
    assert c.groups.tolist() == [0, 1, 1, 2, 3, 2, 2]


def test_photo_text_modes() -> None:
    f = fake_features()
    assert np.allclose(photo_texts(f, np.array([4, 4]), "name"), f.name_txt[[2, 2]])  # type: ignore[index]
    assert not photo_texts(f, np.array([4]), "none").any()
    loss = effective_loss(small_config(photo_text="none"))
    # the default pairs, photo image as anchor: fused-image -> image-fused, text-image -> image-text
    assert loss.pairs == ("image-image", "image-text", "image-fused")
    assert effective_loss(small_config()).pairs == small_config().loss.pairs
    with pytest.raises(ConfigError, match="image side"):
        effective_loss(small_config(photo_text="none", loss=ContrastiveConfig(pairs=("text-fused",))))
    with pytest.raises(ConfigError, match="photo_text"):
        GroceryRunConfig(photo_text="caption")


def _batch_loss(run: Path, data: TrainData) -> float:
    model, cfg = load_run(run)
    unit = ContrastiveUnit(cfg.loss)
    with torch.no_grad():
        a, p = data.pairs[:, 0], data.pairs[:, 1]
        anc, pos = model(data.image[a], data.text[a]), model(data.image[p], data.text[p])
        terms = unit(Embeddings.of(anc), Embeddings.of(pos), data.groups[a])
    return float(sum(terms.values()))


def test_training_lowers_the_loss_and_selects_on_carved_train_photos(tmp_path: Path) -> None:
    f = fake_features()
    cfg = small_config()
    metrics = train_grocery(replace(cfg, train=replace(cfg.train, epochs=1, lr=1e-6)), tmp_path / "a", f)
    m2 = train_grocery(cfg, tmp_path / "b", f)
    data = grocery_train_data(f.gal_img, f.gal_txt, f.gallery_groups, f.train_img, photo_texts(
        f, f.train_groups, "name"), f.train_groups)  # type: ignore[arg-type]  # fmt: skip
    assert _batch_loss(tmp_path / "b", data) < 0.8 * _batch_loss(tmp_path / "a", data)
    assert m2["history"][-1]["loss"] < m2["history"][0]["loss"]
    assert m2["best_val_mean_mrr"] > metrics["best_val_mean_mrr"]
    assert m2["val_photos"] == 6 * 2 and m2["train_photos"] == 6 * 8  # ceil(0.15 * 10) = 2 per class
    split = json.loads((tmp_path / "b" / "split.json").read_text(encoding="utf-8"))
    assert split["root"] == str(Path("/data/train")) and len(split["val"]) == 12
    assert "c3/8.jpg" in split["val"] and "c3/9.jpg" in split["val"] and "c3/7.jpg" in split["train"]
    # the trained run is a normal run folder, scored by the same code as the Myntra run
    table = G.run_grocery_eval("joint", tmp_path / "b", features=f)
    assert list(table) == list(G.ROWS)


def test_val_photos_never_reach_training_and_the_table_is_on_val_only(tmp_path: Path) -> None:
    f1, f2 = fake_features(val_seed=1), fake_features(val_seed=2)  # only the val photos differ
    assert not np.allclose(f1.photo_img, f2.photo_img)
    cfg = small_config(train=replace(small_config().train, epochs=3))
    train_grocery(cfg, tmp_path / "1", f1)
    train_grocery(cfg, tmp_path / "2", f2)
    w1, w2 = (
        load_file(str(tmp_path / "1" / "model.safetensors")),
        load_file(str(tmp_path / "2" / "model.safetensors")),
    )
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    t1, t2 = G.run_grocery_eval("joint", tmp_path / "1", features=f1), G.run_grocery_eval(
        "joint", tmp_path / "1", features=f2)  # fmt: skip
    assert all(m["n_queries"] == 7 for m in t1.values())  # the 7 val photos, not the 60 train photos
    assert t1["image->image"] != t2["image->image"] or t1["image->text"] != t2["image->text"]


def test_ensemble_of_one_run_is_the_run_and_of_two_is_their_mean(tmp_path: Path) -> None:
    from samestyle.eval import grocery_joint as GJ
    from samestyle.eval.grocery_joint import ensemble_table

    f = fake_features()
    cfg = small_config(train=replace(small_config().train, epochs=2))
    train_grocery(cfg, tmp_path / "a", f)
    train_grocery(replace(cfg, train=replace(cfg.train, seed=1)), tmp_path / "b", f)
    one = ensemble_table(f, [tmp_path / "a"])
    single = G.run_grocery_eval("joint", tmp_path / "a", features=f)
    assert all(one[r]["mrr"] == pytest.approx(single[r]["mrr"]) for r in G.ROWS)
    both = ensemble_table(f, [tmp_path / "a", tmp_path / "b"])
    assert list(both) == list(G.ROWS) and all(m["n_queries"] == 7 for m in both.values())
    (qa, ga), (qb, gb) = (GJ._joint_vectors(f, tmp_path / r) for r in ("a", "b"))
    mean_q, mean_g = qa["image"] + qb["image"], ga["text"] + gb["text"]  # normalised inside the table
    by_hand = G.grocery_table(mean_q, None, None, mean_g, None, None, f.query_groups, f.gallery_groups)
    assert both["image->text"] == by_hand["image->text"]
    assert not np.allclose(qa["image"], qb["image"])  # two different runs
    with pytest.raises(SamestyleError, match="at least one"):
        ensemble_table(f, [])


def test_refit_retrains_on_all_train_photos_for_the_selected_epochs(tmp_path: Path) -> None:
    f = fake_features()
    cfg = small_config(train=replace(small_config().train, epochs=4))
    plain = train_grocery(cfg, tmp_path / "plain", f)
    refit = train_grocery(replace(cfg, refit=True), tmp_path / "refit", f)

    def drop_time(h: list[dict[str, float]]) -> list[dict[str, float]]:
        return [{k: v for k, v in e.items() if k != "seconds"} for e in h]

    assert drop_time(refit["history"]) == drop_time(plain["history"])  # the same selection phase
    assert refit["best_epoch"] == plain["best_epoch"]
    assert refit["train_photos"] == 60 and plain["train_photos"] == 48 and refit["refit"] is True
    w1, w2 = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("plain", "refit"))
    assert not all(torch.equal(w1[k], w2[k]) for k in w1)  # the carved photos were trained on too


def test_runs_with_a_text_tower_are_refused(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import samestyle.train.run as run_mod

    f = fake_features()
    train_grocery(small_config(train=replace(small_config().train, epochs=1)), tmp_path / "r", f)
    model, cfg = load_run(tmp_path / "r")
    monkeypatch.setattr(type(model), "has_text_tower", property(lambda self: True), raising=False)
    monkeypatch.setattr(run_mod, "load_run", lambda _: (model, cfg))
    with pytest.raises(SamestyleError, match="text tower"):
        G.run_grocery_eval("joint", tmp_path / "r", features=f)
    with pytest.raises(ConfigError, match="no image or text"):
        train_grocery(small_config(init_run=str(tmp_path / "r")), tmp_path / "ft", f)


def test_training_needs_train_photos(tmp_path: Path) -> None:
    f = replace(fake_features(), train_img=None)
    with pytest.raises(SamestyleError, match="include_train"):
        train_grocery(small_config(), tmp_path, f)


def test_fine_tune_from_a_run_keeps_its_model_config(tmp_path: Path) -> None:
    f = fake_features()
    train_grocery(small_config(train=replace(small_config().train, epochs=2)), tmp_path / "base", f)
    cfg = small_config(init_run=str(tmp_path / "base"), model=JointConfig(dim=64))  # dim ignored: the run's
    metrics = train_grocery(replace(cfg, train=replace(cfg.train, epochs=2)), tmp_path / "ft", f)
    assert load_run(tmp_path / "ft")[1].model.dim == 16 and metrics["epochs_run"] == 2


@pytest.mark.real
def test_real_grocery_training_slice(tmp_path: Path) -> None:
    if not (shared_data_dir() / "grocery_trainval.tar.gz").is_file():
        pytest.skip("grocery_trainval.tar.gz not found in the shared data folder")
    f = G.grocery_features(
        FakeImageEncoder(dim=16), FakeTextEncoder(dim=32), include_train=True,
        feature_cache=tmp_path / "features", val_limit=8, train_limit=120,
    )  # fmt: skip
    metrics = train_grocery(small_config(train=replace(small_config().train, epochs=2)), tmp_path / "run", f)
    assert metrics["train_photos"] + metrics["val_photos"] == 120 and metrics["val_photos"] > 0
    split = json.loads((tmp_path / "run" / "split.json").read_text(encoding="utf-8"))
    assert Path(split["root"]).name == "train" and len(split["val"]) == metrics["val_photos"]
    table = G.run_grocery_eval("joint", tmp_path / "run", features=f)
    assert all(m["n_queries"] == 8 for m in table.values())


def test_cli_train_dispatches_grocery_configs(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import samestyle.train.grocery as grocery_mod
    from samestyle.cli import main

    seen: dict[str, object] = {}

    def fake_run(cfg: GroceryRunConfig, out: str) -> dict[str, float]:
        seen["cfg"], seen["out"] = cfg, out
        return {"best_epoch": 3, "best_val_mean_mrr": 0.5, "train_seconds": 2.0}

    monkeypatch.setattr(grocery_mod, "grocery_train_run", fake_run)
    toml = tmp_path / "g.toml"
    toml.write_text('kind = "grocery"\nphoto_text = "none"\n[train]\nepochs = 3\n', "utf-8")
    assert (
        main(["train", "--config", str(toml), "--out", str(tmp_path / "g"), "--set", "val_fraction=0.2"]) == 0
    )
    cfg = seen["cfg"]
    assert isinstance(cfg, GroceryRunConfig) and cfg.photo_text == "none" and cfg.val_fraction == 0.2
    assert cfg.train.epochs == 3 and "carved-train mean MRR 0.5000" in capsys.readouterr().out
    assert main(["train", "--config", str(toml), "--resume", "--out", str(tmp_path / "g")]) == 2
    assert "--resume" in capsys.readouterr().err
