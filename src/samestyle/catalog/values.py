"""Raw catalogue values to clean text and prices, as the validator stores them.

Loaded values arrive untyped (CSV text, Parquet ints/floats/lists/maps, JSON values): :func:`to_text`
turns any of them into text, :func:`clean_line` / :func:`clean_block` remove control characters and
normalise whitespace and Unicode (NFC), and :func:`parse_price` reads prices such as ``"₹1,299.00"``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff]")
_PRICE = re.compile(
    r"^(?:[A-Za-z]{1,3}\.?|[^\w\s.,+-])?\s*([+-]?\d[\d.,' ]*)\s*(?:[A-Za-z]{1,3}|[^\w\s.,+-])?$"
)


def to_text(value: Any) -> str | None:
    """Any loaded value as text: ints and integral floats without ``.0``, NaN as None, lists joined."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {to_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(t for t in (to_text(v) for v in value) if t)
    return str(value)


def one_line(text: str) -> str:
    """Whitespace runs to one space and control characters out (no Unicode normalisation: for ids)."""
    return _CONTROLS.sub("", " ".join(text.split())).strip()


def clean_line(text: str | None) -> str:
    """One-line text: whitespace runs (line breaks, tabs) to one space, control characters out, NFC."""
    return unicodedata.normalize("NFC", one_line(text)) if text else ""


def clean_block(text: str | None) -> str:
    """Multi-line text (a description): line breaks kept (as ``\\n``), tabs to spaces, controls out, NFC."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return unicodedata.normalize("NFC", _CONTROLS.sub("", text)).strip()


def parse_price(value: Any) -> float | None:
    """A price from a number or text such as ``"₹1,299.00"``; None when empty or NaN.

    Raises:
        ValueError: the value is not a price (text, negative, infinite); the message says which.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | list | tuple | dict):  # "[1.0, 2.0]" would otherwise read as 102.0
        raise ValueError(f"not a price: {value!r}"[:60])
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        try:  # a plain number, scientific notation included ("1.5e3", as spreadsheets export)
            return _checked(float(text))
        except ValueError as exc:
            if "valid price" in str(exc):
                raise
        match = _PRICE.match(text)
        if match is None:
            raise ValueError(f"not a price: {text[:40]!r}")
        number = _parse_number(match.group(1).replace(" ", "").replace("'", ""), text)
    return _checked(number)


def _checked(number: float) -> float:
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"not a valid price: {number}")
    return number


def _parse_number(digits: str, text: str) -> float:
    """``1,299.00`` / ``1.299,00`` / ``12,50`` / ``1,299`` / ``1.299.000``: with both separators the last is
    the decimal point; one kind repeated, or one comma before exactly three digits, groups thousands."""
    seps = [c for c in digits if c in ",."]
    last = max(digits.rfind(","), digits.rfind("."))
    thousands = len(set(seps)) == 1 and (len(seps) > 1 or (seps[0] == "," and len(digits) - last == 4))
    whole, frac = (digits, "") if not seps or thousands else (digits[:last], digits[last + 1 :])
    whole = whole.replace(",", "").replace(".", "")
    try:
        return float(f"{whole}.{frac}" if frac else whole)
    except ValueError:
        raise ValueError(f"not a price: {text[:40]!r}") from None


__all__ = ["clean_block", "clean_line", "one_line", "parse_price", "to_text"]
