"""Backbone features per product: an incremental on-disk cache and catalogue-wide extraction."""

from samestyle.features.cache import FeatureCache
from samestyle.features.extract import FeatureMatrix, extract_features

__all__ = ["FeatureCache", "FeatureMatrix", "extract_features"]
