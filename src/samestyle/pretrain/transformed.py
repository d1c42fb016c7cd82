"""Patch features of *transformed* images, for the rotation and grey-to-colour kaleido tasks.

The cached maps are of the upright colour photo only, and rotating or greying a CNN feature map is not
the same as encoding the rotated or grey photo (the channels are not rotation-equivariant, and colour is
mixed into every channel). So this module runs the backbone again, once per transformed view:

- ``aux_rot [N, 3, D]`` float16: the 1x1 patch (global mean of the ``[1280, 7, 7]`` map) of the photo
  rotated by 90, 180 and 270 degrees counter-clockwise (``PIL.Image.Transpose.ROTATE_90/180/270``,
  applied to the decoded photo *before* the usual pad-to-square preprocessing);
- ``aux_grey [N, 16, D]`` float16: the 4x4 patches of the grey photo (``convert("L").convert("RGB")``).

Both go through the subset's PCA and ``patch_scale`` exactly as ``prepare_data`` treats ``patches``
(maps rounded to float16 as the activation cache stores them, PCA, float16, divided by the scale), so
row n of ``aux_rot[:, k]`` and ``patches[:, 0]`` are in the same space. They are written to
``aux-<data stem>.npz`` beside the data file (atomic), with the ids, ``patch_scale``, the extractor name
and the seconds it took; a later call reads that file back when its ids and scale match.

Cost: 4 backbone passes per product (``ActivationExtractor("map")``, ONNX Runtime fp32, 1 thread).
The OpenVINO BF16 encoder has a map output too, but its features differ from the fp32 maps the
``patches`` come from, so it is not used here.

Example:
    >>> aux = ensure_aux(data_path(cfg), data, cfg.data.catalog)  # doctest: +SKIP
    >>> aux["aux_rot"].shape, aux["aux_grey"].shape  # doctest: +SKIP
    ((7500, 3, 256), (7500, 16, 256))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from samestyle.catalog.store import Catalog
from samestyle.fsio import atomic_path
from samestyle.models.base import ImageEncoder
from samestyle.pretrain.patches import PatchPCA, kaleido_patches

logger = logging.getLogger(__name__)

ROTATIONS = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)
"""Rotation classes 1, 2, 3 of the ``Rotation`` task (counter-clockwise 90, 180, 270 degrees)."""
GREY_GRID = 4
"""The grey-to-colour grid (4x4: scale index 3 of ``patches.DEFAULT_SCALES``)."""
AUX_KEYS = ("aux_rot", "aux_grey")


def aux_path(data_file: str | Path) -> Path:
    """``aux-<stem>.npz`` beside a prepared ``data-*.npz``."""
    data_file = Path(data_file)
    return data_file.with_name(f"aux-{data_file.stem}.npz")


def transformed_views(img: Image.Image) -> list[Image.Image]:
    """``[rot90, rot180, rot270, grey]`` of one decoded RGB photo."""
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return [rgb.transpose(t) for t in ROTATIONS] + [rgb.convert("L").convert("RGB")]


def project(patches: np.ndarray, pca: PatchPCA, scale: float) -> np.ndarray:
    """``[..., C]`` float32 -> ``[..., D]`` float16, the rounding steps of ``prepare_data``'s ``patches``."""
    reduced = pca.transform(patches).astype(np.float16).astype(np.float32)
    return (reduced / np.float32(scale)).astype(np.float16)


def views_features(
    views: Sequence[Image.Image], extractor: ImageEncoder, pca: PatchPCA, scale: float, batch_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Encode ``4 n`` views (``transformed_views`` of n photos, concatenated) to ``aux_rot``, ``aux_grey``.

    ``extractor`` must return flattened ``[C, H, W]`` maps (its ``shape``), e.g.
    ``ActivationExtractor("map")``. Returns ``[n, 3, D]`` and ``[n, 16, D]`` float16.
    """
    n = len(views) // 4
    if len(views) != 4 * n:
        raise ValueError(f"expected 4 views per photo, got {len(views)} views")
    shape = getattr(extractor, "shape", None)
    if shape is None:
        raise ValueError(
            f"{extractor.name} gives no feature maps (no 'shape'); use ActivationExtractor('map')"
        )
    maps = extractor.encode_images(list(views), batch_size=batch_size).reshape(n, 4, *shape)
    maps = maps.astype(np.float16).astype(np.float32)  # what the activation cache keeps
    rot = maps[:, :3].mean(axis=(3, 4))  # [n, 3, C]: the 1x1 patch = global mean
    grey = kaleido_patches(maps[:, 3], scales=(GREY_GRID,))  # [n, 16, C]
    return project(rot, pca, scale), project(grey, pca, scale)


def compute_aux(
    catalog: Catalog,
    ids: Sequence[str],
    extractor: ImageEncoder,
    pca: PatchPCA,
    scale: float,
    chunk: int = 64,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``{"aux_rot", "aux_grey"}`` for ``ids`` (order kept) and ``present [N]`` bool.

    A photo that cannot be opened gets zero rows, ``present=False`` and a warning.
    """
    from samestyle.catalog.images import open_image
    from samestyle.errors import SamestyleError

    d = pca.dim
    rot = np.zeros((len(ids), len(ROTATIONS), d), dtype=np.float16)
    grey = np.zeros((len(ids), GREY_GRID * GREY_GRID, d), dtype=np.float16)
    present = np.zeros(len(ids), dtype=bool)
    for s in range(0, len(ids), chunk):
        rows, views = [], []
        for r in range(s, min(s + chunk, len(ids))):
            path = catalog.image_path(catalog.get(ids[r]))
            try:
                if path is None:
                    raise SamestyleError("no image")
                with open_image(path) as img:
                    views += transformed_views(img)
                rows.append(r)
            except (SamestyleError, OSError, ValueError) as exc:
                logger.warning("product %s: no transformed features (%s)", ids[r], exc)
        if rows:
            rot[rows], grey[rows] = views_features(views, extractor, pca, scale)
            present[rows] = True
        logger.info("transformed views: %d / %d products", min(s + chunk, len(ids)), len(ids))
    return {"aux_rot": rot, "aux_grey": grey}, present


def _cached(path: Path, data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        same = np.array_equal(z["ids"], data["ids"]) and float(z["patch_scale"]) == float(data["patch_scale"])
        if same:
            return {k: z[k] for k in AUX_KEYS}
    logger.warning("%s: made for other prepared data (ids or patch_scale differ); computing it again", path)
    return None


def ensure_aux(
    data_file: str | Path,
    data: Mapping[str, np.ndarray],
    catalog: Catalog | str | Path,
    extractor: ImageEncoder | None = None,
) -> dict[str, np.ndarray]:
    """The ``aux_*`` arrays of a prepared subset, read from ``aux_path(data_file)`` or computed and saved.

    Args:
        data_file: the prepared ``data-*.npz`` (names the aux file).
        data: its arrays (``ids``, ``pca_mean``, ``pca_components``, ``patch_scale`` are used).
        catalog: the catalogue of the ids, or its folder (read only when computing).
        extractor: flattened-map image encoder; ``ActivationExtractor("map", num_threads=1)`` when None.
    """
    path = aux_path(data_file)
    cached = _cached(path, data)
    if cached is not None:
        return cached
    if not isinstance(catalog, Catalog):
        from samestyle.catalog.store import read_catalog

        catalog = read_catalog(catalog)
    if extractor is None:
        from samestyle.features.activations import ActivationExtractor

        extractor = ActivationExtractor("map", num_threads=1)
    pca = PatchPCA(data["pca_mean"], data["pca_components"])
    scale = float(data["patch_scale"])
    ids = [str(i) for i in data["ids"]]
    start = time.perf_counter()
    aux, present = compute_aux(catalog, ids, extractor, pca, scale)
    seconds = time.perf_counter() - start
    logger.info("%s: %d products (%d without an image) in %.0f s", path, len(ids), (~present).sum(), seconds)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh, ids=np.asarray(data["ids"]), patch_scale=scale, present=present,
            extractor=np.array(extractor.name), seconds=seconds,
            aux_rot=aux["aux_rot"], aux_grey=aux["aux_grey"],
        )  # fmt: skip
    return aux


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m samestyle.pretrain.transformed --config configs/pretrain.toml``: build the aux file."""
    import argparse

    from samestyle.config import load_config
    from samestyle.pretrain.prepare import load_data
    from samestyle.pretrain.run import data_path
    from samestyle.pretrain.train import PretrainConfig

    ap = argparse.ArgumentParser(description="features of rotated / grey photos of a prepared subset")
    ap.add_argument("--config", help="a TOML pretrain config (its [data] names the prepared subset)")
    ap.add_argument("--set", action="append", default=[], help="override, e.g. data.n_train=6000")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = load_config(PretrainConfig, args.config, args.set)
    path = data_path(cfg)
    if not path.exists():
        from samestyle.errors import ArtifactError

        raise ArtifactError(f"{path}: not prepared; run 'samestyle pretrain --config ...' first")
    ensure_aux(path, load_data(path), cfg.data.catalog)
    logger.info("aux features: %s", aux_path(path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
