"""Builders of tiny copies of the public archives (same layout as ../shared/data) for the dataset tests."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from samestyle.paths import shared_data_dir

MYNTRA_HEADER = [
    "id",
    "gender",
    "masterCategory",
    "subCategory",
    "articleType",
    "baseColour",
    "season",
    "year",
    "usage",
    "productDisplayName",
    "img_tanmay",
    "img_aditya",
]
MYNTRA_ROWS = [
    [
        "15970",
        "Men",
        "Apparel",
        "Topwear",
        "Shirts",
        "Navy Blue",
        "Fall",
        "2011.0",
        "Casual",
        "Turtle Check Men Navy Blue Shirt",
        "True",
        "True",
    ],
    [
        "39386",
        "Men",
        "Apparel",
        "Bottomwear",
        "Jeans",
        "Blue",
        "Summer",
        "2012.0",
        "",
        "Peter England Jeans",
        "True",
        "True",
    ],
    [
        "42878",
        "Women",
        "Accessories",
        "Bags",
        "Clutches",
        "Maroon",
        "Summer",
        "2012.0",
        "Casual",
        "",
        "False",
        "True",
    ],  # row 3: missing title
    [
        "59263",
        "Women",
        "Accessories",
        "Watches",
        "Watches",
        "Silver",
        "NaN",
        "",
        "Casual",
        "Titan Women Watch",
        "True",
        "True",
    ],
    ["21379", "Men", "Apparel"],  # row 5: malformed (3 fields)
    [
        "15971",
        "Men",
        "Apparel",
        "Topwear",
        "Shirts",
        "Red",
        "Fall",
        "twenty",
        "Casual",
        "Turtle Red Shirt",
        "True",
        "True",
    ],  # row 6: bad year, kept
    [
        "15970",
        "Men",
        "Apparel",
        "Topwear",
        "Shirts",
        "Navy Blue",
        "Fall",
        "2011.0",
        "Casual",
        "Dup",
        "True",
        "True",
    ],  # row 7: duplicate id
    [
        "15972",
        "Women",
        "Footwear",
        "Shoes",
        "Heels",
        "Black",
        "Winter",
        "2016.0",
        "Party",
        "Catwalk Heels",
        "False",
        "True",
    ],  # no 60x80 image
]


def jpeg_bytes(colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (6, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG")
    return buf.getvalue()


def add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    """A .tar.gz with the given members (name -> bytes), directories implied."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            add_bytes(tf, name, data)
    return path


def write_sums(folder: Path) -> None:
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}"
        for p in sorted(folder.iterdir())
        if p.name.endswith((".gz",))
    ]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def myntra_csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(MYNTRA_HEADER)
    writer.writerows(rows)
    return gzip.compress(buf.getvalue().encode("utf-8"))


KAGL_CONFIG = {
    "name": "KAGL",
    "tasks": [
        {"name": "text-to-image", "query_col": ["text"], "doc_col": ["image"]},
        {
            "name": "category-to-product",
            "query_col": ["category1"],
            "doc_col": ["image", "text"],
            "doc_weights": [0.9, 0.1],
        },
        {
            "name": "color-to-product",
            "query_col": ["baseColour"],
            "doc_col": ["image", "text"],
            "doc_weights": [0.9, 0.1],
        },
    ],
}
KAGL_GT = {
    "ground_truth_text-image.json": {
        "Turtle Check Men Navy Blue Shirt": {"15970": 1},
        "Titan Women Watch": {"59263": 1},
    },
    "ground_truth_category1-image+text.json": {
        "Apparel": {"15970": 1, "39386": 1},
        "Accessories": {"59263": 1},
    },
    "ground_truth_baseColour-image+text.json": {"Blue": {"39386": 1}},
}

GROCERY_CLASSES = [
    ("Golden-Delicious", 0, "Apple", 0, "Fruit/Apple/Golden-Delicious"),
    ("Granny-Smith", 1, "Apple", 0, "Fruit/Apple/Granny-Smith"),
    ("Arla-Standard-Milk", 2, "Milk", 1, "Packages/Milk/Arla-Standard-Milk"),
]

DITTO_LINES = {
    "er_magellan/Textual/Abt-Buy": [
        "COL name VAL lg dishwasher COL description VAL white tall tub COL price VAL \tCOL name VAL lg ldf "
        "COL description VAL  COL price VAL 9.99\t0",
        "COL name VAL speck case COL description VAL clear COL price VAL \tCOL name VAL speck seethru case "
        "COL description VAL  COL price VAL \t1",
        "this line is not a pair",  # line 3
        "COL name VAL a\tCOL name VAL b\tyes",  # line 4: bad label
        "",
        "name VAL a\tCOL name VAL b\t1",  # line 6: left side without COL
    ],
    "er_magellan/Structured/Amazon-Google": [
        "COL title VAL visio COL manufacturer VAL microsoft COL price VAL 129.95 "
        "\tCOL title VAL adobe cs3 COL manufacturer VAL  COL price VAL 4\t0"
    ],
    "er_magellan/Structured/Walmart-Amazon": [
        "COL title VAL lenovo bag COL brand VAL lenovo\tCOL title VAL lenovo backpack COL brand VAL lenovo\t1"
    ],
    "wdc/all": ['COL title VAL  "HP 36GB" "Null"\tCOL title VAL  "HP 36.4-GB" "Null"\t1'],
}


@dataclass
class FakeData:
    data_dir: Path
    cache: Path


def build_fake_data(root: Path) -> FakeData:
    data = root / "data"
    data.mkdir(parents=True)
    (data / "myntra_styles_full.csv.gz").write_bytes(myntra_csv(MYNTRA_ROWS))
    small = {f"images/{pid}.jpg": jpeg_bytes() for pid in ("15970", "39386", "42878", "15971", "21379")}
    small["images/59263.jpg"] = b"not a jpeg at all"
    make_tar(data / "myntra_small_images_60x80.tar.gz", small)
    make_tar(
        data / "myntra_224_images.tar.gz",
        {f"images/{pid}.jpg": jpeg_bytes(size=(22, 22)) for pid in ("15970", "15972")},
    )
    kagl = {"./configs/KAGL.json": json.dumps(KAGL_CONFIG).encode()}
    kagl.update({f"./data/KAGL/gt_query_doc/{k}": json.dumps(v).encode() for k, v in KAGL_GT.items()})
    make_tar(data / "marqo_kagl_qrels.tar.gz", kagl)
    make_tar(data / "grocery_trainval.tar.gz", grocery_members())
    ditto = {}
    for folder, lines in DITTO_LINES.items():
        names = (
            ("train.txt.small", "valid.txt.small") if folder.startswith("wdc") else ("train.txt", "valid.txt")
        )
        for name in names:
            ditto[f"ditto/data/{folder}/{name}"] = ("\n".join(lines) + "\n").encode()
    make_tar(data / "ditto_trainvalid.tar.gz", ditto)
    write_sums(data)
    return FakeData(data, root / "cache")


def grocery_members() -> dict[str, bytes]:
    base = "grocery/dataset"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["Class Name (str)", "Class ID (int)", "Coarse Class Name (str)", "Coarse Class ID (int)",
                     "Iconic Image Path (str)", "Product Description Path (str)"])  # fmt: skip
    members: dict[str, bytes] = {}
    train, val = [], []
    for name, fine, coarse_name, coarse, folder in GROCERY_CLASSES:
        icon = f"/iconic-images-and-descriptions/{folder}/{name}_Iconic.jpg"
        desc = f"/iconic-images-and-descriptions/{folder}/{name}_Description.txt"
        writer.writerow([name, fine, coarse_name, coarse, icon, desc])
        members[base + icon] = jpeg_bytes((fine * 60, 100, 100))
        members[base + desc] = f"{name} is a nice product.\n".encode()
        for i in (1, 2):
            train.append(f"train/{folder}/{name}_{i:03d}.jpg, {fine}, {coarse}")
            members[f"{base}/{train[-1].split(',')[0]}"] = jpeg_bytes()
        val.append(f"val/{folder}/{name}_001.jpg, {fine}, {coarse}")
        members[f"{base}/{val[-1].split(',')[0]}"] = jpeg_bytes()
    members[f"{base}/classes.csv"] = buf.getvalue().encode()
    members[f"{base}/train.txt"] = ("\n".join(train) + "\n").encode()
    members[f"{base}/val.txt"] = ("\n".join(val) + "\n").encode()
    return members


def real_data_or_skip(*files: str) -> Path:
    """The real shared data folder, or skip the test when a needed file is absent."""
    folder = shared_data_dir()
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        pytest.skip(f"real data not found in {folder} ({', '.join(missing)}); set $SAMESTYLE_DATA")
    return folder
