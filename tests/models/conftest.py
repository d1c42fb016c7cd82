"""Fixtures for encoder tests: tiny generated images, real Myntra thumbnails, real encoders (cached)."""

from __future__ import annotations

from pathlib import Path

import pytest
from models_helpers import extract_myntra
from PIL import Image


@pytest.fixture
def colour_images() -> list[Image.Image]:
    """Four small product-like images: red, dark red and blue 60x80 portraits, a white square."""
    return [
        Image.new("RGB", (60, 80), (220, 20, 30)),
        Image.new("RGB", (60, 80), (150, 10, 20)),
        Image.new("RGB", (60, 80), (20, 40, 200)),
        Image.new("RGB", (224, 224), (255, 255, 255)),
    ]


@pytest.fixture(scope="session")
def myntra_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four real 60x80 Myntra product photos in a temp folder."""
    return extract_myntra(tmp_path_factory.mktemp("myntra"), 4)


@pytest.fixture(scope="session")
def onnx_encoder() -> object:
    """The ONNX EfficientNet-Lite0 encoder; the export is cached under ``cache_dir()/onnx``."""
    from samestyle.models.image import OnnxEfficientNetLite0

    return OnnxEfficientNetLite0()


@pytest.fixture(scope="session")
def torch_encoder() -> object:
    from samestyle.models.image import TorchEfficientNetLite0

    return TorchEfficientNetLite0()


@pytest.fixture(scope="session")
def minilm() -> object:
    from samestyle.models.text import MiniLMTextEncoder

    return MiniLMTextEncoder()
