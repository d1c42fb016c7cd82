"""The ``emb/`` artifact: one matrix per space, aligned with one id list, plus presence masks.

Layout (written data files first, ``embeddings.json`` last, each atomically)::

    emb/ids.json                 product ids in catalogue order
    emb/<space>.npy              float32 [N, D], L2-normalised rows (zero rows where absent)
    emb/<space>.present.npy      bool [N]: False where the product has no such vector (e.g. bad image)
    emb/embeddings.json          format version, spaces (dim, encoder, count), provenance
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.errors import ArtifactError
from samestyle.fsio import atomic_path, file_sha256, read_json, write_json
from samestyle.models.base import l2_normalize

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
        mask = np.ones(len(self.ids), bool) if present is None else np.asarray(present, bool)
        self.vectors[name] = l2_normalize(vectors) * mask[:, None]
        self.present[name] = mask
        self.encoders[name] = encoder

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "ids.json") as tmp:
            tmp.write_text(json.dumps(self.ids), encoding="utf-8")
        spaces: dict[str, Any] = {}
        for name, mat in self.vectors.items():
            for suffix, arr in ((".npy", mat.astype(np.float32)), (".present.npy", self.present[name])):
                with atomic_path(out / f"{name}{suffix}") as tmp, open(tmp, "wb") as fh:
                    np.save(fh, arr)
            spaces[name] = {
                "dim": int(mat.shape[1]),
                "count": int(self.present[name].sum()),
                "encoder": self.encoders.get(name, ""),
                "sha256": file_sha256(out / f"{name}.npy"),
            }
        write_json(
            out / MANIFEST,
            {"format_version": FORMAT_VERSION, "n": len(self.ids), "spaces": spaces, "meta": self.meta},
        )
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
        ids = json.loads((path / "ids.json").read_text(encoding="utf-8"))
        out = cls(ids=ids, meta=manifest.get("meta", {}))
        for name, info in manifest["spaces"].items():
            if verify and file_sha256(path / f"{name}.npy") != info["sha256"]:
                raise ArtifactError(f"{path / (name + '.npy')}: checksum mismatch; re-run 'samestyle embed'")
            mat = np.load(path / f"{name}.npy")
            if mat.shape != (len(ids), info["dim"]):
                raise ArtifactError(
                    f"{path / (name + '.npy')}: shape {mat.shape}, expected {(len(ids), info['dim'])}"
                )
            out.vectors[name] = mat
            out.present[name] = np.load(path / f"{name}.present.npy")
            out.encoders[name] = info.get("encoder", "")
        return out

    def space(self, name: str) -> tuple[list[str], np.ndarray]:
        """The ids and vectors of the products that have a vector in ``name``."""
        if name not in self.vectors:
            raise ArtifactError(f"no space '{name}' in these embeddings (have: {', '.join(self.vectors)})")
        mask = self.present[name]
        return [i for i, keep in zip(self.ids, mask, strict=True) if keep], self.vectors[name][mask]
