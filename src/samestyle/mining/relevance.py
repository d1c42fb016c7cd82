"""Text relevance for mining: word tokens, Jaccard, and the default product and query relevance.

The miner's constraints (b) and (c) (``docs/click-logs.md`` section 3) use :class:`QueryTokenOverlap`
(query -> product) and :class:`TitleJaccard` (product -> product) unless the caller passes its own.
"""

from __future__ import annotations

from collections.abc import Callable

from samestyle.catalog.store import Catalog
from samestyle.mining.clicklog import normalize_query
from samestyle.types import Product

Similarity = Callable[[str, str], float]
QueryRelevance = Callable[[str, Product], float]


def stem(token: str) -> str:
    """A crude English plural stripper so ``shirts``/``shirt`` and ``watches``/``watch`` meet."""
    if len(token) > 4 and token.endswith(("ches", "shes", "sses", "xes")):
        return token[:-2]
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us")):
        return token[:-1]
    return token


def tokens(text: str) -> frozenset[str]:
    """The set of normalised, plural-stripped word tokens of a text."""
    return frozenset(stem(t) for t in normalize_query(text).split())


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b|, 0.0 when both are empty."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


class TitleJaccard:
    """Default product-product relevance: token Jaccard of the two titles (cached per product)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._cache: dict[str, frozenset[str]] = {}

    def _tokens(self, pid: str) -> frozenset[str]:
        if pid not in self._cache:
            self._cache[pid] = tokens(self._catalog.get(pid).title)
        return self._cache[pid]

    def __call__(self, id_a: str, id_b: str) -> float:
        return jaccard(self._tokens(id_a), self._tokens(id_b))


class QueryTokenOverlap:
    """Default query-product relevance: share of the query's tokens found in the product's text.

    Args:
        use_attributes: also look in attribute values and category names, not only the title.
    """

    def __init__(self, use_attributes: bool = True) -> None:
        self.use_attributes = use_attributes
        self._cache: dict[str, frozenset[str]] = {}
        self._queries: dict[str, frozenset[str]] = {}

    def _query_tokens(self, query: str) -> frozenset[str]:
        if query not in self._queries:
            self._queries[query] = tokens(query)
        return self._queries[query]

    def _tokens(self, product: Product) -> frozenset[str]:
        if product.id not in self._cache:
            text = product.title
            if self.use_attributes:
                text = " ".join([text, *product.attributes.values(), *product.category])
            self._cache[product.id] = tokens(text)
        return self._cache[product.id]

    def __call__(self, query: str, product: Product) -> float:
        wanted = self._query_tokens(query)
        return len(wanted & self._tokens(product)) / len(wanted) if wanted else 0.0


__all__ = ["QueryRelevance", "QueryTokenOverlap", "Similarity", "TitleJaccard", "jaccard", "stem", "tokens"]
