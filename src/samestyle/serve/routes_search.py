"""Search routes: text, image, image+text, similar products, "like this but ...", refinement sessions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile

from samestyle.errors import SamestyleError
from samestyle.serve.deps import (
    SessionHeader,
    VisitorHeader,
    check_k,
    parse_filters,
    read_upload,
    respond,
    state_of,
    timer,
)
from samestyle.serve.products import decode_image
from samestyle.serve.schemas import (
    FILTERS_MAX,
    ID_MAX,
    TEXT_MAX,
    ComposeIn,
    ErrorOut,
    RefineIn,
    SearchOut,
    SessionStartIn,
)
from samestyle.serve.state import AppState, Variant

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 404, 413, 415, 422)}
FilterQuery = Annotated[
    list[str],
    Query(
        max_length=FILTERS_MAX,
        description="repeatable: category=Apparel/Topwear, attr=baseColour:Red, supplier=S1, "
        "exclude-supplier=S2, exclude-id=P1, price=10..50",
    ),
]
FilterForm = Annotated[list[str], Form(max_length=FILTERS_MAX)]


def _image_arg(state: AppState, upload: UploadFile) -> Any:
    return decode_image(read_upload(state, upload), state.settings.max_image_pixels)


def _image_request(
    request: Request, visitor: str | None, k: int, filter: list[str], upload: UploadFile
) -> tuple[AppState, Variant, Any, Any]:
    """What every image-upload route checks first: the arm, k, the filters and the decoded image."""
    state = state_of(request)
    variant = state.variant_for(visitor)
    check_k(state, k)
    return state, variant, parse_filters(filter), _image_arg(state, upload)


router = APIRouter(prefix="/api", tags=["search"], responses=ERRORS)


@router.get(
    "/search", response_model=SearchOut, summary="search by text (text -> image with a trained model)"
)
def search_text(
    request: Request,
    text: Annotated[str, Query(min_length=1, max_length=TEXT_MAX)],
    visitor: VisitorHeader = None,
    session: SessionHeader = None,
    k: int = 10,
    filter: FilterQuery = [],  # noqa: B006 - FastAPI copies defaults
    space: Annotated[str | None, Query(max_length=64)] = None,
) -> SearchOut:
    state = state_of(request)
    variant = state.variant_for(visitor)
    flt = parse_filters(filter)
    with state.lock.read(), timer() as t:
        hits = variant.service.search_text(text, check_k(state, k), flt, space=space or variant.space)
    return respond(state, variant, "text", text, hits, t[0], visitor, session)


@router.post(
    "/search/image", response_model=SearchOut, summary="search by an uploaded image (+ optional text)"
)
def search_image(
    request: Request,
    image: Annotated[
        UploadFile, File(description="JPEG, PNG, WebP, ...; size and pixel limits in /api/info")
    ],
    visitor: VisitorHeader = None,
    session: SessionHeader = None,
    text: Annotated[str | None, Form(max_length=TEXT_MAX)] = None,
    k: Annotated[int, Form()] = 10,
    filter: FilterForm = [],  # noqa: B006
    space: Annotated[str | None, Form(max_length=64)] = None,
) -> SearchOut:
    state, variant, flt, pixels = _image_request(request, visitor, k, filter, image)
    text = text.strip() if text else None
    with state.lock.read(), timer() as t:
        if text:
            hits = variant.service.search_image_text(pixels, text, k, flt)
        else:
            hits = variant.service.search_image(pixels, k, flt, space=space)
    return respond(
        state, variant, "image+text" if text else "image", text or "", hits, t[0], visitor, session
    )


@router.get("/similar", response_model=SearchOut, summary="products similar to a catalogue product")
def similar(
    request: Request,
    id: Annotated[str, Query(min_length=1, max_length=ID_MAX, description="the catalogue product id")],
    visitor: VisitorHeader = None,
    session: SessionHeader = None,
    k: int = 10,
    filter: FilterQuery = [],  # noqa: B006
    space: Annotated[str | None, Query(max_length=64)] = None,
    other_suppliers: Annotated[
        bool, Query(description="same style from other suppliers: drop the query product's own supplier")
    ] = False,
) -> SearchOut:
    state = state_of(request)
    variant = state.variant_for(visitor)
    flt = parse_filters(filter)
    with state.lock.read(), timer() as t:
        state.store.get(id, variant.service.index)  # 404 for an unknown id
        hits = variant.service.similar(
            id, check_k(state, k), space=space, filter=flt, other_suppliers=other_suppliers
        )
    return respond(state, variant, "similar", f"similar:{id}", hits, t[0], visitor, session)


@router.post("/search/compose", response_model=SearchOut, summary="like this product, but <modifier>")
def compose(
    request: Request, body: ComposeIn, visitor: VisitorHeader = None, session: SessionHeader = None
) -> SearchOut:
    state = state_of(request)
    variant = state.variant_for(visitor)
    flt = parse_filters(body.filters)
    with state.lock.read(), timer() as t:
        state.store.get(body.product_id, variant.service.index)
        hits = variant.service.compose(
            modifier=body.modifier,
            product_id=body.product_id,
            k=check_k(state, body.k),
            method=body.method,
            filter=flt,
        )
    return respond(state, variant, "compose", body.modifier, hits, t[0], visitor, session)


@router.post(
    "/search/compose/image", response_model=SearchOut, summary="like this uploaded image, but <modifier>"
)
def compose_image(
    request: Request,
    image: Annotated[UploadFile, File()],
    modifier: Annotated[str, Form(min_length=1, max_length=TEXT_MAX)],
    visitor: VisitorHeader = None,
    session: SessionHeader = None,
    method: Annotated[str, Form(max_length=32)] = "auto",
    k: Annotated[int, Form()] = 10,
    filter: FilterForm = [],  # noqa: B006
) -> SearchOut:
    state, variant, flt, pixels = _image_request(request, visitor, k, filter, image)
    with state.lock.read(), timer() as t:
        hits = variant.service.compose(modifier=modifier, image=pixels, k=k, method=method, filter=flt)
    return respond(state, variant, "compose", modifier, hits, t[0], visitor, session)


def _start(
    state: AppState, variant: Variant, visitor: str | None, session: str | None, query: str, **kwargs: Any
) -> SearchOut:
    with state.lock.read(), timer() as t:
        space = variant.space if kwargs.get("text") is not None else None
        session_id, hits = variant.service.start_session(**kwargs, space=space)
    state.remember_session(session_id, variant.name, query)
    return respond(state, variant, "session", query, hits, t[0], visitor, session, session_id=session_id)


@router.post("/sessions", response_model=SearchOut, summary="start a refinement session (text or product)")
def start_session(
    request: Request, body: SessionStartIn, visitor: VisitorHeader = None, session: SessionHeader = None
) -> SearchOut:
    state = state_of(request)
    variant = state.variant_for(visitor)
    if (body.text is None) == (body.product_id is None):
        raise SamestyleError(
            "give exactly one of 'text' or 'product_id' (an image: POST /api/sessions/image)"
        )
    if body.product_id is not None:
        state.store.get(body.product_id, variant.service.index)
    query = body.text if body.text is not None else f"similar:{body.product_id}"
    return _start(
        state,
        variant,
        visitor,
        session,
        query,
        **({"text": body.text} if body.text is not None else {"product_id": body.product_id}),
        k=check_k(state, body.k),
        filter=parse_filters(body.filters),
    )


@router.post("/sessions/image", response_model=SearchOut, summary="start a refinement session from an image")
def start_session_image(
    request: Request,
    image: Annotated[UploadFile, File()],
    visitor: VisitorHeader = None,
    session: SessionHeader = None,
    k: Annotated[int, Form()] = 10,
    filter: FilterForm = [],  # noqa: B006
) -> SearchOut:
    state, variant, flt, pixels = _image_request(request, visitor, k, filter, image)
    return _start(state, variant, visitor, session, "", image=pixels, k=k, filter=flt)


@router.post("/sessions/{session_id}/refine", response_model=SearchOut, summary="more like the liked results")
def refine(
    request: Request,
    session_id: Annotated[str, Path(min_length=1, max_length=ID_MAX)],
    body: RefineIn,
    visitor: VisitorHeader = None,
    session: SessionHeader = None,
) -> SearchOut:
    state = state_of(request)
    variant, query = state.session_variant(session_id)
    flt = parse_filters(body.filters)
    with state.lock.read(), timer() as t:
        hits = variant.service.refine(
            session_id, liked=body.liked, disliked=body.disliked, k=check_k(state, body.k), filter=flt
        )
    return respond(state, variant, "refine", query, hits, t[0], visitor, session, session_id=session_id)


__all__ = ["router"]
