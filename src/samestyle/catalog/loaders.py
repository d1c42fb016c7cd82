"""Read catalogue files (CSV, TSV, JSONL, Parquet; ``.gz`` too) into raw rows, one format per function.

:func:`open_rows` returns a :class:`RowSource`: iterate it for ``(row_number, dict)`` pairs; rows that
cannot be parsed at all (broken CSV quoting, a JSONL line that is not a JSON object, bytes that are not
valid in the file's encoding) become fatal :class:`~samestyle.types.Reject` entries in
``source.rejects`` instead, so one bad row never costs the others. Row numbers are 1-based over data
records: for CSV/TSV the header is not counted (so row N is line N+1 when no field spans lines), for
JSONL the row number is the line number. Values are passed on untyped; the validator coerces them.
"""

from __future__ import annotations

import codecs
import gzip
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, cast

import pyarrow.parquet as pq

from samestyle.catalog.csvrows import (
    STREAM_ERRORS,
    Line,
    Lines,
    bad_byte,
    bad_bytes_reason,
    csv_rows,
    parse_header,
    stream_reason,
    text_stream,
)
from samestyle.errors import CatalogError
from samestyle.types import Reject

logger = logging.getLogger(__name__)

PARQUET_BATCH_ROWS = 4096


class Format(StrEnum):
    """Catalogue file formats."""

    CSV = "csv"
    TSV = "tsv"
    JSONL = "jsonl"
    PARQUET = "parquet"


_EXTENSIONS = {
    ".csv": Format.CSV,
    ".tsv": Format.TSV,
    ".tab": Format.TSV,
    ".jsonl": Format.JSONL,
    ".ndjson": Format.JSONL,
    ".parquet": Format.PARQUET,
    ".pq": Format.PARQUET,
}


def detect_format(path: str | Path, override: str | Format | None = None) -> Format:
    """The format named by ``override``, else the one the extension says (``.gz`` is looked through).

    Raises:
        CatalogError: the extension (or override) is not one of csv, tsv, jsonl/ndjson, parquet.
    """
    names = ", ".join(f.value for f in Format)
    if override is not None:
        try:
            return Format(str(override).lower().lstrip("."))
        except ValueError:
            raise CatalogError(f"{path}: unknown catalogue format '{override}' (known: {names})") from None
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise CatalogError(f"{path}: cannot tell the format from the extension; pass the format ({names})")
    return fmt


@dataclass
class RowSource:
    """The rows of one catalogue file. Iterate once; ``rejects`` and ``rows_seen`` fill as you go.
    The file closes when iteration ends; use ``with`` (or :meth:`close`) when you may stop early.

    Attributes:
        path: the file.
        format: its format.
        columns: header columns (CSV/TSV/Parquet); None for JSONL, whose keys vary by row.
        rejects: rows that could not be parsed (fatal) and file-level warnings (row None, not fatal).
        rows_seen: data records met so far, parsed or not.
    """

    path: Path
    format: Format
    columns: tuple[str, ...] | None
    _rows: Iterator[tuple[int, dict[str, Any]]] = field(repr=False)
    rejects: list[Reject] = field(default_factory=list)
    rows_seen: int = 0
    encoding: str = "utf-8"
    _handle: Any = field(default=None, repr=False)  # the open file (or ParquetFile), for close()

    @property
    def name(self) -> str:
        """How rejects and errors name this file."""
        return str(self.path)

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        return self._rows

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()

    def __enter__(self) -> RowSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reject(self, row: int | None, field_name: str | None, reason: str, fatal: bool = True) -> None:
        self.rejects.append(Reject(self.name, row, field_name, reason, fatal=fatal))


def _open_binary(path: Path) -> IO[bytes]:
    try:
        if path.suffix.lower() == ".gz":
            gz = gzip.GzipFile(path, "rb")  # returned open; the row iterator closes it
            try:
                gz.peek(1)  # surface "not a gzip file" (or one cut short) now, not mid-iteration
            except (OSError, EOFError) as exc:
                gz.close()
                raise CatalogError(f"{path}: cannot open catalogue file ({exc})") from None
            return cast(IO[bytes], gz)
        return open(path, "rb")
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such catalogue file; check the path") from None
    except IsADirectoryError:
        raise CatalogError(f"{path}: is a folder; pass the catalogue file inside it") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot open catalogue file ({exc.strerror or exc})") from None


def open_rows(
    path: str | Path,
    fmt: str | Format | None = None,
    encoding: str = "utf-8",
    delimiter: str | None = None,
) -> RowSource:
    """Open a catalogue file and read its header; the rows stream when the source is iterated.

    Args:
        path: the file (``.gz`` compressed text formats are read transparently).
        fmt: force a format instead of trusting the extension.
        encoding: text encoding of CSV/TSV/JSONL; rows with invalid bytes are rejected one by one. A
            UTF-8 byte-order mark is skipped; a UTF-16 one switches to UTF-16.
        delimiter: CSV field separator; default ``\\t`` for TSV, else guessed from the header
            (``,`` unless the header has none and has ``;`` or ``|``).

    Raises:
        CatalogError: the file does not exist, cannot be opened or is not of the stated format.
    """
    p = Path(path)
    kind = detect_format(p, fmt)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise CatalogError(f"{p}: unknown text encoding '{encoding}' (try utf-8, cp1252, latin-1)") from None
    if kind is Format.PARQUET:
        return _parquet_source(p)
    fh = _open_binary(p)
    if kind is Format.JSONL:
        source = RowSource(p, kind, None, iter(()), encoding=encoding, _handle=fh)
        source._rows = _jsonl_rows(fh, source)
        return source
    source = _csv_source(fh, p, kind, encoding, delimiter)
    source._handle = fh
    return source


def _guess_delimiter(header: str, kind: Format) -> str:
    if kind is Format.TSV:
        return "\t"
    if "," not in header:
        for candidate in ("\t", ";", "|"):
            if candidate in header:
                return candidate
    return ","


def _csv_source(fh: IO[bytes], path: Path, kind: Format, encoding: str, delimiter: str | None) -> RowSource:
    lines = Lines(text_stream(fh, encoding))
    source = RowSource(path, kind, (), iter(()), encoding=encoding)
    try:
        first = next(lines, "")
        empty = not first.strip() and next(lines, None) is None
    except STREAM_ERRORS as exc:
        fh.close()
        raise CatalogError(
            f"{path}: damaged before the end of the header ({exc}); re-create the file"
        ) from None
    if empty:
        fh.close()
        source.reject(None, None, "empty file: no header and no rows", fatal=False)
        logger.warning("%s: empty catalogue file", path)
        return source
    sep = delimiter or _guess_delimiter(first, kind)
    try:
        header = parse_header(lines.consumed[0], path, encoding, sep)
    except CatalogError:
        fh.close()
        raise
    source.columns = tuple(header)
    duplicates = sorted({h for h in header if header.count(h) > 1 and h})
    if duplicates:
        source.reject(None, None, f"duplicate header columns {duplicates}; the last of each is used", False)
    source._rows = csv_rows(fh, lines, source, header, sep)
    return source


def _jsonl_row(line: Line, encoding: str) -> dict[str, Any] | str:
    """The JSON object on one line, or the reason it is not one."""
    if line.bad_byte is not None:
        return bad_bytes_reason(line, encoding)
    try:
        value = json.loads(line.text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(value, dict):
        return f"not a JSON object (got {type(value).__name__})"
    return value


def _jsonl_rows(fh: IO[bytes], source: RowSource) -> Iterator[tuple[int, dict[str, Any]]]:
    with fh:
        text = text_stream(fh, source.encoding)
        number = 0
        while True:
            try:
                raw = text.readline()
            except STREAM_ERRORS as exc:  # a truncated .gz: keep the rows read, report the rest
                source.reject(number + 1, None, stream_reason(exc, number))
                break
            if not raw:
                break
            number += 1
            if not raw.strip():
                continue
            source.rows_seen += 1
            parsed = _jsonl_row(Line(raw, number, bad_byte(raw)), source.encoding)
            if isinstance(parsed, str):
                source.reject(number, None, parsed)
                continue
            yield number, parsed
    if source.rows_seen == 0:
        source.reject(None, None, "empty file: no JSON lines", fatal=False)
        logger.warning("%s: empty catalogue file", source.path)


def _parquet_source(path: Path) -> RowSource:
    if not path.exists():
        raise CatalogError(f"{path}: no such catalogue file; check the path")
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise CatalogError(f"{path}: cannot read as Parquet ({exc}); is it really a Parquet file?") from None
    source = RowSource(path, Format.PARQUET, tuple(pf.schema_arrow.names), iter(()), _handle=pf)
    source._rows = _parquet_rows(pf, source)
    return source


def _parquet_rows(pf: pq.ParquetFile, source: RowSource) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows group by group: a damaged row group becomes one fatal reject and the next group is read."""
    row = 0
    try:
        for group in range(pf.num_row_groups):
            size = pf.metadata.row_group(group).num_rows
            try:
                table = pf.read_row_group(group)
            except Exception as exc:  # pyarrow raises OSError, ArrowInvalid, ... for damaged data
                source.rows_seen += size
                reason = (
                    f"rows {row + 1}..{row + size}: unreadable Parquet row group {group} "
                    f"({type(exc).__name__}: {exc}); they are dropped, re-export the file"
                )
                source.reject(row + 1, None, reason)
                row += size
                continue
            for batch in table.to_batches(max_chunksize=PARQUET_BATCH_ROWS):
                for record in batch.to_pylist():
                    row += 1
                    source.rows_seen += 1
                    yield row, record
    finally:
        pf.close()
    if row == 0:
        source.reject(None, None, "no data rows", fatal=False)
        logger.warning("%s: Parquet file has no rows", source.path)


__all__ = ["Format", "RowSource", "detect_format", "open_rows"]
