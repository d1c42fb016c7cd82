"""Pydantic request and response models of the HTTP API (ids are always strings)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ID_MAX = 200
TEXT_MAX = 500
FILTERS_MAX = 20


class ErrorOut(BaseModel):
    """Every error response: a one-line message saying what is wrong and what to do."""

    error: str
    code: str = Field(description="short machine-readable kind: bad_request, not_found, too_large, ...")


class ProductOut(BaseModel):
    id: str
    title: str
    description: str = ""
    category: list[str] = Field(default_factory=list)
    attributes: dict[str, str] = Field(default_factory=dict)
    supplier_id: str | None = None
    price: float | None = None
    image_url: str | None = Field(None, description="served from the catalogue's image store, or null")


class HitOut(BaseModel):
    position: int = Field(description="1-based rank in this response")
    id: str
    score: float
    scores: dict[str, float] = Field(
        default_factory=dict, description="per-modality similarities to the query (image, text, fused, ...)"
    )
    shared: dict[str, str] = Field(
        default_factory=dict, description="attributes the hit shares with the query product"
    )
    product: ProductOut


class CategoryScoreOut(BaseModel):
    label: str
    score: float = Field(description="the recogniser's margin: higher is more likely; > 0 is a yes")


class CategoriesOut(BaseModel):
    product_id: str | None = Field(description="the catalogue product, or null for a new product")
    levels: dict[str, list[CategoryScoreOut]] = Field(description="level -> best classes, best first")


class SearchOut(BaseModel):
    request_id: str = Field(description="echo it in click events so they join this result list")
    variant: str = Field(description="the A/B arm that served this list")
    kind: str = Field(description="text, image, image+text, similar, compose, session, refine")
    query: str = Field(description="the query as logged: the text, or e.g. 'similar:ID'")
    session_id: str | None = Field(None, description="refinement session (sessions and refine only)")
    took_ms: float
    hits: list[HitOut]


class SessionStartIn(BaseModel):
    """Start a refinement session from a text or a catalogue product (an image: POST /api/sessions/image)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, min_length=1, max_length=TEXT_MAX)
    product_id: str | None = Field(None, min_length=1, max_length=ID_MAX)
    k: int = Field(10, ge=1)
    filters: list[str] = Field(default_factory=list, max_length=FILTERS_MAX)


class RefineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    liked: list[str] = Field(default_factory=list, max_length=200)
    disliked: list[str] = Field(default_factory=list, max_length=200)
    k: int = Field(10, ge=1)
    filters: list[str] = Field(default_factory=list, max_length=FILTERS_MAX)


class ComposeIn(BaseModel):
    """ "Like this product but <modifier>" (an uploaded image: POST /api/search/compose/image)."""

    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=ID_MAX)
    modifier: str = Field(min_length=1, max_length=TEXT_MAX)
    method: str = Field(
        "auto", max_length=32, description="auto (delta for a product), fused, sum, delta or fused-title"
    )
    k: int = Field(10, ge=1)
    filters: list[str] = Field(default_factory=list, max_length=FILTERS_MAX)


class DuplicateGroupOut(BaseModel):
    ids: list[str]
    products: list[ProductOut]


class DuplicateLinkOut(BaseModel):
    a: str
    b: str
    scores: dict[str, float]
    rule: str


class DuplicatesOut(BaseModel):
    total_groups: int
    offset: int
    groups: list[DuplicateGroupOut]
    links: list[DuplicateLinkOut] = Field(default_factory=list, description="links inside the groups shown")


class ProductIn(BaseModel):
    """A product to add or replace. ``image_base64``: the image file's bytes, base64; or ``image``: a path
    relative to the catalogue's image store (must exist there)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=1000)
    description: str = Field("", max_length=10_000)
    category: list[str] = Field(default_factory=list, max_length=10)
    attributes: dict[str, str] = Field(default_factory=dict, max_length=100)
    supplier_id: str | None = Field(None, max_length=ID_MAX)
    price: float | None = Field(None, ge=0, allow_inf_nan=False)
    image: str | None = Field(None, max_length=1000)
    image_base64: str | None = None


class UpsertOut(BaseModel):
    id: str
    created: bool
    spaces: list[str] = Field(description="spaces the product has a vector in")


class DeleteOut(BaseModel):
    id: str
    deleted: bool


EventKind = Literal["click", "cart", "order"]


class EventIn(BaseModel):
    """A click on a result (the page sends it), or a cart / order event the shop posts back.

    With ``request_id`` of a recent result list, ``query``, ``position`` and the session are taken from it.
    The variant is never taken from the client: it is the visitor's hash bucket.
    """

    model_config = ConfigDict(extra="forbid")

    event: EventKind
    product_id: str = Field(min_length=1, max_length=ID_MAX)
    visitor_id: str = Field(min_length=1, max_length=ID_MAX)
    session_id: str | None = Field(None, min_length=1, max_length=ID_MAX)
    request_id: str | None = Field(None, min_length=1, max_length=ID_MAX)
    query: str | None = Field(None, max_length=TEXT_MAX)
    position: int | None = Field(None, ge=1, le=10_000)


class EventOut(BaseModel):
    logged: bool
    variant: str


class VariantOut(BaseModel):
    name: str
    index: str
    space: str | None
    products: int
    spaces: list[str]
    model_run: str | None


class InfoOut(BaseModel):
    variants: list[VariantOut]
    max_k: int
    max_upload_bytes: int
    max_image_pixels: int
    writes_enabled: bool
    logging_events: bool
    features: dict[str, bool] = Field(description="what this index supports (compose needs a trained model)")
    categories: list[str] = Field(description="top-level category paths (for the filter box)")


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    products: int
    variants: list[str]
