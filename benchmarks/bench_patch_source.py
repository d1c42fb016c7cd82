"""Kaleido patches from pooled map regions vs from encoded crops: cost per product and feature quality.

Two ways to give each of the 55 kaleido patches (1x1 .. 5x5 grids) a 1280-d EfficientNet-Lite0 feature:

- ``regions`` (what ``pretrain.prepare`` does): one backbone pass per photo, then the mean of each
  patch's region of the ``[1280, 7, 7]`` map (``pretrain.patches.kaleido_patches``);
- ``crops``: the photo padded to a square as the encoder's preprocessing does (median border colour), cut
  into the k x k grid (``region_bounds`` on pixels), each crop preprocessed on its own (bicubic resize to
  224) and encoded: the pooled 1280-d feature. 55 backbone passes per photo (the 1x1 crop is the photo).

Both use the same ONNX Runtime fp32 graph (``OnnxEfficientNetLite0``, outputs ``pooled`` and ``map``),
1 thread. Products: ``--n-train`` from the train part and ``--n-test`` from the held-out part of the
prepared pre-training subset (seeded). Reported:

- cost: ms per product (median over all products; crops split into crop+preprocess and inference);
- agreement: mean cosine of the two features of the same patch, per scale, next to the cosine of the
  same patch kind between two different products (what "unrelated" looks like for ReLU6 features);
- linear probes (``pretrain.categories.linear_probe``: standardise + logistic regression) trained on the
  train products, scored on the held-out ones, for subCategory, articleType and baseColour, from each
  scale's patches (concatenated, L2-normalised per patch, reduced by an SVD fitted on the train rows);
- camouflage detectability (the 3x3 task): AUC of cos(cell, mean of the product's other 8 cells) for
  the product's own cell vs the same cell of another held-out product;
- locality: mean cosine between different cells of one product's grid (lower = more local content).

    .venv/bin/python benchmarks/bench_patch_source.py --config configs/pretrain.toml \\
        --n-train 400 --n-test 300 --out benchmarks/results/patch_source.json
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from samestyle.catalog.images import open_image
from samestyle.catalog.store import read_catalog
from samestyle.config import load_config
from samestyle.fsio import write_json
from samestyle.models.image import OnnxEfficientNetLite0
from samestyle.models.preprocess import border_colour
from samestyle.pretrain.categories import linear_probe
from samestyle.pretrain.patches import DEFAULT_SCALES, kaleido_patches, region_bounds, scale_slices
from samestyle.pretrain.prepare import load_data
from samestyle.pretrain.run import data_path
from samestyle.pretrain.train import PretrainConfig

logger = logging.getLogger("bench_patch_source")
KINDS = ("regions", "crops")


def padded_square(img: Image.Image) -> Image.Image:
    """Pad to a square with the median border colour, centred (the encoder's ``fit="pad"``)."""
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), border_colour(img))
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas


def crops(img: Image.Image) -> list[Image.Image]:
    """The 55 grid crops of the padded square, in ``kaleido_patches`` order."""
    sq = padded_square(img)
    side = sq.size[0]
    out = []
    for k in DEFAULT_SCALES:
        for r0, r1 in region_bounds(k, side):
            for c0, c1 in region_bounds(k, side):
                out.append(sq.crop((c0, r0, c1, r1)))
    return out


def encode_product(
    enc: OnnxEfficientNetLite0, img: Image.Image
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Both kinds of ``[55, 1280]`` patches of one photo, and the seconds each step took."""
    t0 = time.perf_counter()
    fmap = enc.encode_image_maps([img], batch_size=1)  # [1, 1280, 7, 7]
    regions = kaleido_patches(fmap)[0]
    t1 = time.perf_counter()
    pixels = np.stack([enc.preprocess(c) for c in crops(img)])  # [55, 3, 224, 224]
    t2 = time.perf_counter()
    crop_feats = enc.encode_pixels(pixels, batch_size=55)  # [55, 1280] pooled
    t3 = time.perf_counter()
    return {"regions": regions, "crops": crop_feats}, {
        "regions": t1 - t0, "crops_prep": t2 - t1, "crops_infer": t3 - t2, "crops": t3 - t1,
    }  # fmt: skip


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def probe_features(tr: np.ndarray, te: np.ndarray, dim: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated unit patches ``[N, k*1280]`` -> ``dim`` SVD components fitted on the train rows."""
    mean = tr.mean(0)
    _, _, vt = np.linalg.svd(tr - mean, full_matrices=False)
    comp = vt[: min(dim, len(vt))].T
    return (tr - mean) @ comp, (te - mean) @ comp


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(pos > neg) + 0.5 P(tie) over all pairs."""
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def camouflage_auc(p: np.ndarray, rng: np.random.Generator) -> float:
    """3x3 grid ``[N, 9, C]``: own cell vs another product's same cell, scored against the other 8 cells."""
    n = len(p)
    u = unit(p)
    own, foreign = [], []
    for i in range(n):
        j = (i + 1 + rng.integers(n - 1)) % n
        for c in range(9):
            ctx = unit(np.delete(p[i], c, axis=0).mean(0))
            own.append(float(u[i, c] @ ctx))
            foreign.append(float(u[j, c] @ ctx))
    return auc(np.array(own), np.array(foreign))


def quality(
    feats: dict[str, np.ndarray], labels: dict[str, np.ndarray], n_train: int, seed: int
) -> dict[str, Any]:
    names = [f"{k}x{k}" for k in DEFAULT_SCALES]
    slices = scale_slices()
    rng = np.random.default_rng(seed)
    test = slice(n_train, None)
    reg, cro = unit(feats["regions"][test]), unit(feats["crops"][test])
    other = np.roll(np.arange(len(reg)), 1)
    out: dict[str, Any] = {"agreement": {}, "probe": {}, "locality": {}, "camouflage_auc": {}}
    for name, sl in zip(names, slices, strict=True):
        out["agreement"][name] = {
            "cos_regions_vs_crops": round(float((reg[:, sl] * cro[:, sl]).sum(-1).mean()), 4),
            "cos_other_product_regions": round(float((reg[:, sl] * reg[other, sl]).sum(-1).mean()), 4),
            "cos_other_product_crops": round(float((cro[:, sl] * cro[other, sl]).sum(-1).mean()), 4),
        }
        if sl.stop - sl.start > 1:
            for kind, u in (("regions", reg), ("crops", cro)):
                g = u[:, sl] @ u[:, sl].transpose(0, 2, 1)  # [N, k, k]
                k = g.shape[1]
                off = (g.sum((1, 2)) - np.trace(g, axis1=1, axis2=2)) / (k * k - k)
                out["locality"].setdefault(name, {})[kind] = round(float(off.mean()), 4)
    for kind in KINDS:
        out["camouflage_auc"][kind] = round(camouflage_auc(feats[kind][test][:, slices[2]], rng), 4)
    for label, y in labels.items():
        for name, sl in [*zip(names, slices, strict=True), ("all55", slice(0, 55))]:
            for kind in KINDS:
                x = unit(feats[kind][:, sl]).reshape(len(y), -1)
                xtr, xte = probe_features(x[:n_train], x[n_train:])
                res = linear_probe(xtr, y[:n_train], xte, y[n_train:])
                out["probe"].setdefault(label, {}).setdefault(name, {})[kind] = round(res["acc"], 4)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/pretrain.toml")
    ap.add_argument("--n-train", type=int, default=400, help="train-part products (probe training)")
    ap.add_argument("--n-test", type=int, default=300, help="held-out products (all quality numbers)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/patch_source.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    warnings.filterwarnings("ignore", message="The number of unique classes")  # articleType: many classes
    import torch

    torch.set_num_threads(1)
    cfg = load_config(PretrainConfig, args.config)
    data = load_data(data_path(cfg))
    catalog = read_catalog(cfg.data.catalog)
    rng = np.random.default_rng(args.seed)
    is_train = data["is_train"]
    rows = np.concatenate([
        rng.permutation(np.flatnonzero(is_train))[: args.n_train],
        rng.permutation(np.flatnonzero(~is_train))[: args.n_test],
    ])  # fmt: skip
    ids = [str(data["ids"][r]) for r in rows]
    enc = OnnxEfficientNetLite0(num_threads=1)
    feats = {k: np.zeros((len(ids), 55, 1280), dtype=np.float32) for k in KINDS}
    times: dict[str, list[float]] = {}
    sizes = []
    start = time.perf_counter()
    for i, pid in enumerate(ids):
        path = catalog.image_path(catalog.get(pid))
        assert path is not None
        with open_image(path) as img:
            sizes.append(img.size)
            got, secs = encode_product(enc, img)
        for k in KINDS:
            feats[k][i] = got[k]
        for k, v in secs.items():
            times.setdefault(k, []).append(v)
        if (i + 1) % 50 == 0:
            logger.info("%d / %d products, %.0f s", i + 1, len(ids), time.perf_counter() - start)
    colours = [catalog.get(p).attributes.get("baseColour", "") for p in ids]
    names = sorted(set(colours))
    labels = {
        "subCategory": data["sub"][rows],
        "articleType": data["art"][rows],
        "baseColour": np.array([names.index(c) for c in colours]),
    }
    ratio = statistics.median(times["crops"]) / statistics.median(times["regions"])
    result = {
        "what": "kaleido patches: pooled map regions vs encoded crops (EfficientNet-Lite0 ONNX fp32)",
        "n_train": args.n_train, "n_test": args.n_test, "seed": args.seed,
        "photo_sizes": {f"{w}x{h}": sizes.count((w, h)) for w, h in sorted(set(sizes))},
        "ms_per_product_median": {k: round(1000 * statistics.median(v), 2) for k, v in times.items()},
        "crops_over_regions": round(ratio, 1),
        "seconds_total": round(time.perf_counter() - start, 1),
        "quality": quality(feats, labels, args.n_train, args.seed),
        "machine": f"{platform.processor() or platform.machine()}, 2 cores shared with other jobs, 1 thread",
        "command": "benchmarks/bench_patch_source.py " + f"--n-train {args.n_train} --n-test {args.n_test}",
    }  # fmt: skip
    write_json(Path(args.out), result)
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
