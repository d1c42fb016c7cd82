"""``embed --engine ray`` wall time with 1 and 2 local workers against the plain local path.

Run:
    .venv/bin/python benchmarks/bench_ray.py --n 3000 --repeats 2 --out benchmarks/results/ray_embed.json

Each run embeds the first ``--n`` Myntra products (no feature cache) with the same encoders: the local
``embed_catalog`` with ``--local-threads`` intra-op threads, then Ray Data with 1 and 2 actors of one
thread each (``ray.init(num_cpus=workers)``, started and stopped per run, startup included). Runs are
interleaved ``--repeats`` times; medians are reported, with the max abs difference to the local vectors.

``--plain`` adds the ceiling without Ray: the same actor class (``EncodeActor``: decode, preprocess, encode
a 256-row batch) in 1 and 2 plain processes (``multiprocessing`` spawn pool, one thread each, batches
handed out one at a time, pool start and encoder loading included). The gap between its 2-over-1 ratio
and Ray's is what Ray's own processes cost on a machine with no spare core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.catalog.store import Catalog, read_catalog
from samestyle.fsio import write_json
from samestyle.models import IMAGE_ENCODERS, TEXT_ENCODERS
from samestyle.models.base import l2_normalize
from samestyle.pipeline.embed import embed_catalog
from samestyle.pipeline.ray_engine import EncodeActor, embed_catalog_ray

_ACTOR: EncodeActor | None = None


def _start(image: str, text: str) -> None:
    global _ACTOR
    _ACTOR = EncodeActor(image, text, threads=1, batch_size=64)


def _encode(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    assert _ACTOR is not None
    return _ACTOR(batch)


def plain_processes(catalog: Catalog, image: str, text: str, workers: int) -> dict[str, np.ndarray]:
    """Image and text vectors of ``catalog`` from ``workers`` plain processes running ``EncodeActor``."""
    import multiprocessing as mp

    from samestyle.pipeline.ray_engine import _keys

    _, paths, _ = _keys(catalog, True)
    rows = np.arange(len(catalog))
    batches = [
        {"row": rows[lo : lo + 256],
         "path": np.array([str(paths.get(int(r), "")) for r in rows[lo : lo + 256]], object),
         "text": np.array([catalog.products[int(r)].text for r in rows[lo : lo + 256]], object)}
        for lo in range(0, len(rows), 256)
    ]  # fmt: skip
    out = {"image": np.zeros((len(rows), 1280), np.float32), "text": np.zeros((len(rows), 384), np.float32)}
    with mp.get_context("spawn").Pool(workers, initializer=_start, initargs=(image, text)) as pool:
        for got in pool.imap_unordered(_encode, batches, chunksize=1):
            out["image"][got["row"]] = got["image"]
            out["text"][got["row"]] = got["text"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog", default=".cache/samestyle/work/myntra/catalog")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--image-encoder", default="efficientnet-lite0")
    parser.add_argument("--text-encoder", default="minilm-onnx")
    parser.add_argument("--local-threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--plain", action="store_true", help="also 1 and 2 plain processes (no Ray)")
    parser.add_argument(
        "--collect", default="auto",
        help="how actors hand vectors back, comma-separated, each measured: 'store' (Ray's object store), "
        "'disk' (a .npz part per batch under a scratch folder), 'auto' (the engine's default)",
    )  # fmt: skip
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    load_at_start = list(os.getloadavg())  # other jobs on the machine skew the wall times
    full = read_catalog(args.catalog)
    catalog = Catalog(products=full.products[: args.n], image_root=full.image_root)
    collects = args.collect.split(",")
    names = {c: "ray" if c == collects[0] else f"ray-{c}" for c in collects}  # ray-1 / ray-2 = the first
    times: dict[str, list[float]] = {"local": []} | {f"{names[c]}-{w}": [] for c in collects for w in (1, 2)}
    if args.plain:
        times |= {"plain-1": [], "plain-2": []}
    diffs: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            start = time.perf_counter()
            local, _ = embed_catalog(
                catalog, Path(tmp) / "local",
                IMAGE_ENCODERS.build(args.image_encoder, num_threads=args.local_threads),
                TEXT_ENCODERS.build(args.text_encoder, num_threads=args.local_threads), None, progress=False,
            )  # fmt: skip
            times["local"].append(time.perf_counter() - start)
            for collect in collects:
                for workers in (1, 2):
                    name = f"{names[collect]}-{workers}"
                    start = time.perf_counter()
                    emb, _ = embed_catalog_ray(
                        catalog, Path(tmp) / name, args.image_encoder, args.text_encoder, None,
                        workers=workers, threads_per_worker=1, progress=False, collect=collect,
                    )  # fmt: skip
                    times[name].append(time.perf_counter() - start)
                    diffs[name] = max(
                        float(np.abs(emb.vectors[s] - local.vectors[s]).max()) for s in ("image", "text")
                    )
            for workers in (1, 2) if args.plain else ():
                start = time.perf_counter()
                vecs = plain_processes(catalog, args.image_encoder, args.text_encoder, workers)
                times[f"plain-{workers}"].append(time.perf_counter() - start)
                diffs[f"plain-{workers}"] = max(  # the local set holds unit vectors
                    float(np.abs(l2_normalize(vecs[s]) - local.vectors[s]).max()) for s in ("image", "text")
                )
            print(rep, {k: round(v[-1], 1) for k, v in times.items()}, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    result: dict[str, Any] = {
        "args": vars(args),
        "products": len(catalog),
        "seconds_median": med,
        "seconds_all": times,
        "products_per_s": {k: len(catalog) / v for k, v in med.items()},
        "speedup_2_over_1_workers": med["ray-1"] / med["ray-2"],
        "speedup_2_over_1_by_collect": {c: med[f"{names[c]}-1"] / med[f"{names[c]}-2"] for c in collects},
        "plain_speedup_2_over_1": med["plain-1"] / med["plain-2"] if args.plain else None,
        "max_abs_diff_vs_local": diffs,
        "machine": {
            "load_average_1_5_15_at_start": load_at_start,
            "load_average_1_5_15_at_end": list(os.getloadavg()),
        },
    }
    write_json(args.out, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
