"""all-MiniLM-L6-v2 exported to ONNX (mean pooling inside the graph), run in fp32, INT8 or BF16.

The export wraps the transformers BERT model with the same masked mean pooling as
:class:`~samestyle.models.text.MiniLMTextEncoder` (the eager twin) and writes
``cache_dir()/onnx/minilm-l6-v2-v1.onnx`` (opset 17, dynamic batch and sequence) with a sidecar, once.
Registered encoders (each with its own cache key, so features of different precisions never mix):

* ``minilm-onnx``: ONNX Runtime fp32 (``all-minilm-l6-v2/onnx/v1``);
* ``minilm-onnx-int8``: ONNX Runtime, dynamic INT8 (``all-minilm-l6-v2/onnx-int8/v1``);
* ``minilm-bf16``: OpenVINO with BF16 inference (AMX on CPUs that have it) (``all-minilm-l6-v2/ov-bf16/v1``).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.errors import ConfigError, DependencyError
from samestyle.fsio import atomic_path, file_lock, file_sha256, read_json, write_json
from samestyle.models.base import TEXT_ENCODERS, TextEncoder
from samestyle.models.image import available_cores
from samestyle.models.quantize import ensure_int8_dynamic, openvino_compile
from samestyle.models.text import _configured_max_length, _quiet_transformers, minilm_path
from samestyle.paths import cache_dir

log = logging.getLogger(__name__)

ONNX_FILE = "minilm-l6-v2-v1.onnx"
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PRECISIONS = {"fp32": "onnx", "int8": "onnx-int8", "bf16": "ov-bf16"}


def minilm_onnx_path(root: Path | None = None) -> Path:
    return (root or cache_dir()) / "onnx" / ONNX_FILE


def _valid(path: Path) -> bool:
    side = path.with_name(path.name + ".json")
    try:
        meta = read_json(side)
        return bool(path.stat().st_size == meta["bytes"] and file_sha256(path) == meta["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _export(path: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = str(minilm_path())
    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True).float().eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            tokens = self.net(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state  # [B, T, H]
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)  # [B, T, 1]
            return (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # [B, H]

    sample = tokenizer(["a red cotton dress", "shoes"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS} | {"pooled": {0: "batch"}}
    with atomic_path(path, suffix=".onnx") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            MeanPooled(model).eval(),
            tuple(sample[name] for name in INPUTS),
            str(tmp),
            input_names=list(INPUTS),
            output_names=["pooled"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    write_json(
        path.with_name(path.name + ".json"), {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
    )
    log.info("exported MiniLM to %s", path)


def ensure_minilm_onnx(path: Path | None = None) -> Path:
    """The exported fp32 graph, exported first when missing or not matching its sidecar."""
    path = path or minilm_onnx_path()
    if _valid(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".lock")):
        if not _valid(path):
            _export(path)
    return path


class OnnxMiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (384-d) on ONNX Runtime (fp32 / int8) or OpenVINO (bf16).

    Args:
        precision: ``fp32``, ``int8`` or ``bf16``.
        num_threads: inference threads; all available cores when None.
        max_length: truncation in word pieces (256 by default, as the eager encoder).
    """

    dim = 384

    def __init__(
        self, precision: str = "fp32", num_threads: int | None = None, max_length: int | None = None
    ) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"MiniLM precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise DependencyError(f"the MiniLM tokenizer needs transformers ({exc})") from None
        self.precision = precision
        self.name = f"all-minilm-l6-v2/{PRECISIONS[precision]}/v1"
        self.num_threads = num_threads or available_cores()
        folder = minilm_path()
        self.max_length = max_length or _configured_max_length(folder)
        with _quiet_transformers():
            self._tokenizer: Any = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        path = ensure_minilm_onnx()
        self._session: Any = None
        self._compiled: Any = None
        if precision == "bf16":
            self._compiled = openvino_compile(path, "bf16", self.num_threads)
            self._request = self._compiled.create_infer_request()
            self._output = self._compiled.output("pooled")
        else:
            import onnxruntime as ort

            if precision == "int8":
                path = ensure_int8_dynamic(path)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.num_threads
            opts.inter_op_num_threads = 1
            self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def _encode_text_batch(self, texts: list[str]) -> np.ndarray:
        enc = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        feeds = {name: np.ascontiguousarray(enc[name], dtype=np.int64) for name in INPUTS}
        if self._session is not None:
            return np.asarray(self._session.run(["pooled"], feeds)[0], np.float32)
        return np.asarray(self._request.infer(feeds)[self._output], np.float32).copy()


@TEXT_ENCODERS.register("minilm-onnx")
def _build_fp32(**kwargs: Any) -> TextEncoder:
    return OnnxMiniLMTextEncoder("fp32", **kwargs)


@TEXT_ENCODERS.register("minilm-onnx-int8")
def _build_int8(**kwargs: Any) -> TextEncoder:
    return OnnxMiniLMTextEncoder("int8", **kwargs)


@TEXT_ENCODERS.register("minilm-bf16")
def _build_bf16(**kwargs: Any) -> TextEncoder:
    return OnnxMiniLMTextEncoder("bf16", **kwargs)


__all__ = ["OnnxMiniLMTextEncoder", "ensure_minilm_onnx", "minilm_onnx_path"]
