"""samestyle: same-style product retrieval in one joint image/text/image+text space.

The package is a library first; ``samestyle.cli`` is a thin shell around it. Importing it has no side
effects and imports no heavy dependency (torch, onnxruntime, faiss are imported where they are used).
"""

from samestyle.errors import CatalogError, SamestyleError
from samestyle.types import Hit, Product, Reject

__all__ = ["CatalogError", "Hit", "Product", "Reject", "SamestyleError"]
__version__ = "0.1.0"
