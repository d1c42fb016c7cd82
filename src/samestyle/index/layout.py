"""On-disk layout of a ``ProductIndex`` folder: generations, the manifest commit point, hard links.

Layout::

    <path>/manifest.json                    the commit point: names the live generation
    <path>/gen-000003/metadata.parquet      products (key, id, title, category, attributes, ...)
    <path>/gen-000003/spaces/<name>/...     one saved VectorIndex per space

A save writes ``.gen-N.partial``, renames it to ``gen-N``, then atomically replaces ``manifest.json``
(:func:`commit`); older generations are deleted only after that, and not while a reader loads one
(readers hold a shared ``flock`` on the folder while loading, see :mod:`samestyle.index.locking`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from samestyle.errors import ArtifactError
from samestyle.fsio import read_json, write_json
from samestyle.index.locking import folder_lock

MANIFEST = "manifest.json"
SPACES = "spaces"
FORMAT_VERSION = 1
KIND = "samestyle-product-index"
_GENERATION = re.compile(r"^\.?gen-(\d+)(\.partial)?$")


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_manifest(path: Path) -> dict[str, Any]:
    """The checked manifest of the index at ``path``; :class:`ArtifactError` says what is wrong."""
    if not path.is_dir():
        raise ArtifactError(f"{path}: no index here; build one with 'samestyle index'")
    if not (path / MANIFEST).exists():
        if any(_GENERATION.match(p.name) for p in path.iterdir()):
            raise ArtifactError(f"{path}: incomplete index (no {MANIFEST}: its first save never finished)")
        raise ArtifactError(f"{path}: not a samestyle index (no {MANIFEST}); build one: 'samestyle index'")
    try:
        manifest: dict[str, Any] = read_json(path / MANIFEST)
    except ValueError as exc:
        raise ArtifactError(f"{path / MANIFEST}: not valid JSON ({exc}); rebuild the index") from None
    if manifest.get("kind") != KIND:
        raise ArtifactError(f"{path}: {MANIFEST} is not a samestyle product index manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: index format {manifest.get('format_version')!r}, this samestyle reads "
            f"{FORMAT_VERSION}; rebuild it with 'samestyle index'"
        )
    if not (path / str(manifest.get("generation"))).is_dir():
        raise ArtifactError(f"{path}: incomplete index ({manifest.get('generation')} is missing); rebuild it")
    return manifest


def new_generation(root: Path) -> tuple[str, Path]:
    """Name of the next generation and its (emptied) partial folder."""
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := _GENERATION.match(p.name))]
    name = f"gen-{max(numbers, default=0) + 1:06d}"
    partial = root / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    return name, partial


def commit(root: Path, partial: Path, name: str, manifest: dict[str, Any]) -> None:
    """Publish a fully written generation: rename it, replace the manifest, delete the others."""
    os.rename(partial, root / name)
    fsync_dir(root)
    write_json(root / MANIFEST, manifest)  # the commit point
    remove_old_generations(root, keep=name)


def remove_old_generations(root: Path, keep: str) -> bool:
    """Delete every generation but ``keep``, unless a reader is loading one (it holds the folder's shared
    lock): then nothing is deleted now, and the next save tries again. Returns whether it deleted."""
    with folder_lock(root, shared=False, wait=False) as free:
        if not free:
            return False
        for p in root.iterdir():
            if _GENERATION.match(p.name) and p.name != keep:
                shutil.rmtree(p, ignore_errors=True)
    return True


def link_files(src: Path, dest: Path, names: Sequence[str] | None = None) -> bool:
    """Hard-link the files of ``src`` (or just ``names``) into ``dest``; False if that is impossible."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
        files = [src / n for n in names] if names is not None else [p for p in src.iterdir() if p.is_file()]
        if not files or not all(f.is_file() for f in files):
            return False
        for f in files:
            os.link(f, dest / f.name)
    except OSError:
        return False
    return True
