"""The HTTP service and web page (``samestyle serve``): search, similar products, refinement, A/B logging.

``create_app`` needs the 'serve' extra (FastAPI, uvicorn, ...); it is imported on first use, so the
A/B statistics (``samestyle.serve.abtest``) and the settings work without it.

Example:
    >>> from samestyle.search.service import SearchService  # doctest: +SKIP
    >>> app = create_app(SearchService.open("work/index"), ServeSettings())  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from samestyle.serve.settings import ServeSettings, VariantSpec


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from samestyle.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'samestyle.serve' has no attribute {name!r}")


__all__ = ["ServeSettings", "VariantSpec", "create_app"]
