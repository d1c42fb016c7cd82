"""SearchService: turns a query (text, image, product id) into a vector and searches the right space.

Without a trained model, spaces are the frozen backbones' own: a text query searches "text" and an
image query "image". When the index was built from embeddings with a model run (``samestyle embed
--model``), queries are projected by that model into the joint space, and every modality can search
every other: the default target is "joint-image" (text->image, image->image). Loading needs no flags:
the index manifest records the encoders' registry keys and the model run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from samestyle.errors import ConfigError, NotFoundError
from samestyle.index.metadata import Filter
from samestyle.index.product_index import ProductIndex
from samestyle.models import IMAGE_ENCODERS, TEXT_ENCODERS
from samestyle.models.base import ImageEncoder, TextEncoder
from samestyle.pipeline.embeddings import l2_normalize
from samestyle.search.compose import NEEDS_TITLE, compose_vectors
from samestyle.search.dedupe import DedupeConfig, DedupeResult, calibrate, find_duplicates
from samestyle.search.explain import explain_hits, family, product_vectors
from samestyle.search.session import Rocchio, SessionStore
from samestyle.types import Hit, Product

ImageInput = str | Path | Image.Image


@dataclass
class SearchService:
    """Search one index. Encoders and the joint model are created on first use and kept."""

    index: ProductIndex
    text_encoder: TextEncoder | None = None
    image_encoder: ImageEncoder | None = None
    encoder_keys: dict[str, str] = field(default_factory=dict)
    model_run: str | None = None
    sessions: SessionStore = field(default_factory=SessionStore)
    rocchio: Rocchio = field(default_factory=Rocchio)
    _model: Any = None
    _run_cfg: Any = None
    _extractor: Any = None
    _text_lower: Any = None
    _dedupe_cache: dict[Any, DedupeResult] = field(default_factory=dict)

    @classmethod
    def open(cls, index_dir: str | Path) -> SearchService:
        index = ProductIndex.open(index_dir)
        meta = index.manifest.get("meta", {})
        return cls(index=index, encoder_keys=dict(meta.get("encoders", {})), model_run=meta.get("model_run"))

    @property
    def joint(self) -> bool:
        return self.model_run is not None and "joint-image" in self.index.spaces()

    def _text(self) -> TextEncoder:
        if self.text_encoder is None:
            if not self.encoder_keys.get("text"):
                raise ConfigError("this index has no text encoder: text queries are not possible")
            self.text_encoder = TEXT_ENCODERS.build(self.encoder_keys["text"])
        return self.text_encoder

    def _image(self) -> ImageEncoder:
        if self.image_encoder is None:
            if not self.encoder_keys.get("image"):
                raise ConfigError("this index has no image encoder: image queries are not possible")
            self.image_encoder = IMAGE_ENCODERS.build(self.encoder_keys["image"])
        return self.image_encoder

    def load_model(self) -> Any:
        from samestyle.train.run import load_run

        if self._model is None:
            if self.model_run is None:
                raise ConfigError("this index has no trained model: joint spaces are not available")
            self._model, self._run_cfg = load_run(self.model_run)
        return self._model

    def _project(self, image: np.ndarray | None, text: np.ndarray | None, which: str) -> np.ndarray:
        from samestyle.pipeline.joint import project

        return project(self.load_model(), image, text)[which]

    def joint_image_input(self, image: str | Path | Image.Image) -> np.ndarray:
        """What the run's image tower reads for a new image: the pooled vector, or cached-kind activations."""
        from samestyle.models.towers import tower_input_kind

        self.load_model()
        kind = tower_input_kind(self._run_cfg.tower)
        if kind == "pooled":
            return l2_normalize(self._image().encode_images([image]))
        from samestyle.features.activations import ActivationExtractor, query_activations

        if self._extractor is None:
            self._extractor = ActivationExtractor(kind)
        values, ok = query_activations(self._extractor, [image])
        if not ok[0]:
            raise ConfigError(f"cannot read the query image {image}")
        return values

    def joint_text_input(self, texts: Sequence[str]) -> np.ndarray:
        """What the run's text tower reads for new texts: frozen text vectors, or (a run with a text tower)
        MiniLM hidden states cut where the catalogue's were cached, float16 as stored, so a catalogue title
        typed as a query gets its catalogue vector."""
        self.load_model()
        tower = self._run_cfg.text_tower
        if tower.kind == "pooled":
            return self._text().encode_texts(list(texts))
        if self._text_lower is None:
            from samestyle.models.text_towers import MiniLMHiddenStates

            self._text_lower = MiniLMHiddenStates(tower)
        values: np.ndarray = self._text_lower.encode_many(list(texts))
        return values

    def _default_space(self, modality: str) -> str:
        return "joint-image" if self.joint else modality

    def encode_text_query(self, text: str, space: str | None = None) -> tuple[np.ndarray, str]:
        """The query vector for ``space`` (default: joint-image with a model, else "text") and that space.

        A joint space gets the model's projection of the text (through its text tower, if it has one); a
        frozen space the frozen text vector itself.
        """
        space = space or self._default_space("text")
        if space.startswith("joint-"):
            return self._project(None, self.joint_text_input([text]), "text"), space
        return self._text().encode_texts([text]), space

    def encode_image_query(
        self, image: str | Path | Image.Image, space: str | None = None
    ) -> tuple[np.ndarray, str]:
        space = space or self._default_space("image")
        if space.startswith("joint-"):
            return self._project(self.joint_image_input(image), None, "image"), space
        return l2_normalize(self._image().encode_images([image])), space

    def search_text(
        self, text: str, k: int = 10, filter: Filter | None = None, space: str | None = None
    ) -> list[Hit]:
        vec, space = self.encode_text_query(text, space)
        return self._search(space, vec, k, filter, {"text": vec[0]} if space.startswith("joint-") else {})

    def search_image(
        self, image: ImageInput, k: int = 10, filter: Filter | None = None, space: str | None = None
    ) -> list[Hit]:
        vec, space = self.encode_image_query(image, space)
        return self._search(space, vec, k, filter, {"image": vec[0]})

    def search_image_text(
        self,
        image: ImageInput,
        text: str,
        k: int = 10,
        filter: Filter | None = None,
        space: str = "joint-fused",
    ) -> list[Hit]:
        """A new product (its image and title) fused by the model, searched in ``space`` (a joint space)."""
        if not self.joint:
            raise ConfigError("image+text queries need an index built with a trained model (embed --model)")
        txt = self.joint_text_input([text])
        vec = self._project(self.joint_image_input(image), txt, "fused")
        return self._search(space, vec, k, filter, {"fused": vec[0]})

    def _product(self, product_id: str) -> Product:
        if product_id not in self.index:
            raise NotFoundError(f"product '{product_id}' is not in the index")
        return self.index.get_products([product_id])[0]

    def similar(
        self,
        product_id: str,
        k: int = 10,
        space: str | None = None,
        filter: Filter | None = None,
        include_self: bool = False,
        other_suppliers: bool = False,
        query_space: str | None = None,
    ) -> list[Hit]:
        """Products closest to a catalogue product in ``space`` (same style; default joint-fused).

        ``query_space`` picks which of the product's vectors is the query (default: its vector in
        ``space``); across joint spaces this is e.g. its image against the gallery's texts.

        ``other_suppliers`` leaves out the products of the query's own supplier and ``include_self=False``
        the product itself, both inside the index search, so ``k`` hits come back whenever ``k`` exist.
        """
        product = self._product(product_id)
        space = space or ("joint-fused" if self.joint else "image")
        query_space = query_space or space
        if query_space != space and not (space.startswith("joint-") and query_space.startswith("joint-")):
            raise ConfigError(f"query space '{query_space}' and space '{space}' must both be joint spaces")
        if query_space in self.index.spaces() and product_id not in self.index.space(query_space):
            raise ConfigError(
                f"product '{product_id}' has no vector in space '{query_space}' (a product without a usable "
                "image has none in image spaces: try --space text)"
            )
        flt = filter or Filter()
        drop_ids = set() if include_self else {product_id}
        drop_suppliers = {product.supplier_id} if other_suppliers and product.supplier_id else set()
        flt = dataclasses.replace(
            flt,
            exclude_ids=flt.exclude_ids | drop_ids,
            exclude_suppliers=flt.exclude_suppliers | drop_suppliers,
        )
        own = product_vectors(self.index, product_id, space)
        if query_space not in self.index.spaces():
            raise ConfigError(
                f"no space '{query_space}' in this index (have: {', '.join(self.index.spaces())})"
            )
        vec = self.index.get_vectors(query_space, [product_id])
        return self._search(space, vec, k, flt, own, product)

    def compose(
        self,
        *,
        modifier: str,
        product_id: str | None = None,
        image: ImageInput | None = None,
        k: int = 10,
        method: str = "auto",
        filter: Filter | None = None,
        space: str = "joint-image",
    ) -> list[Hit]:
        """ "Like this, but <modifier>": a product (by id) or an image moved by a text, searched in ``space``.

        Methods: :data:`samestyle.search.compose.METHODS`, or "auto": ``delta`` for a product (the best
        on the composed-query benchmark) and ``fused`` for an image (the best of those that need no title).
        A product query leaves the product itself out.
        """
        if not self.joint:
            raise ConfigError("composed queries need an index built with a trained model (embed --model)")
        if (product_id is None) == (image is None):
            raise ConfigError("compose: give exactly one of product_id and image")
        if not modifier.strip():
            raise ConfigError("compose: the modifier text is empty")
        if method == "auto":
            method = "delta" if product_id is not None else "fused"
        product = None
        titles = None
        flt = filter or Filter()
        if product_id is not None:
            product = self._product(product_id)
            frozen = self._product_image_input(product_id)
            titles = [product.title]
            flt = dataclasses.replace(flt, exclude_ids=flt.exclude_ids | {product_id})
        else:
            assert image is not None
            if method in NEEDS_TITLE:
                raise ConfigError(f"composition '{method}' needs a product id (it uses the product's title)")
            frozen = self.joint_image_input(image)
        self.load_model()
        from samestyle.pipeline.joint import project

        vec = compose_vectors(
            method,
            lambda i, t: project(self._model, i, t),
            self.joint_text_input,
            frozen,
            [modifier],
            titles,
        )
        return self._search(space, vec, k, flt, {}, product)

    def _product_image_input(self, product_id: str) -> np.ndarray:
        """The model's image input for a catalogue product, from the index (pooled towers only)."""
        from samestyle.models.towers import tower_input_kind

        self.load_model()
        if tower_input_kind(self._run_cfg.tower) != "pooled":
            raise ConfigError(
                "this model's image tower reads backbone activations: compose with the image file"
            )
        if "image" not in self.index.spaces() or product_id not in self.index.space("image"):
            raise ConfigError(f"product '{product_id}' has no image vector to compose from")
        return self.index.get_vectors("image", [product_id])

    # ---- interactive search ---------------------------------------------------------------------
    def start_session(
        self,
        *,
        text: str | None = None,
        image: ImageInput | None = None,
        product_id: str | None = None,
        k: int = 10,
        filter: Filter | None = None,
        space: str | None = None,
    ) -> tuple[str, list[Hit]]:
        """Open a refinement session from one query; returns its id and the first ``k`` results.

        ``space``: where a text or image query searches (default as in :meth:`search_text` /
        :meth:`search_image`).
        """
        if sum(x is not None for x in (text, image, product_id)) != 1:
            raise ConfigError("start a session with exactly one of text, image and product_id")
        seen: set[str] = set()
        if text is not None:
            vec, space = self.encode_text_query(text, space)
        elif image is not None:
            vec, space = self.encode_image_query(image, space)
        else:
            assert product_id is not None
            self._product(product_id)
            space = "joint-fused" if self.joint else "image"
            if product_id not in self.index.space(space):
                space = "joint-text" if self.joint else "text"
            vec, seen = self.index.get_vectors(space, [product_id]), {product_id}
        session = self.sessions.create(space, l2_normalize(vec)[0], filter)
        session.seen |= seen
        return session.id, self.refine(session.id, k=k)

    def refine(
        self,
        session_id: str,
        liked: Sequence[str] = (),
        disliked: Sequence[str] = (),
        k: int = 10,
        filter: Filter | None = None,
    ) -> list[Hit]:
        """Record feedback and return the next ``k`` results, none of them shown before in the session."""
        session = self.sessions.get(session_id)
        unknown = [pid for pid in (*liked, *disliked) if pid not in self.index]
        if unknown:
            raise NotFoundError(f"feedback names products not in the index: {', '.join(unknown[:5])}")
        session.feedback(liked, disliked)
        target = self.index.space(session.space)

        def vecs(ids: list[str]) -> np.ndarray:
            have = [pid for pid in ids if pid in target]
            return (
                self.index.get_vectors(session.space, have) if have else np.zeros((0, target.dim), np.float32)
            )

        query = self.rocchio.refine(session.query, vecs(session.liked), vecs(session.disliked))
        flt = filter or session.filter or Filter()
        flt = dataclasses.replace(flt, exclude_ids=flt.exclude_ids | session.seen)
        hits = self._search(session.space, query[None], k, flt, {})
        session.seen.update(h.id for h in hits)
        session.rounds += 1
        return hits

    # ---- duplicates -----------------------------------------------------------------------------
    def duplicates(self, supplier: str | None = None, config: DedupeConfig | None = None) -> DedupeResult:
        """Duplicate listings in the whole catalogue or one supplier's (cached until the index changes)."""
        config = config or DedupeConfig()
        key = (supplier, repr(config), len(self.index), self.index.manifest.get("generation"))
        if key in self._dedupe_cache:
            return self._dedupe_cache[key]
        ids = self.index.metadata.ids
        if supplier:
            keep = self.index.metadata.mask(Filter(suppliers=frozenset({supplier})))
            ids = [pid for pid, ok in zip(ids, keep.tolist(), strict=True) if ok]
        with self.index.reading():
            vectors = self.dedupe_vectors(ids, config)
        result = find_duplicates(ids, vectors, config) if ids else DedupeResult([])
        self._dedupe_cache = {key: result}
        return result

    def dedupe_vectors(self, ids: Sequence[str], config: DedupeConfig) -> dict[str, np.ndarray]:
        """Per-modality matrices over ``ids`` (zero rows where a product lacks a modality) for dedupe.

        The joint spaces when the index has a model, else the frozen ones; only modalities with a threshold.
        """
        vectors = {}
        for modality, name in family("joint-image" if self.joint else "image").items():
            if name not in self.index.spaces() or modality not in config.thresholds:
                continue
            target = self.index.space(name)
            rows = [i for i, pid in enumerate(ids) if pid in target]
            mat = np.zeros((len(ids), target.dim), np.float32)
            if rows:
                mat[rows] = self.index.get_vectors(name, [ids[i] for i in rows])
            vectors[modality] = mat
        return vectors

    def calibrate_dedupe(
        self, labels: Mapping[str, str], config: DedupeConfig | None = None
    ) -> tuple[DedupeConfig, float]:
        """Thresholds tuned on labelled products (id -> group): best mean per-item F1 on them."""
        unknown = [pid for pid in labels if pid not in self.index]
        if unknown:
            raise NotFoundError(
                f"calibration labels name products not in the index: {', '.join(unknown[:5])}"
            )
        ids = list(labels)
        groups = np.unique([labels[i] for i in ids], return_inverse=True)[1]
        config = config or DedupeConfig()
        return calibrate(self.dedupe_vectors(ids, config), groups, config)

    def _search(
        self,
        space: str,
        vec: np.ndarray,
        k: int,
        filter: Filter | None,
        query_vectors: dict[str, np.ndarray] | None = None,
        query_product: Product | None = None,
    ) -> list[Hit]:
        if k < 1:
            raise ConfigError(f"k must be at least 1 (got {k})")
        if space not in self.index.spaces():
            raise ConfigError(f"no space '{space}' in this index (have: {', '.join(self.index.spaces())})")
        main = l2_normalize(np.asarray(vec, np.float32).reshape(1, -1))
        with self.index.reading():  # the hits and their explanations from one state of the index
            hits = self.index.search(space, main, k, filter=filter)[0]
            return explain_hits(self.index, hits, space, query_vectors or {}, main[0], query_product)

    def describe(self) -> dict[str, Any]:
        return {
            "spaces": self.index.spaces(),
            "encoders": self.encoder_keys,
            "model_run": self.model_run,
            "products": len(self.index),
        }
