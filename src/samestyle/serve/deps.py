"""Helpers shared by the routes: the app state, visitor headers, filters, limits, uploads, hit conversion."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import quote

from fastapi import Header, Request, UploadFile

from samestyle.errors import ConfigError
from samestyle.index.filters import Filter
from samestyle.serve.schemas import ID_MAX, HitOut, ProductOut, SearchOut
from samestyle.serve.state import AppState, Variant
from samestyle.types import Hit, Product

VisitorHeader = Annotated[
    str | None,
    Header(
        alias="X-Visitor-Id",
        max_length=ID_MAX,
        description="stable visitor id: picks the A/B arm and turns on impression logging",
    ),
]
SessionHeader = Annotated[
    str | None, Header(alias="X-Session-Id", max_length=ID_MAX, description="the visit, for the click log")
]


class TooLarge(ConfigError):
    """A request body, an upload or an image over a configured limit (HTTP 413)."""


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.samestyle
    return state


def parse_filters(specs: Sequence[str]) -> Filter | None:
    """``Filter.parse`` of the ``filter`` parameters; None when there are none. ConfigError -> 400."""
    specs = [s for s in specs if s.strip()]
    return Filter.parse(specs) if specs else None


def check_k(state: AppState, k: int) -> int:
    if not 1 <= k <= state.settings.max_k:
        raise ConfigError(f"k must be between 1 and {state.settings.max_k} (got {k})")
    return k


def read_upload(state: AppState, upload: UploadFile) -> bytes:
    """The uploaded file's bytes, refusing more than ``max_upload_bytes`` (read in chunks, never all)."""
    limit = state.settings.max_upload_bytes
    chunks: list[bytes] = []
    size = 0
    upload.file.seek(0)
    while chunk := upload.file.read(1 << 16):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the uploaded file is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    if not size:
        raise ConfigError("the uploaded file is empty (0 bytes)")
    return b"".join(chunks)


def product_out(state: AppState, product: Product, full: bool = False) -> ProductOut:
    return ProductOut(
        id=product.id,
        title=product.title,
        description=product.description if full else "",
        category=list(product.category),
        attributes=dict(product.attributes),
        supplier_id=product.supplier_id,
        price=product.price,
        image_url=f"/api/image?id={quote(product.id, safe='')}"
        if state.store.has_image(product.id)
        else None,
    )


def hits_out(state: AppState, variant: Variant, hits: Sequence[Hit]) -> list[HitOut]:
    out = []
    for pos, h in enumerate(hits, start=1):
        in_catalog = h.id in state.store or h.product is None
        product = state.store.get(h.id, variant.service.index) if in_catalog else h.product
        assert product is not None
        out.append(
            HitOut(
                position=pos,
                id=h.id,
                score=float(h.score),
                scores={k: float(v) for k, v in h.scores.items()},
                shared=dict(getattr(h, "shared", {}) or {}),
                product=product_out(state, product),
            )
        )
    return out


@contextmanager
def timer() -> Iterator[list[float]]:
    """``with timer() as t: ...`` then ``t[0]`` is the elapsed milliseconds."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = (time.perf_counter() - start) * 1000.0


def respond(
    state: AppState,
    variant: Variant,
    kind: str,
    query: str,
    hits: Sequence[Hit],
    took_ms: float,
    visitor: str | None,
    session: str | None,
    session_id: str | None = None,
) -> SearchOut:
    """Register the list (impressions logged for a known visitor) and build the response."""
    served = state.serve(variant, kind, query, hits, visitor, session)
    return SearchOut(
        request_id=served.request_id,
        variant=variant.name,
        kind=kind,
        query=query,
        session_id=session_id,
        took_ms=round(took_ms, 2),
        hits=hits_out(state, variant, hits),
    )


__all__ = [
    "SessionHeader",
    "TooLarge",
    "VisitorHeader",
    "check_k",
    "hits_out",
    "parse_filters",
    "product_out",
    "read_upload",
    "respond",
    "state_of",
    "timer",
]
