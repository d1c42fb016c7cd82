"""Settings of the HTTP service: where the index and catalogue are, limits, the API key, A/B variants."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from samestyle.errors import ConfigError

API_KEY_ENV = "SAMESTYLE_API_KEY"
_VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


@dataclass(frozen=True)
class VariantSpec:
    """One arm of an A/B test: a name, the index it searches and, optionally, the space text queries use
    (image queries and similar products keep the service's defaults unless a request names a space).

    Parsed from ``NAME=INDEX_DIR`` or ``NAME=INDEX_DIR@SPACE`` (``--variant`` of ``samestyle serve``).
    ``space`` None keeps the service's default (joint-image with a trained model, else text).
    """

    name: str
    index_dir: Path
    space: str | None = None

    @classmethod
    def parse(cls, spec: str) -> VariantSpec:
        name, sep, rest = spec.partition("=")
        name = name.strip()
        if not sep or not rest.strip():
            raise ConfigError(f"bad --variant '{spec}': write NAME=INDEX_DIR or NAME=INDEX_DIR@SPACE")
        if not _VARIANT_NAME.match(name):
            raise ConfigError(f"bad variant name {name!r}: letters, digits, '_', '-', '.' (at most 32)")
        path, at, space = rest.strip().rpartition("@")
        if not at:
            path, space = rest.strip(), ""
        return cls(name, Path(path.strip()), space.strip() or None)


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``create_app`` needs besides the search service(s).

    Attributes:
        catalog_dir: catalogue folder (product descriptions and images); None: read from the index
            manifest (``meta.catalog``); when neither is known, results have no images.
        host, port: where ``samestyle serve`` listens (loopback by default).
        api_key: required in the ``X-API-Key`` header by catalogue writes (upsert, delete); None turns
            writes off (403). ``samestyle serve`` reads it from ``$SAMESTYLE_API_KEY``.
        max_k: the most results one request may ask for.
        max_upload_bytes: the largest request body (an uploaded image, JSON with a base64 image).
        max_image_pixels: the largest width*height of an uploaded image, checked before decoding.
        events_path: click log (JSONL, the format of docs/click-logs.md) that impressions, clicks, carts
            and orders are appended to; None: nothing is logged.
        variants: A/B arms (first = control); empty: one arm named ``default`` serves everything.
        experiment: salt of the visitor -> variant hash; change it to re-randomise visitors.
        warmup: load encoders and the model at startup (``/readyz`` answers 503 until done).
        recognizer: a category recogniser (``samestyle recognizer``) for ``/api/categorize``; None: that
            route answers 404.
    """

    catalog_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_k: int = 100
    max_upload_bytes: int = 8 * 1024 * 1024
    max_image_pixels: int = 25_000_000
    events_path: Path | None = None
    variants: Sequence[VariantSpec] = field(default_factory=tuple)
    experiment: str = "exp1"
    warmup: bool = True
    max_sessions: int = 10_000
    recognizer: Path | None = None

    def __post_init__(self) -> None:
        if self.max_k < 1:
            raise ConfigError(f"max_k must be at least 1 (got {self.max_k})")
        if self.max_upload_bytes < 1024:
            raise ConfigError(f"max_upload_bytes must be at least 1024 (got {self.max_upload_bytes})")
        if self.max_image_pixels < 1:
            raise ConfigError(f"max_image_pixels must be at least 1 (got {self.max_image_pixels})")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ConfigError(f"variant names must be unique (got {', '.join(names)})")
        if self.api_key is not None and len(self.api_key) < 8:
            raise ConfigError(f"${API_KEY_ENV} is too short: use at least 8 characters")

    @staticmethod
    def api_key_from_env() -> str | None:
        """``$SAMESTYLE_API_KEY``, or None when unset or empty."""
        return os.environ.get(API_KEY_ENV) or None


__all__ = ["API_KEY_ENV", "ServeSettings", "VariantSpec"]
