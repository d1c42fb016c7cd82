"""The category recogniser (title words + embedding): its scores against a plain-loop reference, what each
block contributes, save / load, and its errors."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from samestyle.errors import ArtifactError, ConfigError
from samestyle.models.recognizer import FILE, CategoryRecognizer, RecognizerConfig, recognizer_text

TITLES = [
    "Nike Men Red T-shirt",
    "Puma Men Blue Shirt",
    "Adidas Women Black T-shirt",
    "Arrow Men White Formal Shirt",
    "Catwalk Women Heels",
    "Catwalk Women Flats",
    "Bata Women Heels Red",
    "Bata Women Flats Black",
]
TYPES = np.array(["Tshirts", "Shirts", "Tshirts", "Shirts", "Heels", "Flats", "Heels", "Flats"])
SUB = np.array(["Topwear"] * 4 + ["Shoes"] * 4)


def _dense(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)


def _reference_scores(
    rec: CategoryRecognizer, title: str, dense: np.ndarray | None, level: str
) -> np.ndarray:
    """The recogniser's margins for one title, computed term by term without scikit-learn."""
    words = re.findall(r"\b\w+\b", title.lower())
    grams = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    x = np.zeros(len(rec.vocabulary) + rec.dense_dim)
    for gram, tf in Counter(g for g in grams if g in rec.vocabulary).items():
        x[rec.vocabulary[gram]] = (1 + math.log(tf)) * rec.idf[rec.vocabulary[gram]]
    norm = np.linalg.norm(x[: len(rec.vocabulary)])
    x[: len(rec.vocabulary)] /= norm if norm else 1.0
    if dense is not None:
        x[len(rec.vocabulary) :] = (dense - rec.dense_mean) * rec.dense_scale
    w = rec.levels[level]
    return np.array([x @ w.coef[c] + w.intercept[c] for c in range(len(w.classes))])


def test_scores_match_a_plain_loop_over_terms_and_dense_block() -> None:
    dense = _dense(len(TITLES))
    rec = CategoryRecognizer.fit(TITLES, dense, {"category3": TYPES, "category2": SUB})
    queries = ["Nike Men Green T-shirt t-shirt", "Heels heels flats", "nothing known here"]
    qd = _dense(3, seed=1)
    for level in ("category2", "category3"):
        got = rec.scores(queries, qd, level)
        want = np.stack([_reference_scores(rec, q, qd[i], level) for i, q in enumerate(queries)])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_single_letters_are_words_so_t_shirt_is_not_shirt() -> None:
    rec = CategoryRecognizer.fit(TITLES, None, {"category3": TYPES})
    assert rec.predict(
        ["Roadster Men Green T-shirt", "Roadster Men Green Shirt"], None, "category3"
    ).tolist() == [
        "Tshirts",
        "Shirts",
    ]
    assert "t shirt" in rec.vocabulary


def test_the_embedding_block_decides_when_the_words_cannot() -> None:
    # every title is the same word; only the dense vector (first column) tells heels from flats
    n = 40
    titles = ["women footwear"] * n
    y = np.array(["Heels", "Flats"] * (n // 2))
    dense = _dense(n)
    dense[:, 0] = np.where(y == "Heels", 2.0, -2.0)
    words = CategoryRecognizer.fit(titles, None, {"t": y}, RecognizerConfig(dense_norm=0.0))
    both = CategoryRecognizer.fit(titles, dense, {"t": y})
    assert len(set(words.predict(titles, None, "t").tolist())) == 1  # one answer for identical inputs
    assert (both.predict(titles, dense, "t") == y).all()
    assert words.dense_dim == 0 and both.dense_dim == 3


def test_top_k_and_two_class_levels() -> None:
    rec = CategoryRecognizer.fit(TITLES, None, {"category2": SUB, "category3": TYPES})
    top = rec.top_k("Bata Women Heels", None, k=2)
    assert [c for c, _ in top["category2"]] == ["Shoes", "Topwear"]  # two classes: both ranked
    assert top["category3"][0][0] == "Heels" and len(top["category3"]) == 2
    assert top["category3"][0][1] >= top["category3"][1][1]


def test_save_and_load_give_the_same_scores(tmp_path: Path) -> None:
    dense = _dense(len(TITLES))
    rec = CategoryRecognizer.fit(TITLES, dense, {"category3": TYPES}, RecognizerConfig(C=1.0, dense_norm=2.0))
    rec.save(tmp_path / "rec")
    assert (tmp_path / "rec" / FILE).is_file() and not list((tmp_path / "rec").glob("*.tmp"))
    back = CategoryRecognizer.load(tmp_path / "rec")
    assert back.cfg == rec.cfg and back.levels["category3"].classes == rec.levels["category3"].classes
    np.testing.assert_array_equal(
        back.scores(TITLES, dense, "category3"), rec.scores(TITLES, dense, "category3")
    )


def test_a_failed_save_keeps_the_last_good_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = CategoryRecognizer.fit(TITLES, None, {"category3": TYPES})
    rec.save(tmp_path)
    before = (tmp_path / FILE).read_bytes()
    import safetensors.numpy

    def broken(tensors: object, path: str, metadata: object = None) -> None:
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        CategoryRecognizer.fit(TITLES[:4], None, {"category3": TYPES[:4]}).save(tmp_path)
    assert (tmp_path / FILE).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [FILE]


def test_errors_name_the_file_or_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no category recognizer"):
        CategoryRecognizer.load(tmp_path)
    (tmp_path / FILE).write_bytes(b"\x00" * 16)
    with pytest.raises(ArtifactError, match=re.escape(str(tmp_path / FILE))):
        CategoryRecognizer.load(tmp_path)
    rec = CategoryRecognizer.fit(TITLES, _dense(len(TITLES)), {"category3": TYPES})
    with pytest.raises(ConfigError, match="3-d embeddings"):
        rec.scores(TITLES, None, "category3")
    with pytest.raises(ConfigError, match="no level 'category9'"):
        rec.scores(TITLES, _dense(len(TITLES)), "category9")
    with pytest.raises(ConfigError, match="fewer than 2 classes"):
        CategoryRecognizer.fit(TITLES, None, {"category1": np.array(["Apparel"] * 8)})
    with pytest.raises(ConfigError, match="dense_norm"):
        RecognizerConfig(dense_norm=-1.0)


def test_unlabelled_rows_are_left_out_of_a_level() -> None:
    y = TYPES.copy()
    y[0] = ""
    rec = CategoryRecognizer.fit(TITLES, None, {"category3": y})
    assert "" not in rec.levels["category3"].classes


def test_attribute_words() -> None:
    attrs = {"usage": " Smart Casual ", "gender": "Men", "season": "---"}
    assert (
        recognizer_text("Nike Shoes", attrs, ["usage", "gender"])
        == "Nike Shoes usage_smart_casual gender_men"
    )
    assert recognizer_text("Nike Shoes", attrs, ["season", "year"]) == "Nike Shoes"  # nothing left, or absent
    assert recognizer_text("Nike Shoes", attrs, []) == "Nike Shoes"
    with pytest.raises(ConfigError, match="single words"):
        RecognizerConfig(attributes=("usage", "base colour"))


def test_attributes_decide_when_the_titles_cannot(tmp_path: Path) -> None:
    """Identical titles, types told apart only by the usage attribute (Myntra: formal / sports shoes)."""
    titles = ["Bata Men Black Shoes", "Bata Men Brown Shoes"] * 4
    usage = [{"usage": "Formal"}, {"usage": "Sports"}] * 2 + [{"usage": "Sports"}, {"usage": "Formal"}] * 2
    types = np.array(["Formal Shoes" if u["usage"] == "Formal" else "Sports Shoes" for u in usage])
    words = CategoryRecognizer.fit(
        titles, None, {"category3": types}, RecognizerConfig(dense_norm=0, inputs="")
    )
    assert (words.predict(titles, None, "category3") == types).mean() == 0.5  # the words cannot
    cfg = RecognizerConfig(dense_norm=0, inputs="", attributes=("usage",))
    texts = [recognizer_text(t, u, ["usage"]) for t, u in zip(titles, usage, strict=True)]
    rec = CategoryRecognizer.fit(texts, None, {"category3": types}, cfg)
    got = [rec.predict([rec.text("Bata Men Grey Shoes", {"usage": u})], None, "category3")[0]
           for u in ("Formal", "Sports")]  # fmt: skip
    assert got == ["Formal Shoes", "Sports Shoes"]
    rec.save(tmp_path)
    back = CategoryRecognizer.load(tmp_path)
    assert back.cfg == rec.cfg and back.cfg.attributes == ("usage",)
    assert back.text("x", {"usage": "Sports", "gender": "Men"}) == "x usage_sports"
