"""Reduced-precision runtimes for the exported backbones: ONNX Runtime INT8 and OpenVINO BF16.

* INT8: :func:`ensure_int8_dynamic` writes a dynamically quantized copy of an ONNX graph (weights int8
  per channel, activations quantized on the fly). ONNX Runtime runs its ``MatMulInteger`` /
  ``DynamicQuantizeMatMul`` kernels on MLAS's u8s8 GEMM, which dispatches to AVX-512 VNNI (and AMX-INT8
  where the CPU and kernel allow it). Good for transformers (MiniLM: ~2.2x over fp32 at cosine >= 0.98).
  Static INT8 of EfficientNet-Lite0 was measured and rejected: slower than fp32 on ONNX Runtime
  (depthwise convolutions have no fast int8 kernel) and cosine to fp32 as low as 0.68-0.95.
* BF16: :func:`openvino_compile` compiles the same ONNX graph with OpenVINO's CPU plugin and
  ``INFERENCE_PRECISION_HINT=bf16``; oneDNN then runs convolutions and matmuls on AMX-BF16 tiles
  (``avx512_core_amx`` kernels) on CPUs that have them, else AVX-512-BF16, else it falls back to fp32.

Quantized files live next to their source with a JSON sidecar (size + sha256 of the source and the
output), so a changed source is re-quantized. Imports of onnxruntime.quantization and openvino are lazy.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from samestyle.errors import DependencyError
from samestyle.fsio import atomic_path, file_lock, file_sha256, read_json, write_json

log = logging.getLogger(__name__)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _derived_is_valid(path: Path, source: Path) -> bool:
    side = _sidecar(path)
    if not path.exists() or not side.exists():
        return False
    try:
        meta = read_json(side)
        return bool(
            meta["source_sha256"] == file_sha256(source)
            and path.stat().st_size == meta["bytes"]
            and file_sha256(path) == meta["sha256"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def ensure_int8_dynamic(source: Path, target: Path | None = None) -> Path:
    """A dynamically INT8-quantized copy of ``source`` (``<stem>-int8.onnx``), made once and checked."""
    target = target or source.with_name(source.stem + "-int8.onnx")
    if _derived_is_valid(target, source):
        return target
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise DependencyError(f"INT8 quantization needs onnxruntime ({exc})") from None
    with file_lock(target.with_name(target.name + ".lock")):
        if not _derived_is_valid(target, source):
            with atomic_path(target, suffix=".onnx") as tmp:
                logging.getLogger("root").disabled = True  # its "consider pre-processing" warning
                try:
                    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
                finally:
                    logging.getLogger("root").disabled = False
            meta = {
                "bytes": target.stat().st_size,
                "sha256": file_sha256(target),
                "source_sha256": file_sha256(source),
            }
            write_json(_sidecar(target), meta)
            log.info("quantized %s -> %s (%d bytes)", source.name, target, meta["bytes"])
    return target


def openvino_compile(path: Path, precision: str, num_threads: int) -> Any:
    """An OpenVINO ``CompiledModel`` of the ONNX graph at ``path`` on CPU in ``precision`` (bf16/f32).

    Raises:
        DependencyError: openvino is not installed.
    """
    try:
        import openvino as ov
    except ImportError as exc:
        raise DependencyError(
            f"the bf16 encoders need OpenVINO ({exc}): pip install -e '.[models]'"
        ) from None
    core = ov.Core()
    model = core.read_model(str(path))
    config = {
        "INFERENCE_PRECISION_HINT": precision,
        "INFERENCE_NUM_THREADS": num_threads,
        "PERFORMANCE_HINT": "LATENCY",
        # OpenVINO pins its threads to cores by default: two single-thread processes (Ray actors, workers)
        # then share core 0 while core 1 idles (measured: 2 x 95 products/s instead of 2 x 165)
        "ENABLE_CPU_PINNING": False,
    }
    return core.compile_model(model, "CPU", config)


def openvino_kernels(compiled: Any) -> dict[str, int]:
    """How many layers of a compiled OpenVINO model run each oneDNN kernel (``brgemm_avx512_amx_bf16``,
    ``brgconv_avx512_amx_1x1_bf16``, ...): the evidence of which layers use AMX. Convolutions and
    matmuls only (call after one inference so shape-dependent kernels are chosen)."""
    counts: dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer, kernel = info["layerType"].astype(str), info["primitiveType"].astype(str)
        if layer in ("Convolution", "FullyConnected", "MatMul"):
            key = f"{layer}:{kernel}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def cpu_bf16_capabilities() -> dict[str, bool]:
    """Which reduced-precision matrix units this CPU reports (from /proc/cpuinfo on Linux)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    return {f: f in flags for f in ("avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")}


__all__ = ["cpu_bf16_capabilities", "ensure_int8_dynamic", "openvino_compile", "openvino_kernels"]
