"""The ``emb/`` artifact: one matrix per space, aligned with one id list, plus presence masks.

Layout::

    emb/ids.<tag>.json                product ids in catalogue order
    emb/<space>.<tag>.npy             float32 [N, D], L2-normalised rows (zero rows where absent)
    emb/<space>.present.<tag>.npy     bool [N]: False where the product has no such vector (e.g. bad image)
    emb/embeddings.json               format version, the data file names, spaces (dim, encoder, count,
                                      sha256), provenance

``embeddings.json`` is the commit point: every save writes its data files under a new ``<tag>`` first
(each atomically), then replaces the manifest atomically, then deletes the files the old manifest named.
A process killed at any moment leaves the previous set loadable (or, after the manifest, the new one),
never new ids beside old vectors. Sets written before the tags (``ids.json``, ``<space>.npy``) still load.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.errors import ArtifactError
from samestyle.fsio import atomic_path, file_sha256, read_json, write_json
from samestyle.models.base import l2_normalize

log = logging.getLogger(__name__)

MANIFEST = "embeddings.json"
FORMAT_VERSION = 1


@dataclass
class EmbeddingSet:
    """Vectors of one catalogue in several named spaces ("image", "text", later "joint-fused", ...)."""

    ids: list[str]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # space -> [N, D]
    present: dict[str, np.ndarray] = field(default_factory=dict)  # space -> bool [N]
    encoders: dict[str, str] = field(default_factory=dict)  # space -> encoder/model name
    meta: dict[str, Any] = field(default_factory=dict)

    def add_space(self, name: str, vectors: np.ndarray, present: np.ndarray | None, encoder: str) -> None:
        if vectors.shape[0] != len(self.ids):
            raise ArtifactError(f"space '{name}': {vectors.shape[0]} rows for {len(self.ids)} ids")
        mask = np.ones(len(self.ids), bool) if present is None else np.asarray(present, bool).copy()
        zero = mask & ~(np.linalg.norm(np.asarray(vectors, np.float64), axis=1) > 0)
        if zero.any():  # an all-zero vector has no direction: absent, not a broken index
            first = self.ids[int(np.flatnonzero(zero)[0])]
            log.warning(
                "space '%s': %d all-zero vector(s) marked absent (e.g. '%s')", name, zero.sum(), first
            )
            mask &= ~zero
        self.vectors[name] = l2_normalize(vectors) * mask[:, None]
        self.present[name] = mask
        self.encoders[name] = encoder

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        old = _data_files(out)
        tag = secrets.token_hex(4)
        files = {"ids": f"ids.{tag}.json"}
        with atomic_path(out / files["ids"]) as tmp:
            tmp.write_text(json.dumps(self.ids), encoding="utf-8")
        spaces: dict[str, Any] = {}
        for name, mat in self.vectors.items():
            names = {"vectors": f"{name}.{tag}.npy", "present": f"{name}.present.{tag}.npy"}
            for key, arr in (("vectors", mat.astype(np.float32)), ("present", self.present[name])):
                with atomic_path(out / names[key]) as tmp, open(tmp, "wb") as fh:
                    np.save(fh, arr)
            spaces[name] = {
                "dim": int(mat.shape[1]),
                "count": int(self.present[name].sum()),
                "encoder": self.encoders.get(name, ""),
                "sha256": file_sha256(out / names["vectors"]),
                "files": names,
            }
        manifest = {"format_version": FORMAT_VERSION, "n": len(self.ids), "files": files, "spaces": spaces}
        write_json(out / MANIFEST, manifest | {"meta": self.meta})  # the commit point
        for stale in old - _data_files(out):
            stale.unlink(missing_ok=True)
        return out

    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> EmbeddingSet:
        path = Path(path)
        if not (path / MANIFEST).exists():
            raise ArtifactError(f"{path}: no {MANIFEST}; create embeddings with 'samestyle embed'")
        manifest = read_json(path / MANIFEST)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(
                f"{path}: embeddings format {manifest.get('format_version')} is not supported"
            )
        ids = json.loads(
            (path / manifest.get("files", {}).get("ids", "ids.json")).read_text(encoding="utf-8")
        )
        if len(ids) != manifest.get("n", len(ids)):
            raise ArtifactError(f"{path}: {len(ids)} ids but the manifest says {manifest['n']}")
        out = cls(ids=ids, meta=manifest.get("meta", {}))
        for name, info in manifest["spaces"].items():
            names = info.get("files", {"vectors": f"{name}.npy", "present": f"{name}.present.npy"})
            vec_path = path / names["vectors"]
            if verify and file_sha256(vec_path) != info["sha256"]:
                raise ArtifactError(f"{vec_path}: checksum mismatch; re-run 'samestyle embed'")
            mat = np.load(vec_path)
            if mat.shape != (len(ids), info["dim"]):
                raise ArtifactError(f"{vec_path}: shape {mat.shape}, expected {(len(ids), info['dim'])}")
            out.vectors[name] = mat
            out.present[name] = np.load(path / names["present"])
            out.encoders[name] = info.get("encoder", "")
        return out

    def space(self, name: str) -> tuple[list[str], np.ndarray]:
        """The ids and vectors of the products that have a vector in ``name``."""
        if name not in self.vectors:
            raise ArtifactError(f"no space '{name}' in these embeddings (have: {', '.join(self.vectors)})")
        mask = self.present[name]
        return [i for i, keep in zip(self.ids, mask, strict=True) if keep], self.vectors[name][mask]


def _data_files(folder: Path) -> set[Path]:
    """The data files the current manifest of ``folder`` names (none without a manifest)."""
    if not (folder / MANIFEST).exists():
        return set()
    try:
        manifest = read_json(folder / MANIFEST)
    except (ArtifactError, ValueError):
        return set()
    files = {manifest.get("files", {}).get("ids", "ids.json")}
    for name, info in manifest.get("spaces", {}).items():
        files |= set(info.get("files", {"v": f"{name}.npy", "p": f"{name}.present.npy"}).values())
    return {folder / f for f in files}
