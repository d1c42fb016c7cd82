"""Pre-training data: a fixed product subset of the issue-B split, its cached feature maps and patches.

The ``[1280, 7, 7]`` EfficientNet-Lite0 map of the whole Myntra catalogue is ~5.5 GB float16, so
pre-training works on a seeded subset of the issue-B split (``select_subset``): ``n_train`` products of
its train part and ``n_test`` of its test part (products with a usable image only). Maps come from
``features.activations`` (``ActivationExtractor("map")`` + its ``FeatureCache``, so a re-run reads them
back); patches are pooled from them (``pretrain.patches``) and reduced by a PCA fitted on the train
subset only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from samestyle.catalog.store import Catalog
from samestyle.errors import SamestyleError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subset:
    """Product ids of the pre-training subset, each list sorted in the seeded draw order."""

    train: list[str]
    test: list[str]

    @property
    def ids(self) -> list[str]:
        return self.train + self.test


def select_subset(
    catalog: Catalog, split: dict[str, list[str]], n_train: int, n_test: int, seed: int = 0
) -> Subset:
    """Draw ``n_train`` train-split and ``n_test`` test-split products that have an image (seeded).

    Raises:
        SamestyleError: the split has no train or test part, or too few products with an image.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {}
    for part, n in (("train", n_train), ("test", n_test)):
        if part not in split:
            raise SamestyleError(f"the split has no '{part}' part (has: {sorted(split)})")
        pool = sorted(i for i in split[part] if i in catalog and catalog.get(i).has_image)
        if len(pool) < n:
            raise SamestyleError(f"split part '{part}' has {len(pool)} products with an image, need {n}")
        out[part] = [pool[j] for j in rng.permutation(len(pool))[:n]]
    return Subset(out["train"], out["test"])


def sub_catalog(catalog: Catalog, ids: list[str]) -> Catalog:
    """The products ``ids`` (that order) as a catalogue with the same image root."""
    return Catalog([catalog.get(i) for i in ids], catalog.image_root, dict(catalog.meta))
