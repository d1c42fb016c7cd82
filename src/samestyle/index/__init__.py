"""Vector indexes and product metadata: exact NumPy, FAISS flat, HNSW and IVF backends, filters, folders.

Importing this package registers the backends in :data:`INDEX_BACKENDS`; ``faiss`` itself is imported
only when a FAISS index is created or loaded.
"""

from samestyle.index.base import (
    INDEX_BACKENDS,
    AllowList,
    IndexInputError,
    UnknownIdError,
    VectorIndex,
    choose_backend,
)
from samestyle.index.exact import ExactConfig, ExactIndex
from samestyle.index.faiss_backend import FaissFlatIndex, FaissHNSWIndex, FlatConfig, HNSWConfig
from samestyle.index.filters import Filter
from samestyle.index.ivf import FaissIVFIndex, IVFConfig
from samestyle.index.metadata import MetadataStore
from samestyle.index.pgvector_backend import PgVectorConfig, PgVectorIndex
from samestyle.index.product_index import ProductIndex

__all__ = [
    "INDEX_BACKENDS",
    "AllowList",
    "ExactConfig",
    "ExactIndex",
    "FaissFlatIndex",
    "FaissHNSWIndex",
    "FaissIVFIndex",
    "Filter",
    "FlatConfig",
    "HNSWConfig",
    "IVFConfig",
    "IndexInputError",
    "MetadataStore",
    "PgVectorConfig",
    "PgVectorIndex",
    "ProductIndex",
    "UnknownIdError",
    "VectorIndex",
    "choose_backend",
]
