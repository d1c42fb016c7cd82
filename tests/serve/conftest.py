"""Fixtures: one generated site (catalogue + tiny joint model + index) per session, and app clients.

Without the 'serve' extra (fastapi, ...) the tests of this folder are not collected.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

if importlib.util.find_spec("fastapi") is None:  # pragma: no cover - the extra is part of `make install`
    collect_ignore_glob = ["test_*.py"]
else:
    from fastapi.testclient import TestClient
    from serve_fakes import FakeSite, build_joint_site, make_client

    from samestyle.catalog.store import read_catalog, write_catalog

    @pytest.fixture(scope="session")
    def site(tmp_path_factory: pytest.TempPathFactory) -> FakeSite:
        """Read-only: tests that write use :func:`writable_site`."""
        return build_joint_site(tmp_path_factory.mktemp("site"))

    @pytest.fixture
    def writable_site(site: FakeSite, tmp_path: Path) -> FakeSite:
        """A private copy of the site's catalogue, images and index."""
        root = tmp_path / "copy"
        for name in ("catalog", "images", "index-joint"):
            shutil.copytree(site.root / name, root / name, symlinks=True)
        catalog = read_catalog(root / "catalog")  # point the copy at its own image store
        write_catalog(root / "catalog", catalog.products, image_root=root / "images")
        return FakeSite(root, root / "catalog", site.emb, root / "index-joint", root / "images")

    @pytest.fixture
    def client(site: FakeSite, tmp_path: Path) -> Iterator[TestClient]:
        with make_client(site, events_path=tmp_path / "events.jsonl") as c:
            yield c

    @pytest.fixture
    def write_client(writable_site: FakeSite, tmp_path: Path) -> Iterator[TestClient]:
        with make_client(writable_site) as c:
            yield c
