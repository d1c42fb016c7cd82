"""ProductIndex: spaces + metadata + manifest; filtered search, updates, atomic save, clear open errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from samestyle.errors import ArtifactError, ConfigError
from samestyle.index import Filter, MetadataStore, ProductIndex, UnknownIdError, VectorIndex
from samestyle.index import layout as layout_module
from samestyle.types import Hit, Product

N, DIM = 400, 16


def _products() -> list[Product]:
    cats = [("Apparel", "Topwear"), ("Apparel", "Bottomwear"), ("Footwear",)]
    return [
        Product(
            f"p{i}",
            f"item {i}",
            category=cats[i % 3],
            attributes={"baseColour": ["Red", "Blue"][i % 2]},
            supplier_id=f"s{i % 4}",
            price=float(i % 100),
        )
        for i in range(N)
    ]


@pytest.fixture
def built(tmp_path: Path, unit) -> tuple[ProductIndex, np.ndarray]:
    products = _products()
    ids = [p.id for p in products]
    image, text = unit(N, DIM, seed=1), unit(N, DIM + 8, seed=2)
    index = ProductIndex.create(tmp_path / "idx", products, meta={"encoder": {"image": "fake-v1"}})
    index.add_space("image", ids, image)
    index.add_space("text", ids[: N // 2], text[: N // 2], backend="faiss-hnsw", meta={"model": "run-7"})
    return index, image


def test_search_with_filter_and_products(built: tuple[ProductIndex, np.ndarray]) -> None:
    index, image = built
    assert index.spaces() == ["image", "text"] and len(index) == N and "p3" in index
    assert index.space("image").backend == "faiss-flat"  # choose_backend for a small space
    hits = index.search("image", image[:3], k=5)
    assert [row[0].id for row in hits] == ["p0", "p1", "p2"]
    first = hits[0][0]
    assert isinstance(first, Hit) and first.scores == {"image": first.score}
    assert first.product is not None and first.product.category == ("Apparel", "Topwear")
    flt = Filter.parse(["category=apparel/topwear", "attr=baseColour:red", "price=..20"])
    got = index.search("image", image[10:14], k=7, filter=flt)
    for row in got:  # keeps i % 3 == 0, i % 2 == 0, i % 100 <= 20: 16 products, so k come back
        assert len(row) == 7
        assert all(h.product is not None and h.product.attributes["baseColour"] == "Red" for h in row)
        assert all(int(h.id[1:]) % 6 == 0 and int(h.id[1:]) % 100 <= 20 for h in row)
    bare = index.search("image", image[:1], k=2, with_products=False)
    assert bare[0][0].product is None
    with pytest.raises(ConfigError, match=r"no space 'fused'.*image, text"):
        index.search("fused", image[:1], k=2)


def test_save_open_round_trip(built: tuple[ProductIndex, np.ndarray], tmp_path: Path) -> None:
    index, image = built
    before = index.search("image", image[:5], k=10, filter=Filter(suppliers=frozenset({"s1"})))
    path = index.save()
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["products"] == N
    assert manifest["spaces"]["text"] == {
        "backend": "faiss-hnsw",
        "dim": DIM + 8,
        "count": N // 2,
        "config": manifest["spaces"]["text"]["config"],
        "meta": {"model": "run-7"},
    }
    assert manifest["meta"] == {"encoder": {"image": "fake-v1"}} and manifest["created"]
    opened = ProductIndex.open(path)
    assert opened.spaces() == ["image", "text"] and len(opened) == N
    assert opened.manifest["meta"] == manifest["meta"] and opened.manifest["generation"] == "gen-000001"
    np.testing.assert_allclose(opened.get_vectors("image", ["p4"]), image[4:5], atol=1e-6)
    assert opened.search("image", image[:5], k=10, filter=Filter(suppliers=frozenset({"s1"}))) == before
    with pytest.raises(ArtifactError, match="exists"):
        ProductIndex.create(path, overwrite=False)
    replacement = ProductIndex.create(path, _products()[:3])  # replaces the old index only at save
    assert len(ProductIndex.open(path)) == N
    replacement.save()
    assert len(ProductIndex.open(path)) == 3 and ProductIndex.open(path).spaces() == []


def test_updates_then_save_reuses_unchanged_spaces(built: tuple[ProductIndex, np.ndarray], unit) -> None:
    index, _ = built
    index.save()
    opened = ProductIndex.open(index.path)
    new_vec = unit(1, DIM, seed=99)
    opened.upsert_products(
        [Product("p1", "renamed", category=("Home",)), Product("new", "brand new", category=("Home",))],
        {"image": np.concatenate([new_vec, unit(1, DIM, seed=98)])},
    )
    assert opened.remove_products(["p2", "ghost"]) == 1
    home = opened.search("image", new_vec, k=5, filter=Filter(category=("home",)))
    assert [h.id for h in home[0]] == ["p1", "new"] and home[0][0].product.title == "renamed"  # type: ignore[union-attr]
    old_text = next((index.path / opened._generation / "spaces" / "text").iterdir())  # type: ignore[operator]
    opened.save()
    reopened = ProductIndex.open(index.path)
    assert len(reopened) == N and "p2" not in reopened and "p2" not in reopened.space("image")
    assert len(reopened.space("text")) == N // 2 - 1  # p2 was in the text space too
    new_text = reopened.path / reopened._generation / "spaces" / "text" / old_text.name  # type: ignore[operator]
    assert new_text.exists()  # the text space changed (p2 removed): rewritten, not linked
    with pytest.raises(ConfigError, match="no metadata"):
        reopened.upsert_products([], {"image": (["ghost"], new_vec)})
    with pytest.raises(UnknownIdError):
        reopened.add_space("other", ["ghost"], new_vec)


def test_unchanged_space_files_are_hard_linked(built: tuple[ProductIndex, np.ndarray]) -> None:
    index, _ = built
    index.save()
    first = index.path / index._generation / "spaces" / "image" / "faiss.index"  # type: ignore[operator]
    inode = first.stat().st_ino
    index.upsert_products([Product("p5", "only metadata changed")])
    index.save()
    second = index.path / index._generation / "spaces" / "image" / "faiss.index"  # type: ignore[operator]
    assert second.stat().st_ino == inode and not first.exists()  # linked, and the old generation is gone
    assert sorted(p.name for p in index.path.iterdir()) == ["gen-000002", "manifest.json"]


@pytest.mark.parametrize("where", ["metadata", "space", "manifest"])
def test_crash_during_save_leaves_the_previous_index(
    built: tuple[ProductIndex, np.ndarray], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    index, image = built
    index.save()
    index.upsert_products([Product(f"extra{i}", "x") for i in range(5)])
    index.remove_products(["p0"])

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated crash")

    def half_written_space(self: VectorIndex, directory: Path) -> Path:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "faiss.index").write_bytes(b"half")
        raise RuntimeError("simulated crash")

    if where == "metadata":
        monkeypatch.setattr(MetadataStore, "save", crash)
    elif where == "space":
        monkeypatch.setattr(VectorIndex, "save", half_written_space)
    else:
        monkeypatch.setattr(layout_module, "write_json", crash)
    with pytest.raises(RuntimeError, match="simulated"):
        index.save()
    monkeypatch.undo()
    survivor = ProductIndex.open(index.path)
    assert len(survivor) == N and "p0" in survivor and "extra0" not in survivor
    assert survivor.search("image", image[:1], k=1)[0][0].id == "p0"
    index.save()  # the next save succeeds and clears the debris
    assert sorted(p.name for p in index.path.iterdir()) == ["gen-000003", "manifest.json"]
    assert "extra0" in ProductIndex.open(index.path) and len(ProductIndex.open(index.path)) == N + 4


def test_open_errors(tmp_path: Path, built: tuple[ProductIndex, np.ndarray]) -> None:
    with pytest.raises(ArtifactError, match="no index here"):
        ProductIndex.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="not a samestyle index"):
        ProductIndex.open(tmp_path / "empty")
    index, _ = built
    path = index.save()
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(ArtifactError, match=r"format 99.*reads 1"):
        ProductIndex.open(path)
    (path / "manifest.json").write_text(json.dumps({**manifest, "generation": "gen-000042"}))
    with pytest.raises(ArtifactError, match="incomplete"):
        ProductIndex.open(path)
    (path / "manifest.json").write_text(json.dumps(manifest))
    os.remove(path / manifest["generation"] / "spaces" / "text" / "row_labels.npy")
    with pytest.raises(ArtifactError, match="incomplete or unreadable"):
        ProductIndex.open(path)
    (path / "manifest.json").write_text("{")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        ProductIndex.open(path)
    (path / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="first save never finished"):
        ProductIndex.open(path)
