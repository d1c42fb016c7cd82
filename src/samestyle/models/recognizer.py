"""Category recognition from a product's title words and its embedding (the Shopee-style hybrid).

The joint model's own category head (:mod:`samestyle.losses.category`) reads only the 256-d joint vector.
Myntra's titles name the article type in most cases ("Puma Men Black Running **Sports Shoes**"), and a
bag of title words separates types that a 256-d vector blurs (T-shirt vs shirt, heels vs flats when the
title says so); the embedding adds what the words miss (the photo, synonyms). So the recogniser is one
linear model per label level over two blocks side by side:

* **title words**: TF-IDF over lower-cased word unigrams and bigrams, single characters kept (so
  "T-shirt" is the bigram "t shirt", not "shirt"), sublinear term frequency, L2-normalised rows;
* **attributes** (optional, ``RecognizerConfig.attributes``): named catalogue attributes read as one more
  word each, ``usage_sports`` for ``usage = "Sports"`` (Myntra's titles do not say whether a shoe is
  formal, casual or for sport; its ``usage`` attribute does);
* **embedding**: any dense vectors of the product (the run's joint-fused vector, or frozen image+text
  features), standardised with the training rows' mean and deviation, then scaled so a row's expected
  norm is ``dense_norm`` (the word block's rows have norm 1).

Each level is a one-vs-rest linear SVM (liblinear, squared hinge, ``C``); scores are its margins. Fitting
takes the training split only; ``dense_norm`` and ``C`` were chosen on the Myntra val split (BENCHMARKS.md).

Saved as one file, ``recognizer.safetensors``, written atomically: the idf, standardisation and one weight
matrix per level as tensors, the config, vocabulary and class names as JSON in its metadata (so a crash
cannot pair new weights with an old vocabulary).

Example:
    >>> import numpy as np
    >>> titles = ["red cotton t-shirt", "blue silk shirt", "black t-shirt", "white linen shirt"]
    >>> rec = CategoryRecognizer.fit(titles, None, {"type": np.array(["Tshirts", "Shirts"] * 2)})
    >>> rec.predict(["green t-shirt"], None, "type").tolist()
    ['Tshirts']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from samestyle.errors import ArtifactError, ConfigError

FILE = "recognizer.safetensors"
META_KEY = "samestyle.recognizer"
INPUTS = ("joint-fused", "image+text", "")
TOKEN_PATTERN = r"(?u)\b\w+\b"  # single characters kept: "t-shirt" -> "t", "shirt", "t shirt"
_NON_WORD = re.compile(r"\W+")


@dataclass(frozen=True)
class RecognizerConfig:
    """Args:
    ngram_max: longest word n-gram of the title block (1: words only).
    min_df: a word n-gram is kept when at least this many training titles have it.
    dense_norm: expected norm of the embedding block after standardising (0: title words only).
    C: the SVM's inverse regularisation strength.
    inputs: which vectors the embedding block reads, recorded for whoever applies the recogniser:
        "joint-fused" (a trained run's fused vector), "image+text" (frozen features side by side) or ""
        (none). Fitting does not look at it.
    attributes: catalogue attribute names read as words beside the title (:func:`recognizer_text`);
        whoever applies the recogniser passes a product's attributes through :meth:`CategoryRecognizer.text`.
    """

    ngram_max: int = 2
    min_df: int = 1
    dense_norm: float = 0.5
    C: float = 0.5
    inputs: str = "joint-fused"
    attributes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes", tuple(self.attributes))  # a JSON list when loaded
        if bad := [a for a in self.attributes if not re.fullmatch(r"\w+", a)]:
            raise ConfigError(f"recognizer: attribute names are single words, not {bad}")
        if self.ngram_max < 1 or self.min_df < 1:
            raise ConfigError(
                f"recognizer: ngram_max and min_df must be >= 1, not {self.ngram_max}, {self.min_df}"
            )
        if self.dense_norm < 0 or self.C <= 0:
            raise ConfigError(
                f"recognizer: dense_norm must be >= 0 and C > 0, not {self.dense_norm}, {self.C}"
            )
        if self.inputs not in INPUTS:
            raise ConfigError(f"recognizer: inputs must be one of {INPUTS}, not {self.inputs!r}")


@dataclass(frozen=True)
class LevelWeights:
    """One label level: ``coef`` ``[C, V + D]`` (words then embedding), ``intercept`` ``[C]``, names."""

    classes: tuple[str, ...]
    coef: NDArray[np.float32]
    intercept: NDArray[np.float32]


class CategoryRecognizer:
    """Title words + embedding -> category, per label level. Build with :meth:`fit` or :meth:`load`."""

    def __init__(
        self,
        cfg: RecognizerConfig,
        vocabulary: Mapping[str, int],
        idf: NDArray[np.float32],
        dense_mean: NDArray[np.float32] | None,
        dense_scale: NDArray[np.float32] | None,
        levels: Mapping[str, LevelWeights],
    ) -> None:
        self.cfg = cfg
        self.vocabulary = dict(vocabulary)
        self.idf = np.asarray(idf, np.float32)
        self.dense_mean = dense_mean
        self.dense_scale = dense_scale
        self.levels = dict(levels)
        self._vectorizer = self._make_vectorizer()

    def text(self, title: str, attributes: Mapping[str, str] | None = None) -> str:
        """What the word block reads for one product: its title, then its configured attributes."""
        return recognizer_text(title, attributes or {}, self.cfg.attributes)

    @property
    def dense_dim(self) -> int:
        return 0 if self.dense_mean is None else len(self.dense_mean)

    def _make_vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(
            ngram_range=(1, self.cfg.ngram_max),
            sublinear_tf=True,
            token_pattern=TOKEN_PATTERN,
            vocabulary=self.vocabulary,
            dtype=np.float32,
        )
        vec.idf_ = self.idf
        return vec

    @classmethod
    def fit(
        cls,
        titles: Sequence[str],
        dense: NDArray[Any] | None,
        labels: Mapping[str, NDArray[Any]],
        cfg: RecognizerConfig | None = None,
    ) -> CategoryRecognizer:
        """Fit on training rows. ``dense``: ``[N, D]`` vectors aligned with ``titles`` (None: words only);
        ``labels``: level -> ``[N]`` label strings ("" = unlabelled, left out of that level)."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC

        cfg = cfg or RecognizerConfig()
        vec = TfidfVectorizer(
            ngram_range=(1, cfg.ngram_max),
            sublinear_tf=True,
            token_pattern=TOKEN_PATTERN,
            min_df=cfg.min_df,
            dtype=np.float32,
        )
        vec.fit(list(titles))
        mean = scale = None
        if dense is not None and cfg.dense_norm > 0:
            d = np.asarray(dense, np.float32)
            mean = d.mean(0)
            # standardise, then scale so an average row has norm dense_norm: [D]
            scale = (cfg.dense_norm / np.sqrt(d.shape[1]) / (d.std(0) + 1e-6)).astype(np.float32)
        rec = cls(cfg, vec.vocabulary_, vec.idf_.astype(np.float32), mean, scale, {})
        x = rec.features(titles, dense)  # [N, V + D]
        for level, y in labels.items():
            y = np.asarray(y).astype(str)
            keep = np.flatnonzero(y != "")
            if len(set(y[keep].tolist())) < 2:
                raise ConfigError(f"recognizer level {level!r} has fewer than 2 classes in its training rows")
            svm = LinearSVC(C=cfg.C).fit(x[keep], y[keep])
            coef, intercept = svm.coef_, svm.intercept_
            if len(svm.classes_) == 2:  # liblinear keeps one row for two classes: make it one per class
                coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
            rec.levels[level] = LevelWeights(  # liblinear's coef_ is Fortran-ordered: made C-ordered
                tuple(str(c) for c in svm.classes_),
                np.ascontiguousarray(coef, np.float32),
                np.ascontiguousarray(intercept, np.float32),
            )
        return rec

    def features(self, titles: Sequence[str], dense: NDArray[Any] | None) -> Any:
        """The model's input rows: a CSR matrix ``[N, V + D]``."""
        from scipy import sparse

        words = self._vectorizer.transform(list(titles))  # [N, V], rows L2-normalised
        if self.dense_mean is None or self.dense_scale is None:
            return words.tocsr()
        if dense is None or np.shape(dense) != (len(titles), self.dense_dim):
            raise ConfigError(
                f"recognizer needs {self.dense_dim}-d embeddings for {len(titles)} titles, "
                f"got {None if dense is None else np.shape(dense)}"
            )
        block = (np.asarray(dense, np.float32) - self.dense_mean) * self.dense_scale  # [N, D]
        return sparse.hstack([words, sparse.csr_matrix(block)], format="csr")

    def scores(self, titles: Sequence[str], dense: NDArray[Any] | None, level: str) -> NDArray[np.float32]:
        """SVM margins ``[N, C]`` for ``level``, columns in ``self.levels[level].classes`` order."""
        if level not in self.levels:
            raise ConfigError(f"recognizer has no level {level!r} (has: {', '.join(self.levels)})")
        w = self.levels[level]
        out = self.features(titles, dense) @ w.coef.T + w.intercept
        return np.asarray(out, np.float32)

    def predict(self, titles: Sequence[str], dense: NDArray[Any] | None, level: str) -> NDArray[np.str_]:
        """The best class of each row."""
        best = self.scores(titles, dense, level).argmax(1)  # raises for an unknown level
        return np.asarray(self.levels[level].classes)[best]

    def top_k(self, title: str, dense: NDArray[Any] | None, k: int = 3) -> dict[str, list[tuple[str, float]]]:
        """One product's ``k`` best classes per level, with margins (best first)."""
        row = None if dense is None else np.asarray(dense, np.float32).reshape(1, -1)
        out = {}
        for level, w in self.levels.items():
            s = self.scores([title], row, level)[0]
            best = np.argsort(-s, kind="stable")[:k]
            out[level] = [(w.classes[i], float(s[i])) for i in best]
        return out

    def save(self, path: str | Path) -> None:
        """Write to ``path``: a ``.safetensors`` file, or a folder (then ``recognizer.safetensors`` in it)."""
        import json

        from safetensors.numpy import save_file

        from samestyle.fsio import atomic_path

        tensors = {"idf": self.idf}  # safetensors writes raw buffers: every array here is C-ordered
        if self.dense_mean is not None and self.dense_scale is not None:
            tensors.update(dense_mean=self.dense_mean, dense_scale=self.dense_scale)
        for level, w in self.levels.items():
            tensors[f"{level}.coef"], tensors[f"{level}.intercept"] = w.coef, w.intercept
        meta = {
            "config": asdict(self.cfg),
            "vocabulary": self.vocabulary,
            "levels": {level: list(w.classes) for level, w in self.levels.items()},
        }
        with atomic_path(_file(path)) as tmp:
            save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta)})

    @classmethod
    def load(cls, path: str | Path) -> CategoryRecognizer:
        import json

        from safetensors import SafetensorError, safe_open

        file = _file(path)
        if not file.is_file():
            raise ArtifactError(f"{file}: no category recognizer there; fit one with 'samestyle recognizer'")
        try:
            with safe_open(str(file), framework="numpy") as fh:
                meta = json.loads((fh.metadata() or {})[META_KEY])
                t = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is not iterable)
            levels = {
                level: LevelWeights(tuple(names), t[f"{level}.coef"], t[f"{level}.intercept"])
                for level, names in meta["levels"].items()
            }
            cfg = RecognizerConfig(**meta["config"])
        except (KeyError, ValueError, TypeError, OSError, SafetensorError) as exc:
            raise ArtifactError(f"{file}: not a samestyle category recognizer ({exc})") from exc
        return cls(cfg, meta["vocabulary"], t["idf"], t.get("dense_mean"), t.get("dense_scale"), levels)


def recognizer_text(title: str, attributes: Mapping[str, str], names: Sequence[str]) -> str:
    """``title`` followed by one word per named attribute the product has: ``name_value``, lower-cased,
    every run of non-word characters in the value an underscore (``usage = "Smart Casual"`` ->
    ``usage_smart_casual``), so the title's own words are never confused with an attribute's.

    Example:
        >>> recognizer_text("Nike Men Shoes", {"usage": "Smart Casual", "season": "Fall"}, ["usage"])
        'Nike Men Shoes usage_smart_casual'
    """
    values = ((name, _NON_WORD.sub("_", attributes.get(name, "").lower()).strip("_")) for name in names)
    words = [f"{name}_{value}" for name, value in values if value]
    return " ".join([title, *words])


def level_depth(level: str) -> int | None:
    """A catalogue level name ``category<d>`` -> d - 1, its index in ``Product.category``; None otherwise."""
    digits = level.removeprefix("category")
    return int(digits) - 1 if level.startswith("category") and digits.isdigit() else None


def _file(path: str | Path) -> Path:
    path = Path(path)
    return path if path.suffix == ".safetensors" else path / FILE


__all__ = [
    "INPUTS",
    "CategoryRecognizer",
    "LevelWeights",
    "RecognizerConfig",
    "level_depth",
    "recognizer_text",
]
