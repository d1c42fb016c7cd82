"""KAGL qrels on a generated archive: tasks, weights, ground truth, malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dataset_fakes import KAGL_CONFIG, FakeData

from samestyle.datasets.kagl import load_kagl, load_kagl_folder, read_qrels
from samestyle.errors import DatasetError


def test_load_kagl(fake_data: FakeData) -> None:
    q = load_kagl(fake_data.data_dir, cache=fake_data.cache)
    assert q.text_to_image == {
        "Turtle Check Men Navy Blue Shirt": {"15970": 1},
        "Titan Women Watch": {"59263": 1},
    }
    assert set(q.attribute_tasks) == {"category-to-product", "color-to-product"}
    assert q.attribute_tasks["category-to-product"]["Apparel"] == {"15970": 1, "39386": 1}
    assert q.doc_weights("color-to-product") == {"image": 0.9, "text": 0.1}
    assert q.doc_weights("text-to-image") == {"image": 1.0}
    assert q.tasks["color-to-product"].query_col == ("baseColour",)
    assert q.text_to_image_ids == {"15970", "59263"}


def _folder(tmp_path: Path, config: object, gt: dict[str, object]) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/KAGL.json").write_text(json.dumps(config))
    (tmp_path / "data/KAGL/gt_query_doc").mkdir(parents=True)
    for name, value in gt.items():
        (tmp_path / "data/KAGL/gt_query_doc" / name).write_text(json.dumps(value))
    return tmp_path


def test_missing_ground_truth_file(tmp_path: Path) -> None:
    root = _folder(tmp_path, KAGL_CONFIG, {"ground_truth_text-image.json": {"q": {"1": 1}}})
    with pytest.raises(DatasetError, match=r"ground_truth_category1-image\+text\.json"):
        load_kagl_folder(root)


def test_config_without_text_task(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"tasks": [KAGL_CONFIG["tasks"][1]]}, {})  # type: ignore[index]
    with pytest.raises(DatasetError, match="text-to-image"):
        load_kagl_folder(root)


@pytest.mark.parametrize("bad", [[1, 2], {"q": [1]}, {"q": {"1": "high"}}])
def test_malformed_qrels(tmp_path: Path, bad: object) -> None:
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(DatasetError, match=r"gt\.json"):
        read_qrels(path)
