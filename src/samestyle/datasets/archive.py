"""Find a public dataset archive and unpack it, safely and once, into the cache.

``extract_archive(archive, name)`` unpacks ``archive`` into ``cache_dir()/datasets/<name>/``:

- **Safe.** Every member goes through :func:`tarfile.data_filter` (no links out of the folder, no
  device files, no setuid bits) and, before that, a member whose name is absolute or contains a ``..``
  component is refused outright: the whole archive is rejected with a :class:`DatasetError`.
- **Atomic.** Members are written into a temp folder beside the target, a marker file is written last,
  and the temp folder is renamed onto the target. A crash leaves either the old folder or nothing.
- **Idempotent.** The marker records the archive's size and SHA-256 (from ``SHA256SUMS`` beside the
  archive; the archive is checked against it before unpacking) or, when it is not listed there, its size
  and modification time. A folder whose marker matches is reused; a folder without a marker (a partial
  extraction by some other tool or an older run) or with a stale one is extracted again.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from samestyle.errors import DatasetError
from samestyle.fsio import file_lock, file_sha256, read_json, write_json
from samestyle.paths import cache_dir, shared_data_dir

log = logging.getLogger(__name__)

MARKER_FILE = ".samestyle-extracted.json"
SUMS_FILE = "SHA256SUMS"
_CHUNK = 1 << 20


def data_dir_or_default(data_dir: str | os.PathLike[str] | None) -> Path:
    """``data_dir`` when given, else :func:`samestyle.paths.shared_data_dir` (honours ``$SAMESTYLE_DATA``)."""
    return Path(data_dir).expanduser().resolve() if data_dir is not None else shared_data_dir()


def find_archive(filename: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of ``filename`` in the data folder, or a :class:`DatasetError` saying how to point at it.

    Args:
        filename: the file's name, e.g. ``"myntra_styles_full.csv.gz"``.
        data_dir: the folder holding the public data; default ``$SAMESTYLE_DATA`` or ``../shared/data``.
    """
    folder = data_dir_or_default(data_dir)
    path = folder / filename
    if not path.is_file():
        raise DatasetError(
            f"{path}: dataset file '{filename}' not found in {folder}; "
            "set $SAMESTYLE_DATA to the folder holding the public data or pass --data-dir"
        )
    return path


def listed_sha256(archive: Path) -> str | None:
    """The SHA-256 that ``SHA256SUMS`` beside ``archive`` lists for it, or None."""
    sums = archive.parent / SUMS_FILE
    if not sums.is_file():
        return None
    for line in sums.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == archive.name:
            return parts[0].lower()
    return None


def archive_fingerprint(archive: Path) -> dict[str, Any]:
    """What the marker records: name, size and the listed SHA-256, or the mtime when none is listed."""
    st = archive.stat()
    sha = listed_sha256(archive)
    fp: dict[str, Any] = {"archive": archive.name, "size": st.st_size}
    if sha is not None:
        fp["sha256"] = sha
    else:
        fp["mtime_ns"] = st.st_mtime_ns
    return fp


def is_extracted(dest: Path, archive: Path) -> bool:
    """True when ``dest`` holds a complete extraction of this version of ``archive``."""
    marker = dest / MARKER_FILE
    if not marker.is_file():
        return False
    try:
        recorded = read_json(marker)
    except (OSError, ValueError):
        return False
    return bool(recorded == archive_fingerprint(archive))


def _check_member_name(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DatasetError(f"{archive}: refusing member with an absolute path '{name}'")
    if ".." in pure.parts:
        raise DatasetError(f"{archive}: refusing member with a '..' path component '{name}'")


def _unpack(archive: Path, into: Path, expected_sha: str | None) -> None:
    if expected_sha is not None:
        actual = file_sha256(archive)
        if actual != expected_sha:
            raise DatasetError(
                f"{archive}: SHA-256 {actual} does not match {expected_sha} in {SUMS_FILE}; "
                "the file is damaged or another version: fetch it again"
            )

    def member_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        _check_member_name(member, archive)
        return tarfile.data_filter(member, path)

    try:
        with tarfile.open(archive, mode="r:*") as tf:
            tf.extractall(into, filter=member_filter)
    except tarfile.FilterError as exc:
        raise DatasetError(f"{archive}: unsafe member refused ({exc})") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DatasetError(
            f"{archive}: cannot unpack ({type(exc).__name__}: {exc}); is it complete?"
        ) from None


def extract_archive(
    archive: str | os.PathLike[str], name: str, cache: str | os.PathLike[str] | None = None
) -> Path:
    """Unpack ``archive`` into ``<cache>/datasets/<name>/`` unless a complete copy is there; return it.

    Args:
        archive: a ``.tar``, ``.tar.gz`` (or other tarfile-readable) archive.
        name: the folder name under ``datasets/`` (one per archive).
        cache: cache root; default :func:`samestyle.paths.cache_dir` (``$SAMESTYLE_CACHE``).

    Raises:
        DatasetError: the archive is missing, unreadable, fails its checksum or holds an unsafe member.

    Example:
        >>> root = extract_archive(find_archive("grocery_trainval.tar.gz"), "grocery")  # doctest: +SKIP
    """
    archive = Path(archive)
    if not archive.is_file():
        raise DatasetError(f"{archive}: archive not found; set $SAMESTYLE_DATA or pass --data-dir")
    if not name or "/" in name or name in (".", ".."):
        raise DatasetError(f"invalid dataset folder name {name!r}")
    base = (Path(cache) if cache is not None else cache_dir()) / "datasets"
    dest = base / name
    if is_extracted(dest, archive):
        return dest
    base.mkdir(parents=True, exist_ok=True)
    with file_lock(base / f".{name}.lock"):
        if is_extracted(dest, archive):  # another process finished while we waited
            return dest
        for stale in base.glob(f".{name}.*.tmp"):  # left by a run that was killed (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        fingerprint = archive_fingerprint(archive)
        log.info("extracting %s into %s", archive, dest)
        tmp = Path(tempfile.mkdtemp(dir=base, prefix=f".{name}.", suffix=".tmp"))
        try:
            _unpack(archive, tmp, fingerprint.get("sha256"))
            write_json(tmp / MARKER_FILE, fingerprint)
            tmp.chmod(0o755)  # mkdtemp makes it owner-only
            if dest.exists():
                old = Path(tempfile.mkdtemp(dir=base, prefix=f".{name}.", suffix=".old"))
                os.replace(dest, old / name)
                os.replace(tmp, dest)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest


def dataset_folder(
    filename: str,
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> Path:
    """:func:`find_archive` then :func:`extract_archive`: the unpacked folder of a named archive."""
    return extract_archive(find_archive(filename, data_dir), name, cache)


__all__ = [
    "MARKER_FILE",
    "archive_fingerprint",
    "data_dir_or_default",
    "dataset_folder",
    "extract_archive",
    "file_sha256",
    "find_archive",
    "is_extracted",
    "listed_sha256",
]
