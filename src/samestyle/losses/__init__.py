"""Losses: pure contrastive functions, the contrastive unit returning named terms, multitask weighting.

A training step is ``terms = unit(anchor, positive, groups)`` then ``total, weights = weighting(terms)``;
the loop back-propagates ``total`` and logs ``terms`` and ``weights`` without knowing their keys.
"""

from samestyle.losses.embeddings import Embeddings
from samestyle.losses.functional import (
    cosine_hinge,
    group_mask,
    info_nce,
    locality_consistency,
    self_distinctiveness,
)
from samestyle.losses.unit import DEFAULT_PAIRS, ContrastiveConfig, ContrastiveUnit, parse_pair
from samestyle.losses.weighting import (
    WEIGHTINGS,
    AdaptiveWeighting,
    FashionBertWeighting,
    FixedWeighting,
    UncertaintyWeighting,
    Weighting,
    task_grad_sq_norms,
)

__all__ = [
    "DEFAULT_PAIRS",
    "WEIGHTINGS",
    "AdaptiveWeighting",
    "ContrastiveConfig",
    "ContrastiveUnit",
    "Embeddings",
    "FashionBertWeighting",
    "FixedWeighting",
    "UncertaintyWeighting",
    "Weighting",
    "cosine_hinge",
    "group_mask",
    "info_nce",
    "locality_consistency",
    "parse_pair",
    "self_distinctiveness",
    "task_grad_sq_norms",
]
