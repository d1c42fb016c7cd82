"""``samestyle search --rerank K``: re-order a bi-encoder's top K hits by the cross-encoder's matching score.

The FashionBERT / Kaleido-BERT deployment: the joint index retrieves, the cross-encoder re-scores the
first ``K`` (``K`` forward passes of a 2-layer transformer, ~2 ms each on one core). A text query is
scored against each hit's image patches; an image query against each hit's title. Patches of products
in the prepared pre-training subset are read from it, others are computed from the product image
(``featurize.PatchFeaturizer``). A run trained with residual matching adds the bi-encoder's cosine,
which the hit already carries (``Hit.scores``: "image" for a text query, "text" for an image query).

Example:
    >>> rr = CrossReranker("runs/pretrain/main", image_root=Path("images"))  # doctest: +SKIP
    >>> rr.rerank(service.search_text("red dress", k=50), 20, text="red dress")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samestyle.errors import ArtifactError, ConfigError
from samestyle.pretrain.featurize import PatchFeaturizer, Tokenizer, full_token_table, resolve_image
from samestyle.types import Hit

logger = logging.getLogger(__name__)


class CrossReranker:
    """A trained ``samestyle pretrain`` run, ready to re-score search hits.

    Args:
        run: the pretrain run folder (with an "itm" head).
        image_root: where relative product image paths live (the catalogue's image root).
        data: the prepared arrays of the run (read from ``pretrain.run.data_path`` when None).
        featurize, tokenizer, token_table: injectable parts (defaults: ONNX map extractor, MiniLM
            tokenizer, the full MiniLM word-embedding matrix); tests pass fakes.
    """

    def __init__(
        self,
        run: str | Path,
        image_root: Path | None = None,
        data: dict[str, np.ndarray] | None = None,
        featurize: Callable[[Sequence[Any]], np.ndarray] | None = None,
        tokenizer: Tokenizer | None = None,
        token_table: np.ndarray | None = None,
    ) -> None:
        from samestyle.pretrain.train import load_pretrain_run

        self.model, self.cfg = load_pretrain_run(run)
        if "itm" not in self.model.tasks:
            raise ConfigError(f"{run}: the run has no matching (itm) head; it cannot re-rank")
        if data is None:
            from samestyle.pretrain.prepare import load_data
            from samestyle.pretrain.run import data_path

            path = data_path(self.cfg)
            if not path.exists():
                raise ArtifactError(
                    f"{run}: its prepared data {path} is missing; re-run 'samestyle pretrain'"
                )
            data = load_data(path)
        self.rows = {str(pid): i for i, pid in enumerate(data["ids"])}
        self.patches = data["patches"]
        self.image_root = image_root
        self.featurize = featurize or PatchFeaturizer(data)
        self.tokenizer = tokenizer or Tokenizer(self.cfg.model.max_tokens)
        table = full_token_table() if token_table is None else token_table
        known = self.model.encoder.token_table.numpy()
        if not np.allclose(table[data["vocab"]], known, atol=1e-5):
            raise ArtifactError(
                f"{run}: its token table is not MiniLM's word embeddings; cannot read new titles"
            )
        self.model.encoder.token_table = torch.from_numpy(np.ascontiguousarray(table, np.float32))
        self.residual = bool(getattr(self.model.tasks["itm"], "residual", False))

    def product_patches(self, hits: Sequence[Hit]) -> tuple[np.ndarray, np.ndarray]:
        """``[N, 55, D]`` patches of the hits' products and ``[N]`` bool (False: no usable image)."""
        out = np.zeros((len(hits), *self.patches.shape[1:]), np.float32)
        ok = np.zeros(len(hits), bool)
        todo: list[tuple[int, Path]] = []
        for i, h in enumerate(hits):
            if h.id in self.rows:
                out[i], ok[i] = self.patches[self.rows[h.id]], True
            elif h.product is not None and (path := resolve_image(h.product.image, self.image_root)):
                todo.append((i, path))
        for i, path in todo:  # one at a time: a broken image costs only its own hit
            try:
                out[i], ok[i] = self.featurize([path])[0], True
            except Exception as exc:  # any unreadable image: that hit goes after the scored ones
                logger.warning("re-rank: product %s image %s not usable (%s)", hits[i].id, path, exc)
        return out, ok

    def scores(self, hits: Sequence[Hit], text: str | None = None, image: Any | None = None) -> np.ndarray:
        """Cross-encoder logits ``[N]`` of (query, hit) pairs; ``-inf`` where a hit cannot be scored."""
        if (text is None) == (image is None):
            raise ConfigError("re-ranking scores a text query or an image query (give exactly one)")
        n = len(hits)
        if text is not None:  # text -> each hit's image
            tokens = np.repeat(self.tokenizer([text]), n, axis=0)
            patches, ok = self.product_patches(hits)
            bi_key = "image"
        else:  # image -> each hit's title
            patches = np.repeat(self.featurize([image]), n, axis=0)
            titles = [h.product.title if h.product is not None else "" for h in hits]
            tokens = self.tokenizer(titles)
            ok = np.array([bool(t) for t in titles])
            bi_key = "text"
        bi = None
        if self.residual:
            missing = [h.id for h in hits if bi_key not in h.scores]
            if missing:
                raise ConfigError(
                    f"this cross-encoder adds the bi-encoder's '{bi_key}' similarity, which hit "
                    f"'{missing[0]}' lacks: search a joint index (embed --model) to re-rank with it"
                )
            bi = torch.tensor([float(h.scores[bi_key]) for h in hits])
        with torch.inference_mode():
            logits = self.model.itm_score(torch.from_numpy(tokens), torch.from_numpy(patches), bi).numpy()
        return np.where(ok, logits, -np.inf)

    def rerank(
        self, hits: Sequence[Hit], k: int, text: str | None = None, image: Any | None = None
    ) -> list[Hit]:
        """The first ``k`` hits by the cross-encoder (its logit in ``scores["cross"]``), then the rest."""
        if k < 1:
            raise ConfigError(f"--rerank K must be at least 1 (got {k})")
        top, rest = list(hits[:k]), list(hits[k:])
        if not top:
            return []
        s = self.scores(top, text=text, image=image)
        order = np.argsort(-s, kind="stable")
        ranked = [replace(top[j], scores={**top[j].scores, "cross": float(s[j])}) for j in order]
        return ranked + rest
