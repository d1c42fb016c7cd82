"""Reduced-precision and ONNX encoders against their fp32 / eager twins on real weights and images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from models_helpers import have, needs_efficientnet, needs_minilm
from PIL import Image

from samestyle.models import IMAGE_ENCODERS, TEXT_ENCODERS, PreprocessConfig, preprocess_image
from samestyle.models.quantize import cpu_bf16_capabilities

needs_openvino = pytest.mark.skipif(not have("openvino"), reason="openvino not installed (make install)")
TITLES = ["Nike Men Black Running Shoes", "red floral cotton dress", "Titan women gold watch", "jeans", ""]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


@needs_minilm
@pytest.mark.real
def test_minilm_onnx_fp32_equals_eager(minilm: Any) -> None:
    enc = TEXT_ENCODERS.build("minilm-onnx", num_threads=1)
    assert enc.name == "all-minilm-l6-v2/onnx/v1" and enc.dim == 384
    np.testing.assert_allclose(enc.encode_texts(TITLES), minilm.encode_texts(TITLES), atol=1e-5)


@needs_minilm
@pytest.mark.real
def test_minilm_int8_stays_close(minilm: Any) -> None:
    enc = TEXT_ENCODERS.build("minilm-onnx-int8", num_threads=1)
    assert enc.name == "all-minilm-l6-v2/onnx-int8/v1"  # its own feature-cache key
    assert _cos(enc.encode_texts(TITLES), minilm.encode_texts(TITLES)).min() > 0.97


@needs_minilm
@needs_openvino
@pytest.mark.real
def test_minilm_bf16_stays_close(minilm: Any) -> None:
    enc = TEXT_ENCODERS.build("minilm-bf16", num_threads=1)
    assert enc.name == "all-minilm-l6-v2/ov-bf16/v1"
    # not pinned: two single-thread processes (Ray actors) must not share one core
    assert enc._compiled.get_property("ENABLE_CPU_PINNING") is False
    assert _cos(enc.encode_texts(TITLES), minilm.encode_texts(TITLES)).min() > 0.995


@needs_efficientnet
@needs_openvino
@pytest.mark.real
def test_efficientnet_bf16_stays_close(onnx_encoder: Any, myntra_images: list[Path]) -> None:
    enc = IMAGE_ENCODERS.build("efficientnet-lite0-bf16", num_threads=1)
    assert enc.name == "efficientnet-lite0/ov-bf16/v1" and enc.name != onnx_encoder.name
    got, want = enc.encode_images(myntra_images[:16]), onnx_encoder.encode_images(myntra_images[:16])
    assert _cos(got, want).min() > 0.98
    assert set(cpu_bf16_capabilities()) >= {"amx_bf16", "avx512_vnni"}


@pytest.mark.parametrize(
    "cfg", [PreprocessConfig(), PreprocessConfig(mean=123.7, std=58.4, resample="bilinear")]
)
def test_fast_normalisation_equals_the_plain_formula(cfg: PreprocessConfig) -> None:
    """The one-pass uint8 -> float32 CHW path gives the same floats as (float32(x) - mean) / std on HWC."""
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 60, 3), dtype=np.uint8))
    got = preprocess_image(img, cfg)
    from samestyle.models.preprocess import _square

    sq = _square(img, cfg).resize((cfg.size, cfg.size), Image.Resampling[cfg.resample.upper()])
    want = ((np.asarray(sq, dtype=np.float32) - cfg.mean) / cfg.std).transpose(2, 0, 1)
    assert got.flags["C_CONTIGUOUS"] and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
