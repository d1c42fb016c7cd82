"""Writing duplicate groups and their evidence: Parquet or CSV, atomically.

``groups``: one row per listing in a group: ``group_id`` (0 = largest group), ``product_id``,
``group_size``. ``links`` (beside it, ``<name>.links.<ext>``): ``a``, ``b``, ``rule`` (which modality
and rule admitted the pair, e.g. ``image:threshold,text:keep-one``) and ``score_<modality>`` for each
modality used (empty where a side has no vector of it).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from samestyle.errors import ConfigError
from samestyle.fsio import atomic_path
from samestyle.search.dedupe import MODALITIES, DedupeResult


def read_labels(path: str | Path) -> dict[str, str]:
    """Calibration labels: a CSV with columns ``product_id`` and ``group`` (one row per labelled product).

    Raises ConfigError naming the file and row for a missing column, an empty field or a duplicate id.
    """
    import csv

    path = Path(path)
    labels: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"product_id", "group"} - set(reader.fieldnames or [])
            if missing:
                raise ConfigError(f"{path}: missing column(s) {sorted(missing)} (have: {reader.fieldnames})")
            for row_no, row in enumerate(reader, 2):
                pid, group = (row.get("product_id") or "").strip(), (row.get("group") or "").strip()
                if not pid or not group:
                    field = "product_id" if not pid else "group"
                    raise ConfigError(f"{path} row {row_no}: field '{field}' is empty")
                if pid in labels:
                    raise ConfigError(f"{path} row {row_no}: product_id '{pid}' appears twice")
                labels[pid] = group
    except FileNotFoundError:
        raise ConfigError(f"{path}: calibration labels not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc})") from None
    if len(set(labels.values())) < 2:
        raise ConfigError(f"{path}: calibration needs products from at least two groups")
    return labels


def links_path(groups_path: str | Path) -> Path:
    path = Path(groups_path)
    return path.with_name(f"{path.stem}.links{path.suffix}")


def _write(table: pa.Table, path: Path) -> None:
    with atomic_path(path, suffix=path.suffix) as tmp:
        if path.suffix == ".parquet":
            pq.write_table(table, tmp)
        else:
            pacsv.write_csv(table, tmp)


def write_dedupe(result: DedupeResult, out: str | Path) -> tuple[Path, Path]:
    """Write the groups to ``out`` (.parquet or .csv) and the links beside it; returns both paths."""
    out = Path(out)
    if out.suffix not in (".parquet", ".csv"):
        raise ConfigError(f"{out}: write the groups to a .parquet or .csv file")
    rows = [(g, pid, len(members)) for g, members in enumerate(result.groups) for pid in members]
    groups = pa.table(
        {
            "group_id": pa.array([r[0] for r in rows], pa.int64()),
            "product_id": pa.array([r[1] for r in rows], pa.string()),
            "group_size": pa.array([r[2] for r in rows], pa.int64()),
        }
    )
    used = [m for m in MODALITIES if any(m in link.scores for link in result.links)]
    links = pa.table(
        {
            "a": pa.array([link.a for link in result.links], pa.string()),
            "b": pa.array([link.b for link in result.links], pa.string()),
            "rule": pa.array([link.rule for link in result.links], pa.string()),
            **{
                f"score_{m}": pa.array([link.scores.get(m) for link in result.links], pa.float64())
                for m in used
            },
        }
    )
    _write(groups, out)
    _write(links, links_path(out))
    return out, links_path(out)


__all__ = ["links_path", "read_labels", "write_dedupe"]
