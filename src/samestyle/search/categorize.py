"""Category recognition through a search service: one catalogue product by id (its stored joint-fused vector
and title), a new product by title and, optionally, photo (projected by the index's model as the product
would be at indexing time), or every product of the index at once, beside its catalogue category, so that
the confident disagreements (likely mislabelled listings) come first."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from samestyle.errors import ConfigError, NotFoundError
from samestyle.models.recognizer import CategoryRecognizer, level_depth

if TYPE_CHECKING:
    from samestyle.search.service import ImageInput, SearchService


def categorize(
    service: SearchService,
    recognizer: CategoryRecognizer,
    *,
    product_id: str | None = None,
    text: str | None = None,
    image: ImageInput | None = None,
    attributes: Mapping[str, str] | None = None,
    k: int = 3,
) -> dict[str, list[tuple[str, float]]]:
    """The ``k`` best classes per level with their margins (best first).

    Args:
        product_id: a product of the index (title, attributes and joint-fused vector as stored), or
        text: a new product's title, with ``image`` its photo (path or PIL image) when it has one and
            ``attributes`` its catalogue attributes (read when the recognizer was fitted with them).
    """
    if (product_id is None) == (text is None):
        raise ConfigError("categorize a product of the index by id, or a new product by its title (+ photo)")
    if (image is not None or attributes) and product_id is not None:
        raise ConfigError("a photo or attributes go with a new product's title, not with a product id")
    if k < 1:
        raise ConfigError(f"k must be >= 1, not {k}")
    if product_id is not None and product_id not in service.index:
        raise NotFoundError(f"product '{product_id}' is not in the index")
    if product_id is not None:
        product = service.index.get_products([product_id])[0]
        title, words = product.title, recognizer.text(product.title, product.attributes)
    else:
        title = str(text)
        words = recognizer.text(title, attributes)
    return recognizer.top_k(words, _vector(service, recognizer, product_id, title, image), k)


def _check_inputs(service: SearchService, recognizer: CategoryRecognizer) -> None:
    inputs = recognizer.cfg.inputs
    if inputs and (inputs != "joint-fused" or not service.joint):
        raise ConfigError(
            f"this recognizer reads {inputs!r} vectors; search and serve apply recognizers fitted with --run "
            "(joint-fused) on an index built with that run's model, or fitted on title words alone"
        )


def _vector(
    service: SearchService,
    recognizer: CategoryRecognizer,
    product_id: str | None,
    title: str,
    image: ImageInput | None,
) -> np.ndarray | None:
    _check_inputs(service, recognizer)
    if not recognizer.cfg.inputs:
        return None
    if product_id is not None:
        vec: np.ndarray = service.index.get_vectors("joint-fused", [product_id])[0]
        return vec
    from samestyle.pipeline.joint import project

    txt = service.joint_text_input([title])
    if image is None:  # no photo: the fused vector is the text vector (as at indexing)
        return project(service.load_model(), None, txt)["text"][0]
    img = service.joint_image_input(Path(image) if isinstance(image, str) else image)
    fused: np.ndarray = project(service.load_model(), img, txt)["fused"][0]
    return fused


def categorize_index(service: SearchService, recognizer: CategoryRecognizer, batch: int = 4096) -> pa.Table:
    """Every product of the index: one row per product and level with ``product_id``, ``level``,
    ``label`` (the catalogue's, "" when it has none), ``predicted``, ``margin`` (the predicted class's) and
    ``agrees``. Disagreements first, most confident first; then the rest by product id."""
    _check_inputs(service, recognizer)
    ids = sorted(service.index.metadata.ids)
    cols: dict[str, list[Any]] = {k: [] for k in ("product_id", "level", "label", "predicted", "margin")}
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        products = service.index.get_products(chunk)
        titles = [recognizer.text(p.title, p.attributes) for p in products]
        dense = service.index.get_vectors("joint-fused", chunk) if recognizer.cfg.inputs else None
        for level, weights in recognizer.levels.items():
            scores = recognizer.scores(titles, dense, level)  # [B, C]
            best = scores.argmax(1)
            d = level_depth(level)
            cols["product_id"] += chunk
            cols["level"] += [level] * len(chunk)
            cols["label"] += [
                p.category[d] if d is not None and len(p.category) > d else "" for p in products
            ]
            cols["predicted"] += [weights.classes[i] for i in best]
            cols["margin"] += scores[np.arange(len(chunk)), best].tolist()
    table = pa.table({**cols, "margin": pa.array(cols["margin"], pa.float32())})
    agrees = pc.equal(table["label"], table["predicted"])
    table = table.append_column("agrees", agrees)
    order = np.lexsort((np.asarray(table["product_id"]), -np.asarray(table["margin"]), np.asarray(agrees)))
    return table.take(pa.array(order))


def write_table(table: pa.Table, out: str | Path) -> Path:
    """``table`` to a .parquet or .csv file, atomically."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from samestyle.fsio import atomic_path

    out = Path(out)
    if out.suffix not in (".parquet", ".csv"):
        raise ConfigError(f"{out}: write the categories to a .parquet or .csv file")
    with atomic_path(out, suffix=out.suffix) as tmp:
        if out.suffix == ".parquet":
            pq.write_table(table, tmp)
        else:
            pacsv.write_csv(table, tmp)
    return out


__all__ = ["categorize", "categorize_index", "write_table"]
