"""Where samestyle looks for data and keeps its caches (all overridable by arguments or env vars)."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout this package lives in (src layout), or the current directory when installed."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists():
            return parent
    return Path.cwd()


def shared_data_dir() -> Path:
    """``$SAMESTYLE_DATA`` or ``../shared/data`` beside the checkout."""
    env = os.environ.get("SAMESTYLE_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return (project_root().parent / "shared" / "data").resolve()


def cache_dir() -> Path:
    """``$SAMESTYLE_CACHE`` or ``.cache/samestyle`` in the checkout (git-ignored)."""
    env = os.environ.get("SAMESTYLE_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    return project_root() / ".cache" / "samestyle"
