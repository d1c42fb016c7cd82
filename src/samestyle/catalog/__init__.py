"""Catalogue ingest: loaders per format, column mapping, validation, image checks, the Parquet store."""

from samestyle.catalog.store import Catalog, read_catalog, read_rejects, write_catalog

__all__ = ["Catalog", "read_catalog", "read_rejects", "write_catalog"]
