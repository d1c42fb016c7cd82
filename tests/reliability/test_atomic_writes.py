"""The atomic writer itself: a failed write leaves the old file and no temp file; a finished one has the
mode any new file gets (the umask), not mkstemp's owner-only 0o600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from samestyle.fsio import atomic_open, write_json, write_text


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write('{"v": 2, "half')
        raise RuntimeError("killed mid-write")
    assert target.read_text(encoding="utf-8").strip() == '{\n  "v": 1\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_written_files_get_the_umask_mode(tmp_path: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    write_text(tmp_path / "t.txt", "x")
    assert stat.S_IMODE((tmp_path / "t.txt").stat().st_mode) == 0o666 & ~mask


def test_a_writer_that_replaces_the_temp_file_still_gets_the_umask_mode(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    from samestyle.fsio import atomic_path

    mask = os.umask(0)
    os.umask(mask)
    with atomic_path(tmp_path / "w.safetensors") as tmp:
        save_file({"x": np.zeros(3, np.float32)}, str(tmp))  # writes a new file over the temp one
    assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == 0o666 & ~mask
