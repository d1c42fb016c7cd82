"""Plain data types shared by every stage. No torch, numpy or pyarrow import here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class Modality(StrEnum):
    """Which part of a product a vector represents."""

    IMAGE = "image"
    TEXT = "text"
    FUSED = "fused"  # image+text


class ImageStatus(StrEnum):
    """What ingest found when it opened a product's image."""

    OK = "ok"
    MISSING = "missing"  # no image reference, or the file does not exist
    CORRUPT = "corrupt"  # unreadable, truncated or not an image
    TOO_LARGE = "too_large"  # over the pixel limit (decompression-bomb guard)
    UNCHECKED = "unchecked"  # ingest ran with image checks off


def _frozen_mapping(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Product:
    """One catalogue product: its text, its image reference and what a marketplace knows about it.

    ``image`` is a path relative to the catalogue's image root (or absolute). ``image_status`` says
    whether ingest could open it; a product with a bad image stays searchable by text.
    """

    id: str
    title: str
    description: str = ""
    category: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    supplier_id: str | None = None
    price: float | None = None
    image_status: ImageStatus = ImageStatus.UNCHECKED
    image_sha256: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", _frozen_mapping(self.attributes))
        object.__setattr__(self, "category", tuple(self.category))

    @property
    def text(self) -> str:
        """The text a text encoder sees: title, then description when there is one."""
        return f"{self.title}. {self.description}" if self.description else self.title

    @property
    def has_image(self) -> bool:
        return self.image_status in (ImageStatus.OK, ImageStatus.UNCHECKED) and self.image is not None

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "category": list(self.category),
            "attributes": dict(self.attributes),
            "image": self.image,
            "supplier_id": self.supplier_id,
            "price": self.price,
            "image_status": str(self.image_status),
            "image_sha256": self.image_sha256,
        }

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> Product:
        attrs = rec.get("attributes") or {}
        if not isinstance(attrs, Mapping):  # pyarrow map columns come back as lists of pairs
            attrs = dict(attrs)
        return cls(
            id=str(rec["id"]),
            title=rec.get("title") or "",
            description=rec.get("description") or "",
            category=tuple(rec.get("category") or ()),
            attributes=attrs,
            image=rec.get("image"),
            supplier_id=rec.get("supplier_id"),
            price=rec.get("price"),
            image_status=ImageStatus(rec.get("image_status") or ImageStatus.UNCHECKED),
            image_sha256=rec.get("image_sha256"),
        )


@dataclass(frozen=True)
class Reject:
    """One problem found in an input file. ``row`` is 1-based over data rows (header excluded)."""

    file: str
    row: int | None
    field: str | None
    reason: str
    product_id: str | None = None
    fatal: bool = True  # True: the row was dropped; False: kept but flagged (e.g. a bad image)

    def __str__(self) -> str:
        where = self.file + (f" row {self.row}" if self.row is not None else "")
        what = f" field '{self.field}'" if self.field else ""
        return f"{where}{what}: {self.reason}"


@dataclass(frozen=True)
class Hit:
    """One search result: the product id, its score and, where known, why it matched.

    ``scores`` holds per-modality similarities to the query ("image", "text", "fused", or the space
    searched); ``shared`` the attributes the hit shares with the query product (empty for free queries).
    """

    id: str
    score: float
    scores: Mapping[str, float] = field(default_factory=dict)
    product: Product | None = None
    shared: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", _frozen_mapping(self.scores))  # type: ignore[arg-type]
        object.__setattr__(self, "shared", _frozen_mapping(self.shared))
