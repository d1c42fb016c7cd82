"""Preprocessing: pad-to-square keeps the whole product, scaling matches EfficientNet-Lite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samestyle.catalog.images import ImageError
from samestyle.errors import ConfigError
from samestyle.models.preprocess import (
    PreprocessConfig,
    border_colour,
    load_and_preprocess,
    preprocess_batch,
    preprocess_image,
)


def portrait_with_stripes() -> Image.Image:
    """A 60x80 white portrait with a black stripe on its top and bottom rows (the 'product' ends)."""
    arr = np.full((80, 60, 3), 255, dtype=np.uint8)
    arr[:4] = 0
    arr[-4:] = 0
    return Image.fromarray(arr)


def test_shape_dtype_and_scaling() -> None:
    x = preprocess_image(Image.new("RGB", (60, 80), (255, 127, 0)))
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 112, 112], [(255 - 127) / 128, 0.0, -127 / 128], atol=1e-6)
    assert x.min() >= -1.0 and x.max() <= 1.0


def test_pad_keeps_the_whole_product_and_crop_cuts_it() -> None:
    padded = preprocess_image(portrait_with_stripes())
    cropped = preprocess_image(portrait_with_stripes(), PreprocessConfig(fit="crop"))
    # the black stripes (value about -1) survive padding at the top and bottom rows of the output
    assert padded[:, :12, 112].min() < -0.5 and padded[:, -12:, 112].min() < -0.5
    assert cropped.min() > 0.9  # the crop removed both stripes: only white is left


def test_padding_uses_the_border_colour() -> None:
    grey = Image.new("RGB", (30, 60), (200, 200, 200))
    assert border_colour(grey) == (200, 200, 200)
    x = preprocess_image(grey)
    np.testing.assert_allclose(x[:, 112, 2], (200 - 127) / 128, atol=1e-6)  # padded left edge
    white_fill = preprocess_image(grey, PreprocessConfig(fill=(255, 255, 255)))
    np.testing.assert_allclose(white_fill[:, 112, 2], (255 - 127) / 128, atol=1e-6)


def test_other_modes_are_converted() -> None:
    grey = Image.new("L", (224, 224), 0)
    np.testing.assert_allclose(preprocess_image(grey), -127 / 128)


def test_batch_and_paths(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    Image.new("RGB", (60, 80), (10, 200, 30)).save(path, quality=95)
    batch = preprocess_batch([path, Image.open(path)])
    assert batch.shape == (2, 3, 224, 224)
    np.testing.assert_allclose(batch[0], batch[1])
    np.testing.assert_allclose(batch[0], load_and_preprocess(str(path)))


def test_bad_file_raises_image_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageError):
        load_and_preprocess(bad)


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ConfigError):
        PreprocessConfig(fit="stretch")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        PreprocessConfig(std=0)
    assert PreprocessConfig().fingerprint() == PreprocessConfig().fingerprint()
    assert PreprocessConfig(fit="crop").fingerprint() != PreprocessConfig().fingerprint()
