"""A generated catalogue with suppliers, embedded with the fake encoders, a tiny joint model, and indexes.

Products: 4 colours x 4 kinds x 12, three suppliers; the fake image encoder sees colour, the fake text
encoder the words of the title. ``build_site`` returns the frozen index, the joint index and the run.
"""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from samestyle.cli import main

COLOURS = {"red": (220, 30, 30), "blue": (30, 40, 220), "green": (30, 200, 60), "black": (10, 10, 10)}
KINDS = ["shirt", "dress", "shoe", "watch"]
SUPPLIERS = ["S1", "S2", "S3"]


@dataclass(frozen=True)
class Site:
    root: Path
    catalog: Path
    index: Path
    joint_index: Path
    run: Path


def cli(*argv: str) -> str:
    """Run ``samestyle ARGV`` in-process; asserts it succeeds and returns what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0, argv
    return out.getvalue()


def build_site(root: Path, n: int = 192) -> Site:
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    rows = []
    for i in range(n):
        colour, kind = list(COLOURS)[i % 4], KINDS[(i // 4) % 4]
        rgb = np.clip(np.array(COLOURS[colour]) + rng.integers(-20, 20, 3), 0, 255)
        Image.new("RGB", (24, 32), tuple(int(c) for c in rgb)).save(root / "img" / f"p{i}.png")
        rows.append(
            {
                "id": f"p{i}",
                "title": f"{colour} {kind} model {i}",
                "category": f"Apparel > {kind}",
                "colour": colour,
                "supplier_id": SUPPLIERS[i % 3],
                "price": str(10 + i),
                "image": f"p{i}.png",
            }
        )
    with open(root / "products.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    site = Site(root, root / "catalog", root / "index", root / "index-joint", root / "run")
    cli(
        "ingest", str(root / "products.csv"), "--out", str(site.catalog),
        "--image-root", str(root / "img"),
    )  # fmt: skip
    fakes = ["--image-encoder", "fake", "--text-encoder", "fake", "--cache", str(root / "cache")]
    cli("embed", "--catalog", str(site.catalog), "--out", str(root / "emb"), *fakes)
    cli("index", "--catalog", str(site.catalog), "--embeddings", str(root / "emb"), "--out", str(site.index))
    sets = {
        "data.catalog": f'"{site.catalog}"', "data.embeddings": f'"{root / "emb"}"', "model.image_dim": "16",
        "model.text_dim": "32", "model.dim": "16", "model.hidden": "32", "train.epochs": "6",
        "train.batch_size": "32", "train.val_queries": "10", "train.threads": "1",
    }  # fmt: skip
    cli("train", "--out", str(site.run), *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")])
    cli(
        "embed",
        "--catalog",
        str(site.catalog),
        "--out",
        str(root / "emb-joint"),
        *fakes,
        "--model",
        str(site.run),
    )
    cli(
        "index", "--catalog", str(site.catalog), "--embeddings", str(root / "emb-joint"),
        "--out", str(site.joint_index),
    )  # fmt: skip
    return site
