"""Fixtures for the feature tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from features_helpers import make_catalog

from samestyle.catalog.store import Catalog


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return make_catalog(tmp_path / "shop")
