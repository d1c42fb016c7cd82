"""Helpers for the feature tests: a tiny generated catalogue with good and bad images, counting fakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from samestyle.catalog.store import Catalog
from samestyle.models import FakeImageEncoder, FakeTextEncoder
from samestyle.types import ImageStatus, Product

COLOURS = {"red": (220, 20, 30), "darkred": (150, 10, 20), "blue": (20, 40, 200), "green": (20, 180, 40)}


class CountingImageEncoder(FakeImageEncoder):
    """FakeImageEncoder that records how many images it encoded."""

    def __init__(self) -> None:
        super().__init__(dim=8)
        self.encoded = 0

    def _encode_image_batch(self, pixels: np.ndarray) -> np.ndarray:
        self.encoded += len(pixels)
        return super()._encode_image_batch(pixels)


class CountingTextEncoder(FakeTextEncoder):
    """FakeTextEncoder that records how many texts it encoded."""

    def __init__(self) -> None:
        super().__init__(dim=16)
        self.encoded = 0

    def _encode_text_batch(self, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        return super()._encode_text_batch(texts)


def make_catalog(root: Path) -> Catalog:
    """Ten products: 8 good images (two per colour, relative paths), then the bad cases:
    'corrupt-file' (status OK but garbage bytes), 'gone' (file missing), 'flagged' (status CORRUPT),
    'no-image' (no image at all)."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    products = []
    for i, (name, rgb) in enumerate(list(COLOURS.items()) * 2):
        Image.new("RGB", (60, 80), rgb).save(images / f"p{i}.png")
        products.append(Product(id=f"p{i}", title=f"{name} dress number {i}", image=f"images/p{i}.png"))
    (images / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    products += [
        Product(
            id="corrupt-file",
            title="bad",
            image="images/bad.jpg",
            image_status=ImageStatus.OK,
            image_sha256="0" * 64,
        ),
        Product(id="gone", title="gone", image="images/none.png"),
        Product(id="flagged", title="flagged", image="images/p0.png", image_status=ImageStatus.CORRUPT),
        Product(id="no-image", title="text only"),
    ]
    return Catalog(products, image_root=root)
