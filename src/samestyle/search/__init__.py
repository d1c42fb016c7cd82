"""Query-side services: similar products, cross-modal search (more features land with issue D)."""

from samestyle.search.service import SearchService

__all__ = ["SearchService"]
