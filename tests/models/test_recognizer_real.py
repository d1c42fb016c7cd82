"""The recogniser on the real Myntra titles (skipped without ../shared/data): title words alone, fitted on
the fixed split's train products and scored on its test products, as BENCHMARKS.md reports (0.993 / 0.972)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from samestyle.datasets.myntra import MYNTRA_CSV, load_myntra_split, read_myntra_csv
from samestyle.models.recognizer import CategoryRecognizer, RecognizerConfig
from samestyle.paths import shared_data_dir

pytestmark = pytest.mark.real


def test_title_words_on_the_held_out_split() -> None:
    data = shared_data_dir()
    if not (data / MYNTRA_CSV).is_file() or not (data / "marqo_kagl_qrels.tar.gz").is_file():
        pytest.skip(f"real data not found in {data}; set $SAMESTYLE_DATA")
    products = {p.id: p for p in read_myntra_csv(data / MYNTRA_CSV)[0]}
    split = load_myntra_split(data)
    train, test = ([products[i] for i in split[k]] for k in ("train", "test"))
    labels = {"category3": np.array([p.category[2] for p in train])}
    rec = CategoryRecognizer.fit(
        [p.title for p in train], None, labels, RecognizerConfig(dense_norm=0, inputs="")
    )
    truth = np.array([p.category[2] for p in test])
    pred = rec.predict([p.title for p in test], None, "category3")
    assert len(test) == 5005 and float(np.mean(pred == truth)) > 0.97
    tees = np.array(["t-shirt" in p.title.lower() for p in test])  # "T-shirt" must not read as "shirt"
    assert tees.sum() > 300 and float(np.mean(pred[tees] == truth[tees])) > 0.97
