"""Backbone encoders (ONNX / torch adapters) and deterministic fakes behind two small plug points.

Registered names (``IMAGE_ENCODERS.build(name, **kwargs)``, ``TEXT_ENCODERS.build(...)``):

* image: ``"efficientnet-lite0"`` (ONNX Runtime, default), ``"efficientnet-lite0-torch"`` (eager torch),
  ``"efficientnet-lite0-bf16"`` (OpenVINO BF16), ``"fake"``;
* text: ``"minilm"`` (all-MiniLM-L6-v2 via transformers), ``"minilm-onnx"`` / ``"minilm-onnx-int8"``
  (ONNX Runtime fp32 / INT8), ``"minilm-bf16"`` (OpenVINO BF16), ``"fake"``.

Importing this package imports no torch, transformers or onnxruntime; they load when an encoder is built.
"""

from samestyle.models import fake, image, text, text_onnx  # noqa: F401  (registers the encoders)
from samestyle.models.base import (
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    Encoder,
    ImageEncoder,
    TextEncoder,
    l2_normalize,
)
from samestyle.models.fake import FakeImageEncoder, FakeTextEncoder
from samestyle.models.image import OnnxEfficientNetLite0, OpenVinoEfficientNetLite0, TorchEfficientNetLite0
from samestyle.models.preprocess import PreprocessConfig, preprocess_image
from samestyle.models.text import MiniLMTextEncoder
from samestyle.models.text_onnx import OnnxMiniLMTextEncoder

__all__ = [
    "IMAGE_ENCODERS",
    "TEXT_ENCODERS",
    "Encoder",
    "FakeImageEncoder",
    "FakeTextEncoder",
    "ImageEncoder",
    "MiniLMTextEncoder",
    "OnnxEfficientNetLite0",
    "OnnxMiniLMTextEncoder",
    "OpenVinoEfficientNetLite0",
    "PreprocessConfig",
    "TextEncoder",
    "TorchEfficientNetLite0",
    "l2_normalize",
    "preprocess_image",
]
