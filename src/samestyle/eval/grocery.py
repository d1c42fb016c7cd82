"""The seed paper's retrieval table on the Grocery Store validation set: shelf photo -> catalogue product.

Protocol (:func:`grocery_table` scores it, :func:`run_grocery_eval` builds its inputs):

- **Gallery**: the 81 catalogue products of :func:`samestyle.datasets.grocery.grocery_catalog_products`,
  one per fine class, each in three forms: its *iconic image* (``image``), its *description* text
  (``text``: the web-shop ``*_Description.txt`` only, without the title, which is the class name; the
  title only stands in where a description is empty) and their fusion (``image+text``).
- **Queries**: the 296 shelf photos of the ``val`` split (:func:`~samestyle.datasets.grocery.grocery_photos`),
  each a query. The relevant gallery item is the catalogue product of the photo's fine class
  (:attr:`GroceryPhoto.product_id`); group = fine class id, so every query has exactly one relevant item
  (the val photos cover 60 of the 81 classes; the other 21 products are distractors). Where a row needs a
  query *text*, it is the photo's class name as a shopper would type it (the product title, e.g.
  ``"Granny Smith"``, ``"Arla Standard Milk"``): a **label-derived** query, not text the photo carries.
  Text-only rows thus have 60 distinct queries, each counted once per val photo of its class.
- **Rows** (query -> gallery): ``image->image`` (photo vs iconic image), ``image->text`` (photo vs
  description), ``image->image+text`` (photo vs fused product), ``text->text`` (class name vs
  description), ``text->image`` (class name vs iconic image), ``text->image+text`` (class name vs fused
  product), ``image+text->image+text`` (the photo fused with its class name vs fused product).
- **Metrics**: :func:`samestyle.eval.protocols.group_retrieval` over the full 81-item gallery, cosine
  similarity (rows are L2-normalised here), pessimistic ranks on ties: ``mrr`` (primary), ``r@1``,
  ``r@5``, ``r@10``, ``r@20`` (hit rates; one relevant item, so also recalls), ``n_queries``.
- **Methods** (:func:`run_grocery_eval`):

  * ``"frozen"``: the backbones' own spaces, EfficientNet-Lite0 pooled image features (L2-normalised) and
    MiniLM text vectors. Image and text live in different spaces and nothing fuses them, so only the
    same-modality rows ``image->image`` and ``text->text`` are defined; the others are skipped.
  * ``"cca"``: a :class:`~samestyle.models.cca.CCAMap` (256-d) fitted on the grocery **train** photos
    (frozen image features) paired with their class's description (frozen text features); no val data
    is used. Fused vectors are ``l2_normalize(image + text)`` in the CCA space, as in
    :class:`~samestyle.eval.methods.CCAMethod`; the query fusion uses the photo and the class name.
  * ``"joint"``: a trained joint-model run (``samestyle train``; the benchmark uses
    ``runs/bench/default``, trained on Myntra fashion products only), so this is a **zero-shot
    transfer** to groceries: nothing is fitted on grocery data. Photos, iconic images, descriptions and
    class names are projected with :func:`samestyle.pipeline.joint.project`; the image input is the
    L2-normalised pooled feature (what the Myntra embeddings hold) for a ``"pooled"`` tower, or the
    backbone activations the tower needs (:func:`~samestyle.features.activations.query_activations`,
    not cached) otherwise.
    The same method scores runs trained **on grocery train** (:mod:`samestyle.train.grocery`, rows
    ``grocery:<variant>`` of ``benchmarks/bench_grocery.py --train-grocery``), scored by
    :mod:`samestyle.eval.grocery_joint`; their model selection runs the same scoring on photos carved
    from train, never on these val photos.

Frozen image features of the photos and iconic images are cached in a
:class:`~samestyle.features.cache.FeatureCache` under ``cache_dir()/features`` keyed by
``("grocery:<path relative to the dataset folder>", sha256 of the file)``, so re-runs only encode new or
changed files. Texts (81 descriptions, 81 class names) are encoded each run.

Example:
    >>> out = run_grocery_eval("cca")  # doctest: +SKIP
    >>> out["image->image"]["mrr"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.datasets.grocery import GroceryPhoto, grocery_catalog_products, grocery_photos
from samestyle.errors import SamestyleError
from samestyle.eval.protocols import group_retrieval
from samestyle.features.cache import FeatureCache, Key
from samestyle.features.extract import file_sha256
from samestyle.models.base import ImageEncoder, TextEncoder, l2_normalize

log = logging.getLogger(__name__)

KS = (1, 5, 10, 20)
METHODS = ("frozen", "cca", "joint")
# row name -> (query modality, gallery modality); modalities: "image", "text", "fused" (image+text)
ROWS: dict[str, tuple[str, str]] = {
    "image->image": ("image", "image"),
    "image->text": ("image", "text"),
    "image->image+text": ("image", "fused"),
    "text->text": ("text", "text"),
    "text->image": ("text", "image"),
    "text->image+text": ("text", "fused"),
    "image+text->image+text": ("fused", "fused"),
}
SAME_MODALITY_ROWS = ("image->image", "text->text")
CCA_DIM = 256
_KEY_PREFIX = "grocery:"
_PUT_EVERY = 256  # photos encoded between cache writes (a killed run keeps its progress)


def grocery_table(
    query_img: np.ndarray | None,
    query_txt: np.ndarray | None,
    gal_img: np.ndarray | None,
    gal_txt: np.ndarray | None,
    gal_fused: np.ndarray | None,
    query_fused: np.ndarray | None,
    query_groups: Sequence[Any] | np.ndarray,
    gallery_groups: Sequence[Any] | np.ndarray,
    rows: Sequence[str] | None = None,
    ks: Sequence[int] = KS,
) -> dict[str, dict[str, float]]:
    """Score the retrieval rows of the grocery protocol (see the module docstring) on given vectors.

    Args:
        query_img, query_txt, query_fused: ``[Q, D]`` query vectors by modality (photo, class name, photo
            fused with class name); ``None`` where the method has none.
        gal_img, gal_txt, gal_fused: ``[G, D]`` gallery vectors (iconic image, description, fused).
        query_groups: ``[Q]`` fine class of each query. gallery_groups: ``[G]`` fine class of each item.
        rows: the rows to compute (names of ``ROWS``), default all; e.g. ``SAME_MODALITY_ROWS`` where
            image and text vectors are not in one space.
        ks: R@k cut-offs.

    Returns:
        row name -> ``group_retrieval`` metrics (``mrr`` primary, ``r@k``, ``n_queries``, ``n_skipped``),
        in ``ROWS`` order; a row whose query or gallery side is ``None`` is left out.

    Raises:
        ValueError: an unknown row name, or query and gallery vectors of one row differ in width.
    """
    wanted = list(ROWS) if rows is None else list(rows)
    unknown = [r for r in wanted if r not in ROWS]
    if unknown:
        raise ValueError(f"unknown grocery rows {unknown}; known: {', '.join(ROWS)}")
    queries = {"image": query_img, "text": query_txt, "fused": query_fused}
    gallery = {"image": gal_img, "text": gal_txt, "fused": gal_fused}
    out: dict[str, dict[str, float]] = {}
    for name in ROWS:
        if name not in wanted:
            continue
        q, g = queries[ROWS[name][0]], gallery[ROWS[name][1]]
        if q is None or g is None:
            log.info("grocery row %s skipped: no %s vectors", name, "query" if q is None else "gallery")
            continue
        qv, gv = np.asarray(q), np.asarray(g)
        if qv.ndim != 2 or gv.ndim != 2 or qv.shape[1] != gv.shape[1]:
            raise ValueError(
                f"row {name}: query vectors {qv.shape} and gallery vectors {gv.shape} are not in one space"
            )
        out[name] = group_retrieval(l2_normalize(qv), query_groups, l2_normalize(gv), gallery_groups, ks=ks)
    return out


@dataclass
class GroceryFeatures:
    """Frozen backbone features of everything the grocery protocol needs (image rows L2-normalised).

    Attributes:
        query_groups: ``[Q]`` fine class of each val photo. gallery_groups: ``[81]`` fine class ids.
        photo_paths, iconic_paths: the val photos and the gallery's iconic images, in row order.
        photo_img: ``[Q, Di]`` val photos. query_txt: ``[Q, Dt]`` class name of each photo's class.
        gal_img: ``[G, Di]`` iconic images. gal_txt: ``[G, Dt]`` descriptions.
        train_img: ``[T, Di]`` train photos; train_groups: ``[T]``; train_paths: their files (None unless
            asked for).
        class_names: query text of each gallery row (the product title).
        name_txt: ``[G, Dt]`` the class-name (query text) vector of each gallery row.
        encoders: modality -> encoder name.
    """

    query_groups: np.ndarray
    gallery_groups: np.ndarray
    photo_paths: list[Path]
    iconic_paths: list[Path]
    photo_img: np.ndarray
    query_txt: np.ndarray
    gal_img: np.ndarray
    gal_txt: np.ndarray
    class_names: list[str]
    encoders: dict[str, str]
    train_img: np.ndarray | None = None
    train_groups: np.ndarray | None = None
    train_paths: list[Path] | None = None
    name_txt: np.ndarray | None = None

    def train_txt(self) -> np.ndarray:
        """``[T, Dt]``: the description of each train photo's class (the CCA training pairs)."""
        if self.train_groups is None:
            raise SamestyleError("these grocery features were built without the train photos")
        return self.gal_txt[_rows_of(self.gallery_groups, self.train_groups)]


def _rows_of(gallery_groups: np.ndarray, groups: np.ndarray) -> np.ndarray:
    pos = {int(g): i for i, g in enumerate(gallery_groups)}
    return np.array([pos[int(g)] for g in groups], dtype=np.int64)


def _spread(photos: list[GroceryPhoto], limit: int | None) -> list[GroceryPhoto]:
    """At most ``limit`` photos, evenly spaced over the file order (so over the classes)."""
    if limit is None or limit >= len(photos):
        return photos
    idx = np.linspace(0, len(photos) - 1, num=max(limit, 0)).round().astype(int)
    return [photos[i] for i in idx]


def cached_image_features(
    encoder: ImageEncoder, paths: Sequence[Path], root: Path, cache: FeatureCache | None
) -> np.ndarray:
    """Raw pooled features ``[N, dim]`` of image files, read from / written to ``cache``.

    Keys are ``("grocery:<path relative to root>", sha256 of the file)`` (the absolute path when a file
    lies outside ``root``).
    """
    keys: list[Key] = []
    for p in paths:
        path = Path(p)
        try:
            name = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            name = str(path.resolve())
        keys.append((_KEY_PREFIX + name, file_sha256(path)))
    if cache is None:
        return encoder.encode_images(list(paths))
    out, found = cache.lookup(keys)
    missing = np.flatnonzero(~found)
    log.info(
        "grocery image features: %d files, %d cached, %d to encode", len(keys), found.sum(), len(missing)
    )
    for s in range(0, len(missing), _PUT_EVERY):
        part = missing[s : s + _PUT_EVERY]
        vecs = encoder.encode_images([paths[i] for i in part])
        out[part] = vecs
        cache.put([keys[i] for i in part], vecs)
    return out


def grocery_features(
    image_encoder: ImageEncoder,
    text_encoder: TextEncoder,
    *,
    include_train: bool = False,
    data_dir: str | Path | None = None,
    feature_cache: Path | None = None,
    use_cache: bool = True,
    val_limit: int | None = None,
    train_limit: int | None = None,
) -> GroceryFeatures:
    """Encode the gallery and the val photos (and the train photos when ``include_train``).

    Args:
        image_encoder, text_encoder: frozen backbones (e.g. from ``build_encoders(..., threads=1)``).
        include_train: also encode the train photos (needed by the CCA method only).
        data_dir: folder holding ``grocery_trainval.tar.gz`` (default the shared data folder).
        feature_cache: root of the image feature cache (default ``cache_dir()/features``).
        use_cache: False encodes everything and writes nothing.
        val_limit, train_limit: keep at most this many photos, evenly spread (quick checks only; the
            protocol uses all of them).
    """
    products, root, _ = grocery_catalog_products(data_dir)
    val = _spread(grocery_photos("val", data_dir), val_limit)
    cache = None
    if use_cache:
        from samestyle.paths import cache_dir

        cache = FeatureCache(feature_cache or cache_dir() / "features", image_encoder.name, image_encoder.dim)
    gallery_groups = np.array([int(p.attributes["fine_id"]) for p in products], dtype=np.int64)
    iconic = [root / str(p.image) for p in products]
    names = [p.title for p in products]
    texts = [p.description or p.title for p in products]
    query_groups = np.array([ph.fine_id for ph in val], dtype=np.int64)
    name_vecs = text_encoder.encode_texts(names)  # [G, Dt]
    feats = GroceryFeatures(
        query_groups=query_groups,
        gallery_groups=gallery_groups,
        photo_paths=[ph.path for ph in val],
        iconic_paths=iconic,
        photo_img=l2_normalize(cached_image_features(image_encoder, [ph.path for ph in val], root, cache)),
        query_txt=name_vecs[_rows_of(gallery_groups, query_groups)],
        gal_img=l2_normalize(cached_image_features(image_encoder, iconic, root, cache)),
        gal_txt=text_encoder.encode_texts(texts),
        class_names=names,
        encoders={"image": image_encoder.name, "text": text_encoder.name},
        name_txt=name_vecs,
    )
    if include_train:
        train = _spread(grocery_photos("train", data_dir), train_limit)
        feats.train_img = l2_normalize(
            cached_image_features(image_encoder, [ph.path for ph in train], root, cache)
        )
        feats.train_groups = np.array([ph.fine_id for ph in train], dtype=np.int64)
        feats.train_paths = [ph.path for ph in train]
    return feats


def _frozen_table(f: GroceryFeatures) -> dict[str, dict[str, float]]:
    return grocery_table(
        f.photo_img, f.query_txt, f.gal_img, f.gal_txt, None, None,
        f.query_groups, f.gallery_groups, rows=SAME_MODALITY_ROWS,
    )  # fmt: skip


def _cca_table(f: GroceryFeatures, dim: int = CCA_DIM) -> dict[str, dict[str, float]]:
    from samestyle.models.cca import CCAMap

    if f.train_img is None:
        raise SamestyleError("the CCA method needs the train photos: grocery_features(include_train=True)")
    cca = CCAMap(dim=dim).fit(f.train_img, f.train_txt())
    q_img, q_txt = cca.image(f.photo_img), cca.text(f.query_txt)
    g_img, g_txt = cca.image(f.gal_img), cca.text(f.gal_txt)
    return grocery_table(
        q_img, q_txt, g_img, g_txt, l2_normalize(g_img + g_txt), l2_normalize(q_img + q_txt),
        f.query_groups, f.gallery_groups,
    )  # fmt: skip


def run_grocery_eval(
    method_name: str,
    run_dir: str | Path | None = None,
    *,
    features: GroceryFeatures | None = None,
    image_encoder: str = "efficientnet-lite0",
    text_encoder: str = "minilm",
    threads: int = 1,
    data_dir: str | Path | None = None,
    feature_cache: Path | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, dict[str, float]]:
    """The grocery retrieval table of one method (see the module docstring for the protocol).

    Args:
        method_name: "frozen", "cca" or "joint" (the latter needs ``run_dir``).
        run_dir: a finished ``samestyle train`` run folder (joint only).
        features: precomputed :func:`grocery_features` (with ``include_train=True`` for "cca"), to score
            several methods on one encoding; built here otherwise (with the named encoders, ``threads``).
        data_dir: folder holding ``grocery_trainval.tar.gz``. feature_cache: image feature cache root.
        out_dir: when given, also write ``eval.json`` / ``eval.md`` there (``eval.report.write_report``).

    Returns:
        row name -> metrics (``mrr``, ``r@1``, ``r@5``, ``r@10``, ``r@20``, ``n_queries``, ...).
    """
    if method_name not in METHODS:
        raise SamestyleError(f"unknown grocery method {method_name!r}; choose one of: {', '.join(METHODS)}")
    if method_name == "joint" and run_dir is None:
        raise SamestyleError("the joint method needs run_dir (a 'samestyle train' run folder)")
    if features is None:
        from samestyle.pipeline.encoders import build_encoders

        img_enc, txt_enc = build_encoders(image_encoder, text_encoder, threads=threads)
        assert img_enc is not None and txt_enc is not None
        features = grocery_features(
            img_enc,
            txt_enc,
            include_train=method_name == "cca",
            data_dir=data_dir,
            feature_cache=feature_cache,
        )
    if method_name == "frozen":
        table = _frozen_table(features)
    elif method_name == "cca":
        table = _cca_table(features)
    else:
        assert run_dir is not None
        from samestyle.eval.grocery_joint import joint_table

        table = joint_table(features, run_dir, threads)
    if out_dir is not None:
        from samestyle.eval.report import write_report

        meta: dict[str, Any] = {
            "protocol": "grocery val: 296 shelf photos -> 81 catalogue products (samestyle.eval.grocery)",
            "method": method_name,
            "encoders": features.encoders,
        }
        if run_dir is not None:
            meta["run"] = str(run_dir)
        write_report({f"group_retrieval/{row}": m for row, m in table.items()}, out_dir, meta)
    return table


def render_markdown(results: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """``{method: {row: metrics}}`` as one Markdown table: method, row, MRR, R@1, R@5, R@10, R@20."""
    cols = [("MRR", "mrr")] + [(f"R@{k}", f"r@{k}") for k in KS]
    lines = [
        "| method | query -> gallery | " + " | ".join(c for c, _ in cols) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in cols) + " |",
    ]
    for method, table in results.items():
        for row, m in table.items():
            cells = [f"{float(m[k]):.4f}" if k in m else "" for _, k in cols]
            lines.append(f"| {method} | {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = [
    "KS",
    "METHODS",
    "ROWS",
    "SAME_MODALITY_ROWS",
    "GroceryFeatures",
    "cached_image_features",
    "grocery_features",
    "grocery_table",
    "render_markdown",
    "run_grocery_eval",
]
