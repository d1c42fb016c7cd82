"""End to end through the CLI with fake encoders: ingest, embed, index, search, train, joint search."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samestyle.cli import main

COLOURS = {"red": (220, 30, 30), "blue": (30, 40, 220), "green": (30, 200, 60), "black": (10, 10, 10)}
KINDS = ["shirt", "dress", "shoe", "watch"]


def _catalogue(tmp: Path, n: int = 160) -> Path:
    rng = np.random.default_rng(0)
    (tmp / "img").mkdir()
    rows = []
    for i in range(n):
        colour, kind = list(COLOURS)[i % 4], KINDS[(i // 4) % 4]
        rgb = np.clip(np.array(COLOURS[colour]) + rng.integers(-20, 20, 3), 0, 255)
        Image.new("RGB", (24, 32), tuple(int(c) for c in rgb)).save(tmp / "img" / f"p{i}.png")
        rows.append(
            {
                "sku": f"p{i}",
                "name": f"{colour} {kind} model {i}",
                "cat": f"Apparel > {kind}",
                "colour": colour,
                "img": f"p{i}.png",
            }
        )
    rows.append({"sku": "", "name": "no id", "cat": "x", "colour": "red", "img": ""})  # rejected
    rows.append(
        {"sku": "noimg", "name": "red shirt", "cat": "Apparel > shirt", "colour": "red", "img": "gone.png"}
    )
    path = tmp / "products.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def _ingest(capsys: pytest.CaptureFixture[str], tmp_path: Path, cat: Path) -> None:
    """The generated catalogue through ``samestyle ingest`` with a column mapping."""
    mapping = ["id=sku", "title=name", "category=cat", "image=img"]
    columns = [arg for m in mapping for arg in ("--column", m)]
    _run(
        capsys,
        "ingest",
        str(tmp_path / "products.csv"),
        "--out",
        str(cat),
        *columns,
        "--image-root",
        str(tmp_path / "img"),
    )


def _embed(capsys: pytest.CaptureFixture[str], tmp_path: Path, cat: Path, out: Path, *extra: str) -> None:
    """``samestyle embed`` with the fake encoders and a cache under ``tmp_path``."""
    _run(
        capsys,
        "embed",
        "--catalog",
        str(cat),
        "--out",
        str(out),
        "--image-encoder",
        "fake",
        "--text-encoder",
        "fake",
        "--cache",
        str(tmp_path / "cache"),
        *extra,
    )


def test_pipeline_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _catalogue(tmp_path)
    cat, emb, idx = tmp_path / "catalog", tmp_path / "emb", tmp_path / "index"
    _ingest(capsys, tmp_path, cat)
    rejects = (cat / "rejects.csv").read_text(encoding="utf-8")
    assert "products.csv" in rejects and "id" in rejects
    _embed(capsys, tmp_path, cat, emb)
    _run(capsys, "index", "--catalog", str(cat), "--embeddings", str(emb), "--out", str(idx))

    hits = json.loads(
        _run(capsys, "search", "--index", str(idx), "--text", "red shirt", "--k", "5", "--json")
    )
    assert len(hits) == 5 and all("red" in h["title"] or "shirt" in h["title"] for h in hits)
    hits = json.loads(
        _run(
            capsys,
            "search",
            "--index",
            str(idx),
            "--image",
            str(tmp_path / "img" / "p0.png"),
            "--k",
            "5",
            "--json",
        )
    )
    assert {h["id"] for h in hits} <= {f"p{i}" for i in range(0, 160, 4)}  # all red, like p0
    hits = json.loads(
        _run(
            capsys,
            "search",
            "--index",
            str(idx),
            "--product-id",
            "p1",
            "--k",
            "3",
            "--json",
            "--filter",
            "category=Apparel/dress",
        )
    )
    assert len(hits) == 3 and "p1" not in {h["id"] for h in hits}
    assert all("dress" in h["title"] for h in hits)

    run = tmp_path / "run"
    _run(
        capsys,
        "train",
        "--out",
        str(run),
        "--set",
        f'data.catalog="{cat}"',
        "--set",
        f'data.embeddings="{emb}"',
        "--set",
        "model.image_dim=16",
        "--set",
        "model.text_dim=32",
        "--set",
        "model.dim=16",
        "--set",
        "model.hidden=32",
        "--set",
        "train.epochs=3",
        "--set",
        "train.batch_size=32",
        "--set",
        "train.val_queries=10",
        "--set",
        "train.threads=1",
    )
    assert (run / "model.safetensors").exists() and (run / "config.toml").exists()
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["epochs_run"] == 3 and len(metrics["history"]) == 3

    emb2, idx2 = tmp_path / "emb2", tmp_path / "index2"
    _embed(capsys, tmp_path, cat, emb2, "--model", str(run))
    _run(capsys, "index", "--catalog", str(cat), "--embeddings", str(emb2), "--out", str(idx2))
    from samestyle.search.service import SearchService

    service = SearchService.open(idx2)
    assert service.joint and {"joint-image", "joint-text", "joint-fused"} <= set(service.index.spaces())
    hits = json.loads(
        _run(capsys, "search", "--index", str(idx2), "--text", "blue watch", "--k", "4", "--json")
    )
    expected = service.search_text("blue watch", k=4)  # text -> joint-image: cross-modal through the CLI
    assert [h["id"] for h in hits] == [h.id for h in expected]
    assert all({"image", "text", "fused"} <= set(h.scores) for h in expected)  # per-modality explanations
    image = str(tmp_path / "img" / "p1.png")
    fused = json.loads(
        _run(
            capsys,
            "search",
            "--index",
            str(idx2),
            "--image",
            image,
            "--text",
            "blue shirt",
            "--k",
            "3",
            "--json",
        )
    )
    assert len(fused) == 3  # image + text -> joint-fused
    assert main(["search", "--index", str(idx), "--image", image, "--text", "x"]) == 2
    assert "need an index built with a trained model" in capsys.readouterr().err
    # a frozen space of a joint index is searched with the frozen query vector, as on the frozen index
    frozen = json.loads(
        _run(capsys, "search", "--index", str(idx2), "--text", "red shirt", "--space", "text", "--json")
    )
    assert frozen == json.loads(_run(capsys, "search", "--index", str(idx), "--text", "red shirt", "--json"))
    # a product without a usable image: searchable by text, and a clear error in image spaces
    assert "noimg" in {h["id"] for h in frozen}
    assert main(["search", "--index", str(idx), "--product-id", "noimg"]) == 2
    assert "no vector in space 'image'" in capsys.readouterr().err


def test_simulate_and_mine_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _catalogue(tmp_path)
    cat = tmp_path / "catalog"
    _ingest(capsys, tmp_path, cat)
    log = tmp_path / "clicks.jsonl"
    _run(capsys, "simulate-clicks", "--catalog", str(cat), "--sessions", "400", "--out", str(log))
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    out = _run(
        capsys, "mine", "--catalog", str(cat), "--log", str(log), "--out", str(tmp_path / "pairs.parquet")
    )
    assert "(1 bad lines)" in out
    from samestyle.mining.pairs import read_pairs

    pairs = read_pairs(tmp_path / "pairs.parquet")
    assert pairs and all(p.anchor_id != p.positive_id for p in pairs)
    assert (
        main(
            [
                "mine",
                "--catalog",
                str(cat),
                "--log",
                str(log),
                "--out",
                str(tmp_path / "p2.parquet"),
                "--set",
                "use_categry=false",
            ]
        )
        == 2
    )
    assert "use_categry" in capsys.readouterr().err


def test_cli_errors_have_no_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "--index", str(tmp_path / "nope"), "--text", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert main(["train", "--out", str(tmp_path / "r"), "--set", "model.dimm=3"]) == 2
    assert "did you mean 'dim'" in capsys.readouterr().err.lower()


def test_demo_without_data_says_where_to_put_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from samestyle import demo

    monkeypatch.setenv("SAMESTYLE_DATA", str(tmp_path / "nowhere"))
    assert demo.main([]) == 1
    err = capsys.readouterr().err
    assert "No dataset found" in err and "SAMESTYLE_DATA" in err and "samestyle ingest" in err
