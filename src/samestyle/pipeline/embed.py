"""Stage ``embed``: catalogue -> frozen-backbone features per modality -> ``emb/`` artifact.

Features are cached by product id + content hash under the cache folder, so re-running after a catalogue
change only encodes the new or changed products.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from samestyle.catalog.store import Catalog
from samestyle.features.cache import FeatureCache
from samestyle.features.extract import extract_features
from samestyle.models.base import ImageEncoder, TextEncoder
from samestyle.pipeline.embeddings import EmbeddingSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedReport:
    products: int
    with_image: int
    seconds: dict[str, float]
    out_dir: Path


def embed_catalog(
    catalog: Catalog,
    out_dir: str | Path,
    image_encoder: ImageEncoder | None,
    text_encoder: TextEncoder | None,
    cache_root: str | Path | None,
    batch_size: int = 64,
    progress: bool = True,
    encoder_keys: dict[str, str] | None = None,
) -> tuple[EmbeddingSet, EmbedReport]:
    """Encode every product's image and text and save the ``emb/`` folder.

    Args:
        catalog: the products (see :func:`samestyle.catalog.read_catalog`).
        out_dir: where ``emb/`` is written.
        image_encoder / text_encoder: frozen backbones; ``None`` skips that modality.
        cache_root: feature-cache folder (``None``: no cache, everything is encoded).
        encoder_keys: registry names of the encoders, saved so that search can rebuild them.
    """
    meta = {"catalog_products": len(catalog), "encoder_keys": dict(encoder_keys or {})}
    emb = EmbeddingSet(ids=catalog.ids, meta=meta)
    seconds: dict[str, float] = {}
    for space, encoder in (("image", image_encoder), ("text", text_encoder)):
        if encoder is None:
            continue
        cache = FeatureCache(Path(cache_root), encoder.name, encoder.dim) if cache_root is not None else None
        start = time.perf_counter()
        feats = extract_features(catalog, encoder, cache, batch_size=batch_size, progress=progress)
        seconds[space] = time.perf_counter() - start
        emb.add_space(space, feats.vectors, feats.present, encoder.name)
        log.info(
            "%s: %d/%d products encoded in %.1fs",
            space,
            int(feats.present.sum()),
            len(catalog),
            seconds[space],
        )
    emb.save(out_dir)
    with_image = int(emb.present["image"].sum()) if "image" in emb.present else 0
    return emb, EmbedReport(len(catalog), with_image, seconds, Path(out_dir))
