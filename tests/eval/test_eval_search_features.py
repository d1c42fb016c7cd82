"""The composed-query, duplicate-detection and interactive protocols against plain references."""

from __future__ import annotations

import numpy as np
import pytest

from samestyle.eval.composed import ComposedTask, build_task, score
from samestyle.eval.dedupe import calibration_split, grocery_dedupe_eval, matching_eval
from samestyle.types import Product


def _products() -> list[Product]:
    out = []
    for i in range(60):
        colour = ["Red", "Blue", "White"][i % 3]
        kind = ["Tshirts", "Shoes"][(i // 3) % 2]
        out.append(
            Product(
                f"p{i}",
                f"{colour} {kind}",
                category=("Apparel", kind),
                attributes={"gender": "Men", "baseColour": colour},
            )
        )
    return out


def test_composed_task_relevance_is_same_kind_in_the_new_colour() -> None:
    products = _products()
    rows = np.arange(len(products))
    task = build_task(products, rows[:10], rows, n=10)
    for q, row in enumerate(task.query_rows):
        colour = task.modifiers[q].removeprefix("in ")
        p = products[row]
        assert colour != p.attributes["baseColour"].lower()
        expected = {
            g
            for g, r in enumerate(rows)
            if products[r].category == p.category and products[r].attributes["baseColour"].lower() == colour
        }
        assert set(np.flatnonzero(task.relevant[q])) == expected


def test_composed_scores_equal_a_loop_reference() -> None:
    rng = np.random.default_rng(0)
    gallery_rows = np.arange(30)
    relevant = rng.random((8, 30)) < 0.2
    relevant[:, 0] = True
    task = ComposedTask(np.arange(8), ["x"] * 8, ["t"] * 8, gallery_rows, relevant)
    q, g = rng.normal(size=(8, 5)), rng.normal(size=(30, 5))
    got = score(q, g, task)
    recall, hit = [], []
    for i in range(8):
        order = [j for j in np.argsort(-(g @ q[i])) if j != i][:10]  # the query product itself is left out
        found = sum(relevant[i, j] for j in order)
        recall.append(found / min(10, relevant[i].sum()))
        hit.append(found > 0)
    assert got["r@10"] == pytest.approx(np.mean(recall)) and got["hit@10"] == pytest.approx(np.mean(hit))


def test_calibration_split_takes_per_class_members() -> None:
    groups = np.repeat(np.arange(5), 9)
    cal, rest = calibration_split(groups, 4)
    assert np.bincount(groups[cal]).tolist() == [4] * 5 and len(rest) == 25 and not set(cal) & set(rest)


def test_grocery_protocol_tunes_on_train_only() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 16))

    def photos(per: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
        g = np.repeat(np.arange(10), per)
        x = centres[g] + noise * rng.normal(size=(len(g), 16))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), g

    (tx, tg), (vx, vg) = photos(12, 0.5), photos(5, 0.5)
    out = grocery_dedupe_eval(tx, tg, vx, vg, lda_dims=(8,))
    assert set(out) == {"baseline", "samestyle", "samestyle+lda"}
    shuffled = grocery_dedupe_eval(tx, tg, vx, rng.permutation(vg), lda_dims=(8,))
    for row in out:  # val labels never move the chosen settings
        assert shuffled[row]["threshold"] == out[row]["threshold"]
        assert shuffled[row]["calibration_f1"] == out[row]["calibration_f1"]
    assert out["samestyle+lda"]["mean_f1"] > shuffled["samestyle+lda"]["mean_f1"]


def test_matching_protocol_chooses_on_train() -> None:
    rng = np.random.default_rng(0)

    def split(n: int) -> dict:
        v = rng.normal(size=(2 * n, 8))
        labels = rng.random(n) < 0.5
        right = np.where(labels, np.arange(n), np.arange(n) + n)
        v[right[labels]] = v[np.arange(n)[labels]] + 0.3 * rng.normal(size=(labels.sum(), 8))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        side = {"vectors": v.astype(np.float32), "left": np.arange(n), "right": right}
        return {"labels": labels, "title": side, "text": side}

    data = {"train": split(80), "valid": split(60)}
    out = matching_eval(data)
    assert out["baseline"]["f1"] > 0.8 and {"field", "blend_k"} <= set(out["samestyle"])
    flipped = {"train": data["train"], "valid": {**data["valid"], "labels": ~data["valid"]["labels"]}}
    assert matching_eval(flipped)["baseline"]["threshold"] == out["baseline"]["threshold"]
