"""``samestyle embed --engine ray``: the embed stage on Ray Data, locally or on a cluster.

The driver reads the catalogue, computes each product's cache key exactly as the local path does
(``features.extract``), looks the keys up in the feature cache, and hands only the missing products to a
pool of Ray actors (``map_batches`` with ``concurrency = workers``). Every actor builds its own encoders
from their registry names (so weights load once per actor, not per batch), decodes and preprocesses its
images and encodes them and the titles. The driver collects the vectors by catalogue row, fills the cache
and writes the same ``emb/`` folder as :func:`samestyle.pipeline.embed.embed_catalog`.

On a local Ray the actors write each batch's vectors to an ``.npz`` part in a scratch folder and return
only its path (``collect="disk"``): the driver then reads plain arrays instead of unpacking Arrow blocks
from the object store on cores the actors need (full catalogue, two runs: 2 actors 3-4% faster, the
2-over-1 ratio 1.60-1.61x -> 1.65-1.69x; BENCHMARKS.md). On a cluster the object store is the default.

Ray Data's own progress bars are switched off for the run (restored after): on a 2-core machine their
rendering in the driver competes with the actors (4,000 products, 2 actors: compute span 14.9 s with
them, 13.8-13.9 s without). The driver shows one tqdm bar (products/s) instead.

``address=None`` starts a local Ray (``ray.init(num_cpus=...)``); ``address="auto"`` or
``"ray://head:10001"`` joins an existing cluster (see docs/scaling.md). Image paths must then resolve on
every node (a shared filesystem or the same layout on each machine).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from samestyle.catalog.store import Catalog
from samestyle.errors import ConfigError, DependencyError, SamestyleError
from samestyle.features.cache import FeatureCache, Key
from samestyle.features.extract import _image_key, text_sha256
from samestyle.models import IMAGE_ENCODERS, TEXT_ENCODERS
from samestyle.pipeline.embed import EmbedReport
from samestyle.pipeline.embeddings import EmbeddingSet

log = logging.getLogger(__name__)


INFER_BATCH_PER_THREAD = 16


class EncodeActor:
    """A Ray actor body: builds the named encoders once, then encodes batches of rows."""

    def __init__(
        self, image: str | None, text: str | None, threads: int, batch_size: int, parts_dir: str | None = None
    ) -> None:
        import samestyle.models  # noqa: F401  (registers the encoders inside the worker)

        self.parts_dir = parts_dir

        self.image = IMAGE_ENCODERS.build(image, num_threads=threads) if image else None
        self.text = TEXT_ENCODERS.build(text, num_threads=threads) if text else None
        # at most 16 inputs a thread per inference call: on one thread EfficientNet-Lite0 BF16 ran 18%
        # faster at 16 than at 64 (its activations stay closer to the core's 2 MiB L2)
        self.batch_size = max(1, min(batch_size, INFER_BATCH_PER_THREAD * threads))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"row": np.asarray(batch["row"], np.int64)}
        if self.image is not None:
            vecs = np.zeros((len(out["row"]), self.image.dim), np.float32)
            ok = np.zeros(len(out["row"]), bool)
            pixels, where = [], []
            for i, path in enumerate(batch["path"]):
                if not path:
                    continue
                try:
                    pixels.append(self.image.preprocess(str(path)))
                    where.append(i)
                except (SamestyleError, OSError, ValueError) as exc:
                    logging.getLogger(__name__).warning("row %d: no image vector (%s)", out["row"][i], exc)
            if pixels:
                vecs[where] = self.image.encode_pixels(np.stack(pixels), batch_size=self.batch_size)
                ok[where] = True
            out["image"], out["image_ok"] = vecs, ok
        if self.text is not None:
            out["text"] = self.text.encode_texts([str(t) for t in batch["text"]], batch_size=self.batch_size)
        return out if self.parts_dir is None else self._to_part(out)

    def _to_part(self, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Write the batch's vectors to one ``.npz`` under ``parts_dir``; return its rows and its path."""
        import os
        import uuid

        path = os.path.join(str(self.parts_dir), f"{uuid.uuid4().hex}.npz")
        arrays: dict[str, Any] = out  # numpy's stubs would read the keyword arrays as allow_pickle
        with open(path + ".tmp", "wb") as fh:  # scratch: renamed whole, read once by the driver, removed
            np.savez(fh, **arrays)
        os.replace(path + ".tmp", path)
        return {"row": out["row"], "part": np.full(len(out["row"]), path, object)}


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise DependencyError(f"--engine ray needs ray[data] ({exc}): pip install -e '.[models]'") from None
    return ray


def embed_catalog_ray(
    catalog: Catalog,
    out_dir: str | Path,
    image_name: str | None,
    text_name: str | None,
    cache_root: str | Path | None,
    *,
    workers: int = 2,
    threads_per_worker: int = 1,
    batch_size: int = 64,
    address: str | None = None,
    encoder_keys: dict[str, str] | None = None,
    progress: bool = True,
    collect: str = "auto",
    parts_dir: str | Path | None = None,
) -> tuple[EmbeddingSet, EmbedReport]:
    """Encode the catalogue with ``workers`` Ray actors; same artifacts as the local ``embed_catalog``.

    Args:
        image_name / text_name: registry names (None or "none" skips the modality).
        workers: actors (each loads its own encoders); ``threads_per_worker`` intra-op threads each.
        address: a Ray cluster address; None starts a local Ray with ``workers * threads_per_worker`` CPUs.
        progress: a tqdm bar (products/s) on stderr, updated by the driver as results arrive.
        collect: how the actors hand their vectors back. "store": through Ray's object store (works on any
            cluster); "disk": each actor writes a batch's vectors to one ``.npz`` under ``parts_dir`` (a
            scratch folder made and removed here when None) and returns only its path, so the driver does
            not unpack them from Arrow blocks; "auto": "disk" on a local Ray, "store" on a cluster.
        parts_dir: the scratch folder for ``collect="disk"``; on a cluster it must be a folder that every
            node and the driver share.
    """
    if collect not in ("auto", "store", "disk"):
        raise ConfigError(f"collect must be 'auto', 'store' or 'disk', not {collect!r}")
    if collect == "auto":
        collect = "store" if address else "disk"
    if collect == "disk" and address and parts_dir is None:
        raise ConfigError("collect='disk' on a Ray cluster needs parts_dir: a folder every node shares")
    ray = _ray()
    image_name = None if image_name in (None, "none") else image_name
    text_name = None if text_name in (None, "none") else text_name
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = (
            {"address": address} if address else {"num_cpus": workers * threads_per_worker}
        )
        ray.init(log_to_driver=False, include_dashboard=False, configure_logging=False, **kwargs)
    try:
        with _quiet_data_context(ray), _scratch(collect, parts_dir) as parts:
            return _run(ray, catalog, out_dir, image_name, text_name, cache_root, workers,
                        threads_per_worker, batch_size, encoder_keys, progress, parts)  # fmt: skip
    finally:
        if started_here:
            ray.shutdown()


@contextmanager
def _quiet_data_context(ray: Any) -> Iterator[None]:
    """Ray Data's progress bars off for the block (their rendering costs the driver CPU), then restored."""
    ctx = ray.data.DataContext.get_current()
    names = [n for n in ("enable_progress_bars", "enable_operator_progress_bars") if hasattr(ctx, n)]
    old = {n: getattr(ctx, n) for n in names}
    for n in names:
        setattr(ctx, n, False)
    try:
        yield
    finally:
        for n, v in old.items():
            setattr(ctx, n, v)


@contextmanager
def _scratch(collect: str, parts_dir: str | Path | None) -> Iterator[Path | None]:
    """The folder the actors write their parts to (None: the object store), made and removed here."""
    if collect != "disk":
        yield None
        return
    root = None if parts_dir is None else Path(parts_dir)
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="samestyle-ray-parts-", dir=root) as tmp:
        yield Path(tmp)


def _keys(catalog: Catalog, image: bool) -> tuple[dict[int, Key], dict[int, Path], dict[int, Key]]:
    image_keys: dict[int, Key] = {}
    paths: dict[int, Path] = {}
    if image:
        for row, product in enumerate(catalog.products):
            found = _image_key(catalog, product)
            if found is not None:
                image_keys[row], paths[row] = found
    text_keys = {row: (p.id, text_sha256(p.text)) for row, p in enumerate(catalog.products)}
    return image_keys, paths, text_keys


def _fill(spaces: dict[str, Any], batch: dict[str, np.ndarray]) -> None:
    """Copy one encoded batch (rows + vectors) into the driver's catalogue-order arrays."""
    got = np.asarray(batch["row"], np.int64)
    if "image" in spaces:
        ok = np.asarray(batch["image_ok"], bool)
        _, _, vecs, present, _ = spaces["image"]
        vecs[got[ok]], present[got[ok]] = np.asarray(batch["image"])[ok], True
    if "text" in spaces:
        _, _, vecs, present, _ = spaces["text"]
        vecs[got], present[got] = np.asarray(batch["text"]), True


def _run(
    ray: Any,
    catalog: Catalog,
    out_dir: str | Path,
    image_name: str | None,
    text_name: str | None,
    cache_root: str | Path | None,
    workers: int,
    threads: int,
    batch_size: int,
    encoder_keys: dict[str, str] | None,
    progress: bool,
    parts_dir: str | Path | None = None,
) -> tuple[EmbeddingSet, EmbedReport]:
    import pyarrow as pa

    start = time.perf_counter()
    probe_img = IMAGE_ENCODERS.build(image_name, num_threads=1) if image_name else None
    probe_txt = TEXT_ENCODERS.build(text_name, num_threads=1) if text_name else None
    n = len(catalog)
    image_keys, paths, text_keys = _keys(catalog, probe_img is not None)
    spaces: dict[str, tuple[Any, dict[int, Key], np.ndarray, np.ndarray, FeatureCache | None]] = {}
    for space, enc, keys in (("image", probe_img, image_keys), ("text", probe_txt, text_keys)):
        if enc is None:
            continue
        vecs, present = np.zeros((n, enc.dim), np.float32), np.zeros(n, bool)
        cache = FeatureCache(Path(cache_root), enc.name, enc.dim) if cache_root is not None else None
        rows = sorted(keys)
        if cache is not None and rows:
            cached, found = cache.lookup([keys[r] for r in rows])
            hit = np.asarray(rows, np.int64)[found]
            vecs[hit], present[hit] = cached[found], True
        spaces[space] = (enc, keys, vecs, present, cache)
    todo = sorted(
        r for r in range(n) if any(r in keys and not present[r] for _, keys, _, present, _ in spaces.values())
    )
    log.info("ray: %d products, %d to encode on %d workers", n, len(todo), workers)
    if todo:
        table = pa.table(
            {
                "row": pa.array(todo, pa.int64()),
                "path": pa.array([str(paths[r]) if r in paths else "" for r in todo], pa.string()),
                "text": pa.array([catalog.products[r].text for r in todo], pa.string()),
            }
        )
        # blocks made on the driver (no read tasks): every CPU can go to the encoder actors. Small blocks
        # (~32 per actor) and at most 2 in flight per actor keep the actors' last blocks even: with 4
        # blocks per actor one actor could sit idle for a whole block at the end.
        step = max(batch_size * 4, -(-len(todo) // (workers * 32)))
        ds = ray.data.from_arrow([table.slice(lo, step) for lo in range(0, len(todo), step)])
        result = ds.map_batches(
            EncodeActor,
            fn_constructor_kwargs={
                "image": image_name if "image" in spaces else None,
                "text": text_name if "text" in spaces else None,
                "threads": threads,
                "batch_size": batch_size,
                "parts_dir": None if parts_dir is None else str(parts_dir),
            },
            batch_size=batch_size * 4,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=2),
            num_cpus=threads,
        )
        bar = tqdm(total=len(todo), unit="product", disable=not progress, desc=f"ray x{workers}")
        for batch in result.iter_batches(batch_size=None, batch_format="numpy"):
            bar.update(len(batch["row"]))
            if "part" not in batch:
                _fill(spaces, batch)
                continue
            for part in dict.fromkeys(batch["part"]):
                with np.load(str(part)) as z:
                    _fill(spaces, {k: z[k] for k in z.files})
                Path(str(part)).unlink()
        bar.close()
    seconds = time.perf_counter() - start
    meta = {
        "catalog_products": n,
        "encoder_keys": dict(encoder_keys or {}),
        "engine": "ray",
        "workers": workers,
    }
    emb = EmbeddingSet(ids=catalog.ids, meta=meta)
    for space, (enc, keys, vecs, present, cache) in spaces.items():
        new = [r for r in todo if r in keys and present[r]]
        if cache is not None and new:
            cache.put([keys[r] for r in new], vecs[new])
        emb.add_space(space, vecs, present, enc.name)
    emb.save(out_dir)
    with_image = int(emb.present["image"].sum()) if "image" in emb.present else 0
    return emb, EmbedReport(n, with_image, {"ray": seconds}, Path(out_dir))


__all__ = ["EncodeActor", "embed_catalog_ray"]
