"""Catalogue routes: product detail and image, duplicate groups, and the key-protected upsert / delete."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse
from PIL import Image

from samestyle.errors import ConfigError, NotFoundError, SamestyleError
from samestyle.serve.deps import product_out, state_of
from samestyle.serve.embedder import product_vectors
from samestyle.serve.products import decode_image
from samestyle.serve.routes_search import ERRORS
from samestyle.serve.schemas import (
    ID_MAX,
    DeleteOut,
    DuplicateGroupOut,
    DuplicateLinkOut,
    DuplicatesOut,
    ErrorOut,
    ProductIn,
    ProductOut,
    UpsertOut,
)
from samestyle.serve.state import AppState
from samestyle.types import ImageStatus, Product

log = logging.getLogger(__name__)

IdQuery = Annotated[str, Query(min_length=1, max_length=ID_MAX, description="the catalogue product id")]
router = APIRouter(prefix="/api", tags=["catalogue"], responses=ERRORS)


class Unauthorized(SamestyleError):
    """No or a wrong API key (HTTP 401)."""


class WritesDisabled(SamestyleError):
    """The service has no API key configured, so catalogue writes are off (HTTP 403)."""


def _check_key(state: AppState, key: str | None) -> None:
    wanted = state.settings.api_key
    if wanted is None:
        raise WritesDisabled("catalogue writes are disabled: start the service with $SAMESTYLE_API_KEY set")
    if key is None or not hmac.compare_digest(key.encode(), wanted.encode()):
        raise Unauthorized("missing or wrong API key: send it in the X-API-Key header")


ApiKey = Annotated[str | None, Header(alias="X-API-Key", max_length=200)]
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}}


@router.get("/product", response_model=ProductOut, summary="one product, with its description")
def product(request: Request, id: IdQuery) -> ProductOut:
    state = state_of(request)
    with state.lock.read():
        return product_out(state, state.store.get(id, state.control.service.index), full=True)


@router.get(
    "/image",
    response_class=FileResponse,
    summary="a product's image (only from the catalogue's image store)",
    responses={200: {"content": {"image/*": {}}}},
)
def image(request: Request, id: IdQuery) -> FileResponse:
    state = state_of(request)
    path = state.store.image_file(id)
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/duplicates", response_model=DuplicatesOut, summary="groups of duplicate products")
def duplicates(
    request: Request,
    supplier: Annotated[str | None, Query(max_length=ID_MAX, description="only this supplier's")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> DuplicatesOut:
    state = state_of(request)
    variant = state.control
    with state.lock.read():
        result = variant.service.duplicates(supplier=supplier)
        groups = sorted(result.groups, key=lambda g: (-len(g), g[0]))
        page = groups[offset : offset + limit]
        shown = {i for g in page for i in g}
        index = variant.service.index
        return DuplicatesOut(
            total_groups=len(groups),
            offset=offset,
            groups=[
                DuplicateGroupOut(
                    ids=list(g), products=[product_out(state, state.store.get(i, index)) for i in g]
                )
                for g in page
            ],
            links=[
                DuplicateLinkOut(
                    a=lk.a, b=lk.b, scores={k: float(v) for k, v in lk.scores.items()}, rule=lk.rule
                )
                for lk in result.links
                if lk.a in shown and lk.b in shown
            ],
        )


def _image_bytes(body: ProductIn) -> bytes | None:
    if body.image_base64 is None:
        return None
    try:
        return base64.b64decode(body.image_base64, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("image_base64 is not valid base64") from None


@router.put(
    "/products",
    response_model=UpsertOut,
    summary="add or replace a product (needs X-API-Key)",
    responses=WRITE_ERRORS,
)
def upsert(request: Request, id: IdQuery, body: ProductIn, api_key: ApiKey = None) -> UpsertOut:
    state = state_of(request)
    _check_key(state, api_key)
    state.store.require_writable()
    if body.image is not None and body.image_base64 is not None:
        raise ConfigError("give 'image' (a path in the image store) or 'image_base64', not both")
    data = _image_bytes(body)
    pixels: Image.Image | None = None
    if data is not None:
        pixels = decode_image(data, state.settings.max_image_pixels)
    elif body.image is not None:
        pixels = state.store.image_of(body.image, state.settings.max_image_pixels)
    product = Product(
        id=id,
        title=body.title,
        description=body.description,
        category=tuple(body.category),
        attributes=body.attributes,
        image=body.image,
        supplier_id=body.supplier_id,
        price=body.price,
        image_status=ImageStatus.OK if pixels is not None else ImageStatus.MISSING,
        image_sha256=hashlib.sha256(data).hexdigest() if data is not None else None,
    )
    vectors = [(svc, product_vectors(svc, product, pixels)) for svc in state.services()]
    with state.lock.write():
        if data is not None and pixels is not None:
            rel = state.store.save_image(id, data, pixels)
            product = Product(**{**_fields(product), "image": rel})
        created = state.store.put(product)
        for svc, vecs in vectors:
            if id in svc.index:
                svc.index.remove_products([id])  # drops stale vectors of spaces the new version lacks
            svc.index.upsert_products([product], {name: ([id], v) for name, v in vecs.items()})
            svc.index.save()
        state.store.save()
    log.info("upserted product %r (%s)", id, "new" if created else "replaced")
    return UpsertOut(id=id, created=created, spaces=sorted(vectors[0][1]) if vectors else [])


def _fields(product: Product) -> dict[str, Any]:
    return {
        name: getattr(product, name)
        for name in (
            "id",
            "title",
            "description",
            "category",
            "attributes",
            "image",
            "supplier_id",
            "price",
            "image_status",
            "image_sha256",
        )
    }


@router.delete(
    "/products",
    response_model=DeleteOut,
    summary="delete a product (needs X-API-Key)",
    responses=WRITE_ERRORS,
)
def delete(request: Request, id: IdQuery, api_key: ApiKey = None) -> DeleteOut:
    state = state_of(request)
    _check_key(state, api_key)
    state.store.require_writable()
    with state.lock.write():
        removed = False
        for svc in state.services():
            if svc.index.remove_products([id]):
                removed = True
                svc.index.save()
        removed = state.store.delete(id) or removed
        if not removed:
            raise NotFoundError(f"no product with id '{id}' in the catalogue")
        state.store.save()
    return DeleteOut(id=id, deleted=True)


__all__ = ["Unauthorized", "WritesDisabled", "router"]
