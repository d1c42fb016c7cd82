"""Report writing: eval.json and eval.md contents, NaN handling, atomic replacement."""

from __future__ import annotations

import json
import math
from pathlib import Path

from samestyle.eval.report import render_markdown, write_report

RESULTS = {
    "sample100": {"i2t_r@1": 0.123456, "sum_r": 2.5, "n_queries": 1000.0, "primary": 2.5},
    "kagl_text_to_image/KAGL": {"recall@1": 1 / 3, "mrr": math.nan, "primary": 1 / 3},
    "custom": {"acc": 1.0},
}


def test_write_report_json_and_md(tmp_path: Path) -> None:
    out = tmp_path / "run" / "eval"
    json_path, md_path = write_report(RESULTS, out, {"model": "fake", "data": "toy"})
    assert (json_path, md_path) == (out / "eval.json", out / "eval.md")
    data = json.loads(json_path.read_text())
    assert data["meta"] == {"model": "fake", "data": "toy"}
    assert data["results"]["sample100"]["i2t_r@1"] == 0.123456  # full precision in JSON
    assert data["results"]["kagl_text_to_image/KAGL"]["mrr"] is None  # NaN -> null
    md = md_path.read_text()
    assert "## sample100\n\n| metric | value |\n| --- | ---: |\n| primary (sum_r) | 2.5000 |\n" in md
    assert "| i2t_r@1 | 0.1235 |" in md
    assert "| n_queries | 1000 |" in md
    assert "| primary (avg_recall) | 0.3333 |" in md  # name found from the part before "/"
    assert "| mrr | nan |" in md
    assert "## custom\n\n| metric | value |\n| --- | ---: |\n| acc | 1.0000 |" in md
    assert "- model: fake" in md
    assert sorted(p.name for p in out.iterdir()) == ["eval.json", "eval.md"]  # no temp files left


def test_write_report_replaces(tmp_path: Path) -> None:
    write_report(RESULTS, tmp_path)
    write_report({"pair_prf": {"f1": 0.5, "primary": 0.5}}, tmp_path)
    assert "sample100" not in (tmp_path / "eval.md").read_text()
    assert json.loads((tmp_path / "eval.json").read_text())["meta"] == {}


def test_render_escapes_pipes() -> None:
    md = render_markdown({"a|b": {"x|y": 0.5}}, {"note": "p|q"})
    assert "## a\\|b" in md and "| x\\|y | 0.5000 |" in md and "- note: p\\|q" in md
