"""Query-time texts with a run that has a text tower: the CLI pipeline (train -> embed --model -> index ->
search) on fake image features and a tiny random MiniLM-shaped text model; a catalogue title typed as a
query gets the product's own stored joint-text vector."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("transformers")

from samestyle.cli import main
from samestyle.models.text_towers import write_tiny_minilm
from samestyle.search.service import SearchService

COLOURS = {"red": (220, 30, 30), "blue": (30, 40, 220), "green": (30, 200, 60), "black": (10, 10, 10)}
KINDS = ["shirt", "dress", "shoe", "watch"]
STYLES = ["casual", "formal", "cotton"]


def _cli(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0, argv
    return out.getvalue()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("text-tower-site")
    tiny = write_tiny_minilm(root / "tiny-minilm", [*COLOURS, *KINDS, *STYLES])
    rng = np.random.default_rng(0)
    (root / "img").mkdir()
    rows = []
    for i in range(144):
        colour, kind, style = list(COLOURS)[i % 4], KINDS[(i // 4) % 4], STYLES[(i // 16) % 3]
        rgb = np.clip(np.array(COLOURS[colour]) + rng.integers(-20, 20, 3), 0, 255)
        Image.new("RGB", (24, 32), tuple(int(c) for c in rgb)).save(root / "img" / f"p{i}.png")
        rows.append({"id": f"p{i}", "title": f"{colour} {style} {kind}", "category": f"Apparel > {kind}",
                     "image": f"p{i}.png"})  # fmt: skip
    with open(root / "products.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    cache = root / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAMESTYLE_CACHE", str(cache))  # the hidden-state cache of train and embed --model
        _cli(
            "ingest",
            str(root / "products.csv"),
            "--out",
            str(root / "catalog"),
            "--image-root",
            str(root / "img"),
        )
        fakes = ["--image-encoder", "fake", "--text-encoder", "fake", "--cache", str(cache)]
        _cli("embed", "--catalog", str(root / "catalog"), "--out", str(root / "emb"), *fakes)
        sets = {
            "data.catalog": f'"{root / "catalog"}"', "data.embeddings": f'"{root / "emb"}"',
            "model.image_dim": "16", "model.text_dim": "384", "model.dim": "16", "model.hidden": "32",
            "text_tower.kind": '"finetune"', "text_tower.max_length": "8",
            "text_tower.model_path": f'"{tiny}"',
            "train.epochs": "2", "train.batch_size": "32", "train.val_queries": "5", "train.threads": "1",
        }  # fmt: skip
        _cli(
            "train", "--out", str(root / "run"), *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
        )
        _cli("embed", "--catalog", str(root / "catalog"), "--out", str(root / "emb-joint"), *fakes,
             "--model", str(root / "run"))  # fmt: skip
        _cli("index", "--catalog", str(root / "catalog"), "--embeddings", str(root / "emb-joint"),
             "--out", str(root / "index"))  # fmt: skip
    return root


def test_a_catalogue_title_as_a_query_gets_the_stored_vector(site: Path) -> None:
    service = SearchService.open(site / "index")
    assert service.joint and service.load_model().has_text_tower
    for pid in ("p0", "p37"):
        title = service.index.get_products([pid])[0].title
        stored = service.index.get_vectors("joint-text", [pid])[0]
        query, space = service.encode_text_query(title)
        assert space == "joint-image"
        np.testing.assert_allclose(query[0], stored, atol=2e-3)
        hits = service.search_text(title, k=3, space="joint-text")
        assert service.index.get_products([hits[0].id])[0].title == title and hits[0].score > 0.998


def test_text_queries_need_no_frozen_text_encoder_and_fuse_with_images(site: Path) -> None:
    service = SearchService.open(site / "index")
    service.encoder_keys.pop("text")  # joint text queries read MiniLM hidden states, not the frozen encoder
    hits = service.search_text("green cotton shoe", k=5)
    assert len(hits) == 5
    fused = service.search_image_text(site / "img" / "p2.png", "green casual shirt", k=3)
    assert len(fused) == 3
    frozen = service.encode_text_query
    with pytest.raises(Exception, match="no text encoder"):
        frozen("green shoe", space="text")  # the frozen space still needs the frozen encoder


def test_upserted_product_vectors_match_the_catalogue_embedding(site: Path) -> None:
    from samestyle.serve.embedder import product_vectors

    service = SearchService.open(site / "index")
    product = service.index.get_products(["p5"])[0]
    vecs = product_vectors(service, product, Image.open(site / "img" / "p5.png"))
    for space in ("joint-text", "joint-fused", "text"):
        np.testing.assert_allclose(vecs[space][0], service.index.get_vectors(space, ["p5"])[0], atol=2e-3)


def test_the_search_command_prints_hits(site: Path) -> None:
    out = _cli("search", "--index", str(site / "index"), "--text", "black formal watch", "--k", "2", "--json")
    hits = json.loads(out)
    assert len(hits) == 2


def test_the_http_service_answers_text_queries_through_the_tower(site: Path) -> None:
    from fastapi.testclient import TestClient

    from samestyle.serve.app import create_app
    from samestyle.serve.settings import ServeSettings

    service = SearchService.open(site / "index")
    title = service.index.get_products(["p9"])[0].title
    client = TestClient(create_app(service, ServeSettings(catalog_dir=site / "catalog", warmup=False)))
    resp = client.get("/api/search", params={"text": title, "k": 3, "space": "joint-text"})
    assert resp.status_code == 200, resp.text
    hits = resp.json()["hits"]
    assert hits[0]["score"] > 0.998 and hits[0]["product"]["title"] == title
