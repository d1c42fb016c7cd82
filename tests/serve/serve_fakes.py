"""A small generated catalogue (drawn product pictures), embedded with the fake encoders and indexed.

Colours x kinds x genders, three suppliers, prices; each picture is a coloured silhouette of its kind, so
the fake image encoder (colour statistics) finds same-colour products and the fake text encoder (bag of
words) matches titles. The same layout as ``samestyle ingest`` / ``embed`` / ``index`` write.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from samestyle.catalog.store import read_catalog, write_catalog
from samestyle.models import IMAGE_ENCODERS, TEXT_ENCODERS
from samestyle.pipeline.build_index import build_index
from samestyle.pipeline.embed import embed_catalog
from samestyle.search.service import SearchService
from samestyle.serve import ServeSettings, VariantSpec, create_app
from samestyle.types import ImageStatus, Product

COLOURS = {
    "red": (210, 40, 40),
    "blue": (40, 70, 210),
    "green": (40, 170, 70),
    "black": (25, 25, 25),
    "yellow": (235, 200, 40),
}
KINDS = ["shirt", "dress", "shoe", "watch"]
GENDERS = ["men", "women"]
SUPPLIERS = ["S1", "S2", "S3"]


@dataclass(frozen=True)
class FakeSite:
    root: Path
    catalog: Path
    emb: Path
    index: Path
    images: Path


def draw(kind: str, rgb: tuple[int, int, int], size: tuple[int, int] = (120, 160)) -> Image.Image:
    """A recognisable silhouette of ``kind`` in colour ``rgb`` on white."""
    w, h = size
    im = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(im)
    if kind == "shirt":
        d.polygon(
            [
                (30, 30),
                (50, 20),
                (70, 20),
                (90, 30),
                (110, 55),
                (92, 65),
                (88, 55),
                (88, 140),
                (32, 140),
                (32, 55),
                (28, 65),
                (10, 55),
            ],
            fill=rgb,
        )
    elif kind == "dress":
        d.polygon([(48, 15), (72, 15), (78, 60), (108, 148), (12, 148), (42, 60)], fill=rgb)
    elif kind == "shoe":
        d.polygon([(10, 95), (50, 95), (70, 110), (110, 118), (110, 135), (10, 135)], fill=rgb)
    else:
        d.rectangle([50, 10, 70, 150], fill=(90, 70, 50))
        d.ellipse([30, 50, 90, 110], fill=rgb, outline=(60, 60, 60), width=3)
    return im.resize((w, h)) if (w, h) != (120, 160) else im


def fake_products(n: int = 120, image_dir: Path | None = None) -> list[Product]:
    rng = np.random.default_rng(0)
    products = []
    colours = list(COLOURS)
    for i in range(n):
        colour, kind = colours[i % len(colours)], KINDS[(i // len(colours)) % len(KINDS)]
        gender = GENDERS[(i // (len(colours) * len(KINDS))) % 2]
        image = f"p{i}.png"
        if image_dir is not None:
            rgb = np.clip(np.array(COLOURS[colour]) + rng.integers(-25, 25, 3), 0, 255)
            draw(kind, (int(rgb[0]), int(rgb[1]), int(rgb[2]))).save(image_dir / image)
        products.append(
            Product(
                id=f"p{i}",
                title=f"{gender} {colour} {kind} model {i}",
                description=f"A {colour} {kind} for {gender}, style number {i}.",
                category=("Apparel", kind.capitalize()),
                attributes={"baseColour": colour.capitalize(), "gender": gender.capitalize()},
                image=image,
                supplier_id=SUPPLIERS[i % len(SUPPLIERS)],
                price=float(10 + (i * 7) % 90),
                image_status=ImageStatus.OK,
            )
        )
    products.append(Product(id="noimg", title="men red shirt without a photo", category=("Apparel", "Shirt")))
    return products


def build_site(root: Path, n: int = 120) -> FakeSite:
    """Catalogue + fake-encoder embeddings + index (catalogue path recorded in the index manifest)."""
    images = root / "images"
    images.mkdir(parents=True)
    products = fake_products(n, images)
    catalog_dir = write_catalog(root / "catalog", products, image_root=images, source={"generated": "tests"})
    catalog = read_catalog(catalog_dir)
    image_enc, text_enc = IMAGE_ENCODERS.build("fake"), TEXT_ENCODERS.build("fake")
    emb, _ = embed_catalog(
        catalog,
        root / "emb",
        image_enc,
        text_enc,
        None,
        progress=False,
        encoder_keys={"image": "fake", "text": "fake"},
    )
    build_index(catalog, emb, root / "index", catalog_dir=catalog_dir)
    return FakeSite(root, catalog_dir, root / "emb", root / "index", images)


def png_bytes(kind: str = "shirt", colour: str = "red") -> bytes:
    buf = io.BytesIO()
    draw(kind, COLOURS[colour]).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(side: int = 30_000) -> bytes:
    """A tiny PNG whose header claims ``side`` x ``side`` pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    body = zlib.compress(row * 64, 9)  # far fewer rows than claimed: never decoded anyway
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def build_joint_site(root: Path, n: int = 120) -> FakeSite:
    """:func:`build_site` plus a tiny trained joint model (2 epochs) and an index with its joint spaces."""
    import torch

    from samestyle.config import load_config
    from samestyle.pipeline.embeddings import EmbeddingSet
    from samestyle.train.run import RunConfig, apply_run, train_run

    torch.set_num_threads(1)
    site = build_site(root, n)
    overrides = [
        f'data.catalog="{site.catalog}"',
        f'data.embeddings="{site.emb}"',
        "model.image_dim=16",
        "model.text_dim=32",
        "model.dim=16",
        "model.hidden=32",
        "train.epochs=2",
        "train.batch_size=32",
        "train.val_queries=10",
        "train.threads=1",
    ]
    run = root / "run"
    train_run(load_config(RunConfig, None, overrides), run, progress=False)
    catalog = read_catalog(site.catalog)
    emb = apply_run(run, catalog, EmbeddingSet.load(site.emb))
    emb.save(root / "emb-joint")
    build_index(
        catalog, EmbeddingSet.load(root / "emb-joint"), root / "index-joint", catalog_dir=site.catalog
    )
    return FakeSite(root, site.catalog, root / "emb-joint", root / "index-joint", site.images)


API_KEY = "test-key-0123456789"


def make_client(site: FakeSite, text_space: str | None = None, **settings: object) -> TestClient:
    """An app over ``site``; ``text_space``: the space text queries search (default: the service's)."""
    opts: dict[str, object] = {"catalog_dir": site.catalog, "api_key": API_KEY, "warmup": False}
    opts.update(settings)
    service = SearchService.open(site.index)
    if text_space is None:
        return TestClient(create_app(service, ServeSettings(**opts)))  # type: ignore[arg-type]
    opts["variants"] = (VariantSpec("default", site.index, text_space),)
    return TestClient(create_app({"default": service}, ServeSettings(**opts)))  # type: ignore[arg-type]


def expect_error(resp: Any, status: int, *words: str) -> None:
    """``resp`` is a JSON error ``{"error", "code"}`` with ``status``, naming every one of ``words``."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "code"} and "Traceback" not in body["error"]
    for w in words:
        assert w in body["error"], body
