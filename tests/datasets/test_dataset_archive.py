"""Archive extraction: safe, atomic, idempotent; clear errors for missing or damaged archives."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from dataset_fakes import make_tar

from samestyle.datasets.archive import (
    MARKER_FILE,
    dataset_folder,
    extract_archive,
    find_archive,
    is_extracted,
)
from samestyle.errors import DatasetError


def _leftovers(base: Path) -> list[str]:
    return [p.name for p in base.iterdir() if p.name.endswith((".tmp", ".old"))] if base.exists() else []


def test_extracts_once_and_reuses(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", {"top/x.txt": b"x", "top/sub/y.txt": b"y"})
    dest = extract_archive(archive, "a", cache=tmp_path / "cache")
    assert dest == tmp_path / "cache" / "datasets" / "a"
    assert (dest / "top/x.txt").read_bytes() == b"x" and (dest / "top/sub/y.txt").read_bytes() == b"y"
    assert (dest / MARKER_FILE).is_file() and is_extracted(dest, archive)
    (dest / "sentinel").write_text("kept")  # a reused folder is not touched
    assert extract_archive(archive, "a", cache=tmp_path / "cache") == dest
    assert (dest / "sentinel").exists()
    assert _leftovers(dest.parent) == []


def test_partial_extraction_without_marker_is_redone(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", {"x.txt": b"x"})
    dest = tmp_path / "cache" / "datasets" / "a"
    dest.mkdir(parents=True)
    (dest / "half-written.bin").write_bytes(b"\0" * 10)  # an interrupted earlier run, no marker
    extract_archive(archive, "a", cache=tmp_path / "cache")
    assert (dest / "x.txt").read_bytes() == b"x"
    assert not (dest / "half-written.bin").exists()
    assert _leftovers(dest.parent) == []


def test_changed_archive_is_extracted_again(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", {"x.txt": b"old"})
    dest = extract_archive(archive, "a", cache=tmp_path / "cache")
    make_tar(archive, {"x.txt": b"newer content"})
    os.utime(archive, ns=(1, 1))  # a different size and mtime: the marker no longer matches
    assert not is_extracted(dest, archive)
    extract_archive(archive, "a", cache=tmp_path / "cache")
    assert (dest / "x.txt").read_bytes() == b"newer content"


def _evil_tar(path: Path, name: str, link: str | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        ok = tarfile.TarInfo("fine.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        info = tarfile.TarInfo(name)
        if link is not None:
            info.type, info.linkname = tarfile.SYMTYPE, link
            tf.addfile(info)
        else:
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
    return path


@pytest.mark.parametrize(
    ("member", "link", "expected"),
    [
        ("../escape.txt", None, "'..'"),
        ("sub/../../escape.txt", None, "'..'"),
        ("/tmp/abs-escape.txt", None, "absolute"),
        ("link", "../../outside", "unsafe member"),
    ],
)
def test_unsafe_members_are_refused(tmp_path: Path, member: str, link: str | None, expected: str) -> None:
    archive = _evil_tar(tmp_path / "evil.tar.gz", member, link)
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(DatasetError, match=expected) as err:
        extract_archive(archive, "evil", cache=cache)
    assert "evil.tar.gz" in str(err.value)
    assert not (cache / "datasets" / "evil").exists()  # nothing half-extracted is left as the target
    assert _leftovers(cache / "datasets") == []
    assert not (tmp_path / "deep" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()


def test_checksum_mismatch_is_an_error(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", {"x.txt": b"x"})
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  a.tar.gz\n")
    with pytest.raises(DatasetError, match="SHA-256"):
        extract_archive(archive, "a", cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / "datasets" / "a").exists()


def test_truncated_archive_is_an_error(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", {f"f{i}.bin": os.urandom(5000) for i in range(5)})
    archive.write_bytes(archive.read_bytes()[:4000])
    with pytest.raises(DatasetError, match="cannot unpack"):
        extract_archive(archive, "a", cache=tmp_path / "cache")


def test_missing_archive_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        find_archive("myntra_styles_full.csv.gz", tmp_path)
    msg = str(err.value)
    assert "myntra_styles_full.csv.gz" in msg and "$SAMESTYLE_DATA" in msg and "--data-dir" in msg


def test_data_dir_defaults_to_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tar(tmp_path / "k.tar.gz", {"x.txt": b"x"})
    monkeypatch.setenv("SAMESTYLE_DATA", str(tmp_path))
    monkeypatch.setenv("SAMESTYLE_CACHE", str(tmp_path / "cache"))
    assert find_archive("k.tar.gz") == tmp_path / "k.tar.gz"
    assert dataset_folder("k.tar.gz", "k") == tmp_path / "cache" / "datasets" / "k"


def test_bad_folder_name_is_refused(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", {"x.txt": b"x"})
    with pytest.raises(DatasetError, match="folder name"):
        extract_archive(archive, "../up", cache=tmp_path / "cache")


def test_stale_temp_folders_are_cleaned(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", {"x.txt": b"x"})
    stale = tmp_path / "cache" / "datasets" / ".a.killed.tmp"
    stale.mkdir(parents=True)
    dest = extract_archive(archive, "a", cache=tmp_path / "cache")
    assert not stale.exists() and (dest / "x.txt").exists()
