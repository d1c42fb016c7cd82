"""Input checks shared by the evaluation protocols."""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def as_matrix(x: ArrayLike, name: str) -> NDArray[np.floating[Any]]:
    """``x`` as a 2-D floating array (other dtypes become float64); ValueError if it is not 2-D."""
    a = np.asarray(x)  # float32 stays float32: no full-size copy of a large gallery
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [N, D] array, got shape {a.shape}")
    return a


def check_len(n: int, other: Sized, name: str) -> None:
    """ValueError unless ``other`` (named ``name`` in the message) has ``n`` entries."""
    if len(other) != n:
        raise ValueError(f"{name} has {len(other)} entries, expected {n}")


__all__ = ["as_matrix", "check_len"]
