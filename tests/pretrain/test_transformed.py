"""Features of rotated / grey photos (``pretrain.transformed``) vs plain loops, with a fake map encoder."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samestyle.catalog.store import Catalog
from samestyle.models.base import ImageEncoder
from samestyle.models.preprocess import PreprocessConfig, preprocess_image
from samestyle.pretrain.patches import PatchPCA
from samestyle.pretrain.transformed import aux_path, compute_aux, ensure_aux
from samestyle.types import Product

C, S = 4, 7  # fake map: [4, 7, 7]


class FakeMapExtractor(ImageEncoder):
    """A nonlinear, position-dependent fake ``[4, 7, 7]`` map of a 28 px image (counts what it encodes)."""

    preprocess_config = PreprocessConfig(size=28, resample="bilinear")
    shape = (C, S, S)

    def __init__(self) -> None:
        self.dim, self.name, self.encoded = C * S * S, "fake-map/v1", 0
        rng = np.random.default_rng(0)
        self.w = rng.normal(size=(C, 3)).astype(np.float32)
        self.bias = rng.normal(size=(C, S, S)).astype(np.float32)

    def _encode_image_batch(self, pixels: np.ndarray) -> np.ndarray:
        self.encoded += len(pixels)
        cells = pixels.reshape(len(pixels), 3, S, 4, S, 4).mean(axis=(3, 5))  # [N, 3, 7, 7]
        out = np.maximum(np.einsum("ck,nkhw->nchw", self.w, cells) + self.bias, 0.0)
        return out.reshape(len(pixels), -1)


def _photo(i: int) -> Image.Image:
    """A 12x16 portrait with four differently coloured quadrants (so rotations and grey change it)."""
    rng = np.random.default_rng(i)
    arr = np.zeros((16, 12, 3), dtype=np.uint8)
    for r0, c0 in ((0, 0), (0, 6), (8, 0), (8, 6)):
        arr[r0 : r0 + 8, c0 : c0 + 6] = rng.integers(0, 256, size=3)
    return Image.fromarray(arr)


def _catalog(root: Path, n: int = 5) -> Catalog:
    (root / "images").mkdir(parents=True)
    products = []
    for i in range(n):
        _photo(i).save(root / "images" / f"p{i}.png")
        products.append(Product(id=f"p{i}", title=f"t{i}", image=f"images/p{i}.png"))
    products.append(Product(id="gone", title="gone", image="images/missing.png"))
    return Catalog(products, image_root=root)


def _data(ids: list[str]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    comps, _ = np.linalg.qr(rng.normal(size=(C, 3)))
    return {
        "ids": np.array(ids), "pca_mean": rng.normal(size=C).astype(np.float32),
        "pca_components": comps.astype(np.float32), "patch_scale": np.float64(1.7),
    }  # fmt: skip


def _reference(ex: FakeMapExtractor, img: Image.Image, data: dict[str, np.ndarray]) -> tuple[list, list]:
    """Plain loops: ``img.rotate(angle, expand=True)`` (ccw), grey via PIL, region means cell by cell."""

    def project(v: np.ndarray) -> np.ndarray:
        red = ((v - data["pca_mean"]) @ data["pca_components"]).astype(np.float16).astype(np.float32)
        return (red / np.float32(data["patch_scale"])).astype(np.float16)

    def fmap(view: Image.Image) -> np.ndarray:
        x = preprocess_image(view, ex.preprocess_config)[None]
        return ex._encode_image_batch(x).reshape(C, S, S).astype(np.float16).astype(np.float32)

    rot = []
    for angle in (90, 180, 270):
        m = fmap(img.rotate(angle, expand=True))
        rot.append(
            project(np.array([sum(m[c, h, w] for h in range(S) for w in range(S)) / 49 for c in range(C)]))
        )
    m = fmap(img.convert("L").convert("RGB"))
    grey = []
    for i in range(4):
        for j in range(4):
            r0, r1 = math.floor(i * S / 4), math.ceil((i + 1) * S / 4)
            c0, c1 = math.floor(j * S / 4), math.ceil((j + 1) * S / 4)
            cell = [m[:, h, w] for h in range(r0, r1) for w in range(c0, c1)]
            grey.append(project(sum(cell) / len(cell)))
    return rot, grey


def test_compute_aux_matches_plain_loops_and_skips_missing_photos(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path / "shop")
    ids = [*[f"p{i}" for i in range(5)], "gone"]
    data = _data(ids)
    ex = FakeMapExtractor()
    pca = PatchPCA(data["pca_mean"], data["pca_components"])
    aux, present = compute_aux(catalog, ids, ex, pca, float(data["patch_scale"]), chunk=2)
    assert aux["aux_rot"].shape == (6, 3, 3) and aux["aux_grey"].shape == (6, 16, 3)
    assert aux["aux_rot"].dtype == np.float16 and present.tolist() == [True] * 5 + [False]
    assert not aux["aux_rot"][5].any() and not aux["aux_grey"][5].any()
    for r in range(5):
        rot, grey = _reference(FakeMapExtractor(), _photo(r), data)
        np.testing.assert_allclose(aux["aux_rot"][r].astype(np.float32), np.stack(rot), atol=2e-3, rtol=2e-3)
        np.testing.assert_allclose(
            aux["aux_grey"][r].astype(np.float32), np.stack(grey), atol=2e-3, rtol=2e-3
        )
    # the views really differ: three rotations, and grey from colour
    assert np.abs(aux["aux_rot"][0, 0] - aux["aux_rot"][0, 1]).max() > 0.01
    assert np.abs(aux["aux_rot"][0, 0] - aux["aux_rot"][0, 2]).max() > 0.01


def test_ensure_aux_caches_and_recomputes_for_other_data(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path / "shop", n=3)
    data = _data(["p0", "p1", "p2"])
    data_file = tmp_path / "work" / "data-x.npz"
    ex = FakeMapExtractor()
    first = ensure_aux(data_file, data, catalog, extractor=ex)
    assert ex.encoded == 12 and aux_path(data_file) == tmp_path / "work" / "aux-data-x.npz"
    again = ensure_aux(data_file, data, catalog, extractor=ex)
    assert ex.encoded == 12  # read back, nothing encoded
    for k in ("aux_rot", "aux_grey"):
        np.testing.assert_array_equal(again[k], first[k])
    other = data | {"ids": np.array(["p2", "p1", "p0"])}
    swapped = ensure_aux(data_file, other, catalog, extractor=ex)
    assert ex.encoded == 24
    np.testing.assert_array_equal(swapped["aux_rot"][0], first["aux_rot"][2])


def test_ensure_data_merges_aux_only_for_the_aux_tasks(tmp_path: Path, monkeypatch) -> None:
    import samestyle.pretrain.run as run_mod
    from samestyle.pretrain.train import PretrainConfig

    catalog = _catalog(tmp_path / "shop", n=3)
    data = _data(["p0", "p1", "p2"]) | {"tokens": np.ones((3, 2), np.int64), "align": np.zeros((3, 2))}
    data_file = tmp_path / "data-x.npz"
    np.savez(data_file, **data)
    ensure_aux(data_file, data, catalog, extractor=FakeMapExtractor())  # the cached aux file
    monkeypatch.setattr(run_mod, "data_path", lambda cfg: data_file)
    plain = run_mod.ensure_data(PretrainConfig())
    assert not any(k.startswith("aux_") for k in plain)
    with_rot = run_mod.ensure_data(replace(PretrainConfig(), tasks=("itm", "rotation")))
    assert with_rot["aux_rot"].shape == (3, 3, 3) and with_rot["aux_grey"].shape == (3, 16, 3)


@pytest.mark.real
def test_real_upright_view_reproduces_the_prepared_patches() -> None:
    """The transformed-view path with no transform gives the prepared ``patches`` (same preprocessing)."""
    from samestyle.pretrain.run import data_path
    from samestyle.pretrain.train import PretrainConfig

    cfg = PretrainConfig()
    path, catalog_dir = data_path(cfg), Path(cfg.data.catalog)
    if not path.exists() or not catalog_dir.exists():
        pytest.skip(f"{path} or {catalog_dir} not there (run 'samestyle pretrain' first)")
    from samestyle.catalog.images import open_image
    from samestyle.catalog.store import read_catalog
    from samestyle.features.activations import ActivationExtractor
    from samestyle.pretrain.patches import kaleido_patches
    from samestyle.pretrain.prepare import load_data
    from samestyle.pretrain.transformed import project, transformed_views, views_features

    data, catalog = load_data(path), read_catalog(catalog_dir)
    ex = ActivationExtractor("map", num_threads=1)
    pca = PatchPCA(data["pca_mean"], data["pca_components"])
    scale = float(data["patch_scale"])
    rows = [0, len(data["ids"]) - 1]
    photos = [open_image(catalog.image_path(catalog.get(str(data["ids"][r])))) for r in rows]
    maps = ex.encode_images(photos).reshape(2, 1280, 7, 7).astype(np.float16)
    upright = project(kaleido_patches(maps), pca, scale).astype(np.float32)
    np.testing.assert_allclose(upright, data["patches"][rows].astype(np.float32), atol=0.02, rtol=0.02)
    rot, grey = views_features([v for p in photos for v in transformed_views(p)], ex, pca, scale)
    assert rot.shape == (2, 3, pca.dim) and grey.shape == (2, 16, pca.dim)
    aux = aux_path(path)
    if aux.exists():
        with np.load(aux) as z:
            np.testing.assert_allclose(
                z["aux_rot"][rows].astype(np.float32), rot.astype(np.float32), atol=0.02
            )
            np.testing.assert_allclose(
                z["aux_grey"][rows].astype(np.float32), grey.astype(np.float32), atol=0.02
            )
    # a rotated or grey photo is a different input: its features differ from the upright ones
    assert np.abs(rot[:, 1] - upright[:, 0]).max() > 0.05 and np.abs(grey - upright[:, 14:30]).max() > 0.05
