"""Category recognition routes: a catalogue product by id, or a new product by title and optional photo
and attributes (read by a recognizer fitted with ``--attributes``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile

from samestyle.errors import ConfigError, NotFoundError
from samestyle.models.recognizer import CategoryRecognizer
from samestyle.search.categorize import categorize
from samestyle.serve.deps import read_upload, state_of
from samestyle.serve.products import decode_image
from samestyle.serve.routes_search import ERRORS
from samestyle.serve.schemas import ID_MAX, TEXT_MAX, CategoriesOut, CategoryScoreOut
from samestyle.serve.state import AppState

router = APIRouter(prefix="/api", tags=["categories"], responses=ERRORS)
K = Annotated[int, Query(ge=1, le=20, description="classes per level")]


def _recognizer(state: AppState) -> CategoryRecognizer:
    if state.recognizer is None:
        raise NotFoundError("this service has no category recognizer: start it with --recognizer DIR")
    return state.recognizer


def _attributes(raw: str | None) -> dict[str, str] | None:
    """The ``attributes`` form field: a JSON object of strings, e.g. ``{"usage": "Sports"}``."""
    if raw is None or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"attributes: not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError('attributes: a JSON object of strings, e.g. {"usage": "Sports"}')
    return value


def _out(product_id: str | None, top: dict[str, list[tuple[str, float]]]) -> CategoriesOut:
    levels = {lv: [CategoryScoreOut(label=c, score=s) for c, s in best] for lv, best in top.items()}
    return CategoriesOut(product_id=product_id, levels=levels)


@router.get("/categorize", response_model=CategoriesOut, summary="a catalogue product's categories")
def categorize_product(
    request: Request,
    id: Annotated[str, Query(min_length=1, max_length=ID_MAX, description="the catalogue product id")],
    k: K = 3,
) -> CategoriesOut:
    state = state_of(request)
    with state.lock.read():
        top = categorize(state.control.service, _recognizer(state), product_id=id, k=k)
    return _out(id, top)


@router.post(
    "/categorize", response_model=CategoriesOut, summary="a new product's categories (title + photo)"
)
def categorize_new(
    request: Request,
    title: Annotated[str, Form(min_length=1, max_length=TEXT_MAX)],
    image: Annotated[UploadFile | None, File(description="the product photo (optional)")] = None,
    k: Annotated[int, Form(ge=1, le=20)] = 3,
    attributes: Annotated[
        str | None,
        Form(max_length=TEXT_MAX, description='attributes as a JSON object, e.g. {"usage": "Sports"}'),
    ] = None,
) -> CategoriesOut:
    state = state_of(request)
    recognizer = _recognizer(state)
    attrs = _attributes(attributes)
    pixels: Any = None
    if image is not None:
        pixels = decode_image(read_upload(state, image), state.settings.max_image_pixels)
    with state.lock.read():
        top = categorize(
            state.control.service, recognizer, text=title.strip(), image=pixels, attributes=attrs, k=k
        )
    return _out(None, top)


__all__ = ["router"]
