"""Fixtures for the dataset tests: tiny generated archives in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fakes import FakeData, build_fake_data


@pytest.fixture
def fake_data(tmp_path: Path) -> FakeData:
    """Every archive, tiny, in ``tmp_path/data``; an empty cache in ``tmp_path/cache``."""
    return build_fake_data(tmp_path)
