"""``create_app(service, settings)``: the FastAPI app, its error mapping, limits, the page and warm-up.

Every error is JSON ``{"error": "<what is wrong and what to do>", "code": "<kind>"}``: a user error
(``SamestyleError``) is 400, an unknown product or session 404, a body / upload / image over a limit 413,
a file that is not a usable image 415, a request that does not match the schema 422; anything else is
logged and answered 500 without internals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from samestyle.catalog.images import ImageError
from samestyle.errors import NotFoundError, SamestyleError
from samestyle.models.recognizer import CategoryRecognizer
from samestyle.search.service import SearchService
from samestyle.serve import routes_catalog, routes_categorize, routes_search, routes_system
from samestyle.serve.deps import TooLarge
from samestyle.serve.events import EventLog
from samestyle.serve.products import ProductStore
from samestyle.serve.routes_catalog import Unauthorized, WritesDisabled
from samestyle.serve.settings import ServeSettings
from samestyle.serve.state import AppState, build_variants
from samestyle.types import ImageStatus

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small form fields beside an upload


class BodyLimit:
    """Refuse a request body over ``limit`` bytes with 413.

    With a Content-Length the check is up front (the server enforces the declared length). Without one
    (chunked uploads) the body is read here, up to the limit, and replayed to the app; one byte more and
    the answer is 413 before the app sees anything.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = f"request body is over the limit of {self.limit:,} bytes"
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                await _send_error(send, 413, "too_large", too_big)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await _send_error(send, 413, "too_large", too_big)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    response = JSONResponse({"error": message, "code": code}, status_code=status)
    body = response.body
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": body})


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status_code=status)


_STATUS = [
    (TooLarge, 413, "too_large"),
    (NotFoundError, 404, "not_found"),
    (Unauthorized, 401, "unauthorized"),
    (WritesDisabled, 403, "forbidden"),
]


def _samestyle_error(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ImageError):
        if exc.status == ImageStatus.TOO_LARGE:
            return _error(413, "image_too_large", str(exc))
        return _error(415, "not_an_image", str(exc))
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            return _error(status, code, str(exc))
    return _error(400, "bad_request", str(exc))


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return _error(422, "invalid_request", "; ".join(parts) or "invalid request")


def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = str(exc.detail) if exc.detail else "error"
    return JSONResponse({"error": message, "code": code}, status_code=exc.status_code, headers=exc.headers)


def _internal_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error", exc_info=exc)
    return _error(500, "internal", "internal error (logged on the server); please report it")


def _categories(store: ProductStore) -> list[str]:
    if store.catalog is None:
        return []
    paths = {"/".join(p.category[:2]) for p in store.catalog if p.category}
    return sorted(paths)[:500]


def warm_up(state: AppState) -> None:
    """Build encoders and the model with one tiny query per service, then mark the app ready."""
    try:
        for service in state.services():
            encoders = service.encoder_keys
            if encoders.get("text"):
                service.search_text("warm up", k=1)
            if encoders.get("image"):
                service.search_image(Image.new("RGB", (32, 32), (128, 128, 128)), k=1)
        state.ready.set()
        log.info("warm-up done: ready")
    except Exception as exc:  # the process stays up and says why it is not ready
        state.ready_error = f"{type(exc).__name__}: {exc}"
        log.exception("warm-up failed")


def create_app(service: SearchService | Mapping[str, SearchService], settings: ServeSettings) -> FastAPI:
    """The HTTP app over one search service, or over named A/B arms (a mapping, first = control).

    Args:
        service: a ``SearchService``, or ``{variant name: SearchService}`` matching ``settings.variants``.
        settings: limits, the API key, the event log and where the catalogue is.
    """
    variants = build_variants(service, settings)
    catalog_dir = settings.catalog_dir or variants[0].service.index.meta.get("catalog")
    store = ProductStore.open(Path(catalog_dir) if catalog_dir else None)
    state = AppState(settings, variants, store, EventLog(settings.events_path))
    state.categories = _categories(store)
    if settings.recognizer is not None:
        state.recognizer = CategoryRecognizer.load(settings.recognizer)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.warmup:
            threading.Thread(target=warm_up, args=(state,), name="samestyle-warmup", daemon=True).start()
        else:
            state.ready.set()
        yield
        state.events.close()

    app = FastAPI(
        title="samestyle",
        version="0.1.0",
        summary="Same-style product search: text, image, image+text, similar products, refinement, A/B.",
        lifespan=lifespan,
    )
    app.state.samestyle = state
    handlers: dict[Any, Any] = {
        SamestyleError: _samestyle_error,
        RequestValidationError: _validation_error,
        StarletteHTTPException: _http_error,
        Exception: _internal_error,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + FORM_OVERHEAD)
    app.include_router(routes_system.router)
    app.include_router(routes_search.router)
    app.include_router(routes_catalog.router)
    app.include_router(routes_categorize.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return app


__all__ = ["create_app", "warm_up"]
