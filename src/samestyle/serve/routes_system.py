"""Health, readiness, service info (for the page) and the click / cart / order events endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from samestyle.mining.events import EventType
from samestyle.serve.deps import state_of
from samestyle.serve.routes_search import ERRORS
from samestyle.serve.schemas import EventIn, EventOut, HealthOut, InfoOut, ReadyOut, VariantOut

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=HealthOut, summary="liveness: the process answers")
def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="readiness: index loaded and encoders warmed up (503 until then)",
    responses={503: {"model": ReadyOut}},
)
def readyz(request: Request) -> ReadyOut | JSONResponse:
    state = state_of(request)
    names = [v.name for v in state.variants]
    products = len(state.control.service.index)
    if state.ready_error is not None:
        body = ReadyOut(status=f"failed: {state.ready_error}", products=products, variants=names)
        return JSONResponse(body.model_dump(), status_code=503)
    if not state.ready.is_set():
        return JSONResponse(
            ReadyOut(status="warming up", products=products, variants=names).model_dump(), 503
        )
    return ReadyOut(status="ready", products=products, variants=names)


@router.get("/api/info", response_model=InfoOut, summary="variants, limits and the features of this build")
def info(request: Request) -> InfoOut:
    state = state_of(request)
    control = state.control
    variants = []
    for v in state.variants:
        d = v.service.describe()
        variants.append(
            VariantOut(
                name=v.name,
                index=str(v.service.index.path),
                space=v.space,
                products=int(d.get("products", 0)),
                spaces=list(d.get("spaces", [])),
                model_run=d.get("model_run"),
            )
        )
    features = {
        "image_text": control.service.joint,  # image+text queries and "like this but ..." need the model
        "compose": control.service.joint,
        "sessions": True,
        "duplicates": True,
        "other_suppliers": True,
        "images": state.store.image_root is not None,
    }
    return InfoOut(
        variants=variants,
        max_k=state.settings.max_k,
        max_upload_bytes=state.settings.max_upload_bytes,
        max_image_pixels=state.settings.max_image_pixels,
        writes_enabled=state.settings.api_key is not None and state.store.catalog is not None,
        logging_events=state.events.enabled,
        features=features,
        categories=state.categories,
    )


@router.post("/api/events", response_model=EventOut, summary="log a click, cart or order", responses=ERRORS)
def event(request: Request, body: EventIn) -> EventOut:
    """The page posts clicks; a shop posts carts and orders back. The variant is the visitor's arm."""
    state = state_of(request)
    variant = state.variant_for(body.visitor_id)
    served = state.events.lookup(body.request_id) if body.request_id else None
    if served is not None:
        variant = next(v for v in state.variants if v.name == served.variant)
    state.events.action(
        EventType(body.event),
        body.product_id,
        body.visitor_id,
        variant.name,
        session_id=body.session_id,
        query=body.query,
        position=body.position,
        request_id=body.request_id,
    )
    return EventOut(logged=state.events.enabled, variant=variant.name)


__all__ = ["router"]
