"""Write evaluation results as ``eval.json`` and ``eval.md`` (one Markdown table per protocol), atomically."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from samestyle.eval.protocols import PRIMARY_METRIC
from samestyle.fsio import write_json, write_text

Results = Mapping[str, Mapping[str, float]]


def _json_number(value: float) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None  # JSON has no NaN/inf


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fmt(key: str, value: float) -> str:
    v = float(value)
    if key.startswith("n_") and v.is_integer():
        return str(int(v))
    return f"{v:.4f}" if math.isfinite(v) else str(v)


def _primary_label(protocol: str) -> str:
    name = PRIMARY_METRIC.get(protocol) or PRIMARY_METRIC.get(protocol.split("/")[0])
    return f"primary ({name})" if name else "primary"


def render_markdown(results: Results, meta: Mapping[str, Any] | None = None) -> str:
    """Markdown for ``results``: the meta as a list, then one ``| metric | value |`` table per protocol.

    Values have 4 decimals (counts ``n_*`` are integers); the ``primary`` row comes first, labelled with
    the metric it stands for when the protocol name (or its part before ``/``) is in ``PRIMARY_METRIC``.

    Example:
        >>> print(render_markdown({"pair_prf": {"f1": 0.5, "primary": 0.5}}).splitlines()[6])
        | primary (f1) | 0.5000 |
    """
    lines = ["# Evaluation", ""]
    if meta:
        lines += [f"- {_cell(k)}: {_cell(v)}" for k, v in meta.items()] + [""]
    for protocol, metrics in results.items():
        lines += [f"## {_cell(protocol)}", "", "| metric | value |", "| --- | ---: |"]
        if "primary" in metrics:
            lines.append(f"| {_cell(_primary_label(protocol))} | {_fmt('primary', metrics['primary'])} |")
        lines += [f"| {_cell(k)} | {_fmt(k, v)} |" for k, v in metrics.items() if k != "primary"]
        lines.append("")
    return "\n".join(lines)


def write_report(
    results: Results, out_dir: str | os.PathLike[str], meta: Mapping[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``out_dir/eval.json`` ({"meta", "results"}; NaN/inf become null) and ``out_dir/eval.md``.

    Both are written atomically (temp file, fsync, rename), so a crash leaves the previous report.

    Args:
        results: protocol name -> that protocol's ``dict[str, float]``.
        out_dir: folder, created if missing.
        meta: what was evaluated (model, data, date ...); JSON-serialisable values.

    Returns:
        The paths of ``eval.json`` and ``eval.md``.

    Example:
        >>> write_report({"pair_prf": {"f1": 0.5}}, tmp_dir, {"model": "x"})  # doctest: +SKIP
    """
    out = Path(out_dir)
    json_path, md_path = out / "eval.json", out / "eval.md"
    payload = {
        "meta": dict(meta or {}),
        "results": {p: {k: _json_number(v) for k, v in m.items()} for p, m in results.items()},
    }
    write_json(json_path, payload)
    write_text(md_path, render_markdown(results, meta) + "\n")
    return json_path, md_path
