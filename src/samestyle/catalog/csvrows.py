"""The CSV/TSV line reader: decoded physical lines, CSV records, and the rows of a delimited file.

Text is decoded lazily with invalid bytes kept as lone surrogates, so each physical line can be judged
alone (the JSONL reader in :mod:`samestyle.catalog.loaders` shares :class:`Line`, :func:`text_stream`,
:func:`bad_byte` and :func:`bad_bytes_reason`). A record that cannot be used is rejected on its own;
one that ran over several lines (an unbalanced quote) loses only its first line, and the rest is read
again. :func:`csv_rows` is what :func:`samestyle.catalog.loaders.open_rows` iterates for CSV/TSV.
"""

from __future__ import annotations

import codecs
import csv
import io
import zlib
from collections import deque
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from samestyle.errors import CatalogError

if TYPE_CHECKING:
    from pathlib import Path

    from samestyle.catalog.loaders import RowSource

# The csv module refuses fields over 128 KiB by default, which dropped a row with a long (but cuttable)
# title or description; the validator cuts over-long text itself, so only absurd fields are refused here.
FIELD_SIZE_LIMIT = 64 * 2**20
if csv.field_size_limit() < FIELD_SIZE_LIMIT:
    csv.field_size_limit(FIELD_SIZE_LIMIT)

# What reading a damaged file raises part-way: a truncated or corrupt .gz, or a UTF-16 file cut in the
# middle of a character (surrogateescape covers bad bytes, not a dangling one).
STREAM_ERRORS = (EOFError, zlib.error, OSError, UnicodeDecodeError)


def stream_reason(exc: BaseException, line: int) -> str:
    """The reject reason for a compressed file that breaks off after ``line`` lines."""
    return (
        f"the file is damaged after line {line} ({type(exc).__name__}: {exc}); the rest of it is lost. "
        "Re-create the file"
    )


class Line(NamedTuple):
    """One decoded physical line of a text file."""

    text: str
    number: int  # 1-based physical line number
    bad_byte: int | None  # first byte that is invalid in the encoding, if any


def text_stream(fh: IO[bytes], encoding: str) -> io.TextIOWrapper:
    """Decode lazily; invalid bytes survive as lone surrogates so each line can be judged alone.

    A UTF-8 or UTF-16 byte-order mark overrides a UTF-8 ``encoding`` (Excel writes both).
    """
    if codecs.lookup(encoding).name == "utf-8":
        head = fh.peek(4)[:4] if hasattr(fh, "peek") else b""
        utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        encoding = "utf-16" if utf16 else "utf-8-sig"
    return io.TextIOWrapper(fh, encoding=encoding, errors="surrogateescape", newline="")


def bad_byte(text: str) -> int | None:
    """The first byte of ``text`` that was invalid in its encoding (a lone surrogate), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = ord(text[exc.start])
        return char - 0xDC00 if 0xDC80 <= char <= 0xDCFF else char
    return None


class Lines:
    """Decoded physical lines for ``csv.reader``, with push-back so a broken record can be re-read."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self._pending: deque[Line] = deque()
        self._number = 0
        self.consumed: list[Line] = []  # lines taken for the current record

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        if self._pending:
            line = self._pending.popleft()
        else:
            text = self._text.readline()
            if not text:
                raise StopIteration
            self._number += 1
            line = Line(text, self._number, bad_byte(text))
        self.consumed.append(line)
        return line.text

    @property
    def line_number(self) -> int:
        """Physical lines read so far."""
        return self._number

    def push_back(self, lines: list[Line]) -> None:
        self._pending.extendleft(reversed(lines))


def parse_header(line: Line, path: Path, encoding: str, sep: str) -> list[str]:
    """The column names on the header line, stripped; raises CatalogError if it is unusable."""
    if line.bad_byte is not None:
        raise CatalogError(f"{path} line 1: header is {bad_bytes_reason(line, encoding)}")
    if not line.text.strip():
        raise CatalogError(f"{path} line 1: blank; the first line must be the header (column names)")
    try:
        return [h.strip() for h in next(csv.reader([line.text], delimiter=sep, strict=True))]
    except csv.Error as exc:
        raise CatalogError(f"{path} line 1: header cannot be parsed ({exc})") from None


def bad_bytes_reason(line: Line, encoding: str) -> str:
    """The reject reason for a line with bytes that are invalid in ``encoding``."""
    return (
        f"not valid {encoding} (byte 0x{line.bad_byte or 0:02X} on line {line.number}); "
        "re-save the file as UTF-8 or pass the right encoding"
    )


def _first_bad_field(fields: list[str], header: list[str]) -> str | None:
    return next(
        (name for name, value in zip(header, fields, strict=False) if bad_byte(value) is not None), None
    )


def _next_record(
    reader: Iterator[list[str]], lines: Lines, width: int
) -> tuple[list[str] | None, str | None]:
    """The next CSV record and, if it is unusable, why. ``lines.consumed`` holds its physical lines.

    Raises:
        StopIteration: at end of input.
    """
    lines.consumed = []
    try:
        fields = next(reader)
    except csv.Error as exc:
        if not lines.consumed:
            raise StopIteration from None
        return None, f"cannot parse CSV record ({exc})"
    if fields and len(fields) != width:
        return fields, f"expected {width} fields, got {len(fields)}"
    return fields, None


def _broken_record(lines: Lines, header: list[str], sep: str, problem: str | None) -> tuple[str | None, str]:
    """(field, reason) for an unusable record. A record that ran over several lines probably has an
    unbalanced quote: only its first line is dropped and the rest is pushed back to be read again."""
    first = lines.consumed[0]
    if len(lines.consumed) == 1:
        return None, f"line {first.number}: {problem}"
    lines.push_back(lines.consumed[1:])
    partial = next(csv.reader([first.text], delimiter=sep), [])  # lenient: runs to the end of the line
    column = header[min(len(partial), len(header)) - 1] if partial else None
    return column, f"line {first.number}: {problem}; a quote opened on this line may be unbalanced"


def csv_rows(
    fh: IO[bytes], lines: Lines, source: RowSource, header: list[str], sep: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row, {column: value})`` per usable record; the others become fatal rejects on ``source``.

    Counts ``source.rows_seen`` and closes ``fh`` when the records run out.
    """
    reader = csv.reader(lines, delimiter=sep, strict=True)
    row = 0
    with fh:
        while True:
            try:
                fields, problem = _next_record(reader, lines, len(header))
            except StopIteration:
                break
            except STREAM_ERRORS as exc:  # a truncated .gz: keep the rows read, report the rest
                source.reject(row + 1, None, stream_reason(exc, lines.line_number))
                break
            row += 1
            source.rows_seen += 1
            if problem is not None or fields is None:
                source.reject(row, *_broken_record(lines, header, sep, problem))
                continue
            if not fields:
                continue  # blank line
            bad = next((ln for ln in lines.consumed if ln.bad_byte is not None), None)
            if bad is not None:
                source.reject(row, _first_bad_field(fields, header), bad_bytes_reason(bad, source.encoding))
                continue
            yield row, {name: value for name, value in zip(header, fields, strict=True) if name}
    if source.rows_seen == 0:
        source.reject(None, None, "no data rows (the file has only a header)", fatal=False)


__all__ = [
    "FIELD_SIZE_LIMIT",
    "STREAM_ERRORS",
    "Line",
    "Lines",
    "bad_byte",
    "bad_bytes_reason",
    "csv_rows",
    "parse_header",
    "stream_reason",
    "text_stream",
]
