"""Stage ``index``: a catalogue and its embeddings -> an index folder (one vector space per modality)."""

from __future__ import annotations

from pathlib import Path

from samestyle.catalog.store import Catalog
from samestyle.errors import ArtifactError
from samestyle.index.product_index import ProductIndex
from samestyle.pipeline.embeddings import EmbeddingSet


def build_index(
    catalog: Catalog,
    emb: EmbeddingSet,
    out_dir: str | Path,
    backend: str = "auto",
    catalog_dir: str | Path | None = None,
) -> ProductIndex:
    """Index every space of ``emb``; the manifest records the encoders so search needs no flags.

    Args:
        catalog: the products (metadata for filters and results).
        emb: embeddings of the same catalogue (ids must be catalogue ids).
        out_dir: the index folder (replaced atomically if it exists).
        backend: an index backend name, or "auto" to choose by catalogue size.
        catalog_dir: the catalogue folder, recorded in the manifest (``meta.catalog``) so that
            ``samestyle serve`` finds product images and descriptions without ``--catalog``. Indexes
            built without it (or before it existed) still load; ``meta.catalog`` is then absent.
    """
    unknown = [i for i in emb.ids if i not in catalog]
    if unknown:
        raise ArtifactError(
            f"{len(unknown)} embedded ids are not in the catalogue (e.g. '{unknown[0]}'); "
            "re-run 'samestyle embed' on this catalogue"
        )
    meta = {
        "encoders": dict(emb.meta.get("encoder_keys", {})),
        "embedding_encoders": dict(emb.encoders),
        "model_run": emb.meta.get("model_run"),
    }
    if catalog_dir is not None:
        meta["catalog"] = str(Path(catalog_dir).resolve())
    index = ProductIndex.create(out_dir, catalog.products, meta=meta)
    for space in emb.vectors:
        ids, vectors = emb.space(space)
        index.add_space(space, ids, vectors, backend=None if backend == "auto" else backend)
    index.save()
    return index
