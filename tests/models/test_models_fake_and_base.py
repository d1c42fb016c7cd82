"""Fake encoders, the encoder base classes (batching, ordering, checks) and the registries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samestyle.errors import UnknownComponentError
from samestyle.models import (
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    FakeImageEncoder,
    FakeTextEncoder,
    ImageEncoder,
    TextEncoder,
    l2_normalize,
)

TEXTS = ["Red cotton dress", "red dress", "Laptop charger 65W", "", "blue denim jeans for men", "RED DRESS!"]


def test_fake_text_is_deterministic_and_normalised() -> None:
    a = FakeTextEncoder(dim=32).encode_texts(TEXTS)
    b = FakeTextEncoder(dim=32).encode_texts(TEXTS)
    assert a.dtype == np.float32 and a.shape == (len(TEXTS), 32)
    np.testing.assert_array_equal(a, b)
    norms = np.linalg.norm(a, axis=1)
    np.testing.assert_allclose(norms[[0, 1, 2, 4, 5]], 1.0, rtol=1e-6)
    assert norms[3] == 0.0  # empty text: zero vector, not NaN


def test_fake_text_is_stable_across_processes() -> None:
    code = (
        "import json; from samestyle.models import FakeTextEncoder as F; "
        "print(json.dumps(F(8).encode_texts(['red dress']).tolist()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    np.testing.assert_allclose(
        json.loads(out)[0], FakeTextEncoder(8).encode_texts(["red dress"])[0], rtol=1e-6
    )


def test_fake_text_shared_words_are_similar() -> None:
    v = FakeTextEncoder(dim=64).encode_texts(TEXTS)
    assert v[1] @ v[5] == pytest.approx(1.0)  # case and punctuation ignored
    assert v[0] @ v[1] > v[0] @ v[2]


def test_fake_image_is_deterministic_and_colour_aware(colour_images: list[Image.Image]) -> None:
    a = FakeImageEncoder(dim=16).encode_images(colour_images)
    b = FakeImageEncoder(dim=16).encode_images(colour_images)
    assert a.dtype == np.float32 and a.shape == (4, 16)
    np.testing.assert_array_equal(a, b)
    n = l2_normalize(a)
    assert n[0] @ n[1] > n[0] @ n[2]  # red is closer to dark red than to blue


def test_l2_normalize_handles_zero_rows() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(l2_normalize(x), [[0.6, 0.8], [0.0, 0.0]])
    assert l2_normalize(x).dtype == np.float32


class CountingText(FakeTextEncoder):
    def __init__(self) -> None:
        super().__init__(dim=16)
        self.batches: list[list[str]] = []

    def _encode_text_batch(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        return super()._encode_text_batch(texts)


def test_text_batching_equals_one_at_a_time_and_keeps_order() -> None:
    enc = CountingText()
    batched = enc.encode_texts(TEXTS, batch_size=4)
    single = np.concatenate([enc.encode_texts([t], batch_size=1) for t in TEXTS])
    np.testing.assert_allclose(batched, single, atol=1e-7)
    first = enc.batches[0]
    assert [len(t) for t in first] == sorted(len(t) for t in TEXTS)[:4]  # sorted by length


def test_image_batching_equals_one_at_a_time(colour_images: list[Image.Image]) -> None:
    enc = FakeImageEncoder(dim=8)
    batched = enc.encode_images(colour_images, batch_size=3)
    single = np.concatenate([enc.encode_images([im], batch_size=1) for im in colour_images])
    np.testing.assert_allclose(batched, single, atol=1e-6)


def test_encode_images_accepts_paths(tmp_path: Path, colour_images: list[Image.Image]) -> None:
    path = tmp_path / "red.png"
    colour_images[0].save(path)
    enc = FakeImageEncoder()
    np.testing.assert_allclose(enc.encode_images([path, str(path)]), enc.encode_images(colour_images[:1] * 2))


def test_empty_inputs_give_empty_arrays() -> None:
    assert FakeImageEncoder(dim=5).encode_images([]).shape == (0, 5)
    assert FakeTextEncoder(dim=7).encode_texts([]).shape == (0, 7)


def test_a_single_string_is_refused() -> None:
    with pytest.raises(TypeError):
        FakeTextEncoder().encode_texts("red dress")
    with pytest.raises(TypeError):
        FakeImageEncoder().encode_images("img.jpg")


def test_wrong_output_shape_names_the_encoder() -> None:
    class Broken(TextEncoder):
        name, dim = "broken/v0", 4

        def _encode_text_batch(self, texts: list[str]) -> np.ndarray:
            return np.zeros((len(texts), 3))

    with pytest.raises(ValueError, match="broken/v0"):
        Broken().encode_texts(["a"])


def test_one_method_is_enough_for_a_new_image_encoder(colour_images: list[Image.Image]) -> None:
    class Mean(ImageEncoder):
        name, dim = "mean-colour/v0", 3

        def _encode_image_batch(self, pixels: np.ndarray) -> np.ndarray:
            return pixels.mean(axis=(2, 3))

    out = Mean().encode_images(colour_images)
    assert out.shape == (4, 3) and out[3] == pytest.approx([1.0, 1.0, 1.0], abs=1e-2)  # white -> ~+1


def test_registries_know_the_names() -> None:
    assert IMAGE_ENCODERS.names() == [
        "efficientnet-lite0",
        "efficientnet-lite0-bf16",
        "efficientnet-lite0-torch",
        "fake",
    ]
    assert TEXT_ENCODERS.names() == ["fake", "minilm", "minilm-bf16", "minilm-onnx", "minilm-onnx-int8"]
    assert isinstance(IMAGE_ENCODERS.build("fake", dim=4), FakeImageEncoder)
    assert TEXT_ENCODERS.build("fake").dim == 32
    with pytest.raises(UnknownComponentError, match="minilm"):
        TEXT_ENCODERS.build("minilmm")


def test_importing_models_stays_light() -> None:
    code = (
        "import sys, samestyle.models, samestyle.features; "
        "print([m for m in ('torch', 'onnxruntime', 'transformers', 'onnx') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
