"""Title generation: a small transformer decoder that cross-attends to the 55 kaleido patch tokens.

Vocabulary: the prepared subset's local word pieces (``vocab``, id 0 = padding) plus BOS (id ``U``) and
EOS (id ``U + 1``), ``U = len(token_table)``. Input word pieces enter as the frozen MiniLM word-piece
vectors (``token_table``, a buffer saved with the model) through a learned projection; BOS / EOS are
learned vectors. The output layer is tied to the same projected table (after a learned linear map, plus a
bias), so a rare word piece starts near its MiniLM neighbours. The cross-attention memory is the patch
features projected to the width, plus a learned embedding per patch (0..54), layer-normed.

Decoding (``greedy``, ``beam_search``): at most ``max_tokens`` word pieces, then EOS is forced; padding
and BOS are never generated. ``beam_search`` ranks by ``sum log p / length ** length_penalty`` (length
counts the EOS), both while searching and for the final pick; ``beam = 1`` is greedy decoding.
``pieces_to_text`` joins word pieces as BERT's tokenizer does (``##`` continuations) and removes the space
before punctuation / inside "men ' s" (the tokenizer's clean-up, which this MiniLM tokenizer turns off).

Inputs for a new image: ``image_patches`` computes the patches of image files exactly as
``pretrain.prepare`` built the training ones (``map_extractor`` -> ``kaleido_patches`` -> PCA ->
``/ patch_scale``).

Example:
    >>> cfg = DecoderConfig(width=16, layers=1, heads=2, ff=32, patch_dim=8, vocab=6, max_tokens=4)
    >>> m = CaptionDecoder(cfg, torch.randn(6, 384)).eval()
    >>> len(greedy(m, torch.randn(3, 55, 8)))
    3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samestyle.errors import SamestyleError
from samestyle.models.base import ImageEncoder


@dataclass(frozen=True)
class DecoderConfig:
    """Decoder sizes; ``patch_dim``, ``vocab`` (local, with padding) and ``max_tokens`` come from the data."""

    width: int = 256
    layers: int = 2
    heads: int = 4
    ff: int = 512
    dropout: float = 0.1
    max_tokens: int = 24
    patch_dim: int = 256
    n_patches: int = 55
    text_dim: int = 384
    vocab: int = 0


class CaptionDecoder(nn.Module):
    """``logits(inputs, memory)``: next-piece logits ``[B, t, U + 2]`` of input ids ``[B, t]`` (BOS first)."""

    token_table: Tensor

    def __init__(self, cfg: DecoderConfig, token_table: Tensor) -> None:
        super().__init__()
        if cfg.vocab != len(token_table):
            raise ValueError(f"vocab {cfg.vocab} != token_table rows {len(token_table)}")
        self.cfg = cfg
        w = cfg.width
        self.register_buffer("token_table", token_table.float().clone())  # [U, text_dim], frozen
        self.text_proj = nn.Linear(cfg.text_dim, w)
        self.special = nn.Parameter(torch.randn(2, w) * 0.02)  # BOS, EOS
        self.position = nn.Embedding(cfg.max_tokens + 1, w)
        self.patch_proj = nn.Linear(cfg.patch_dim, w)
        self.cell = nn.Embedding(cfg.n_patches, w)
        self.ln_mem = nn.LayerNorm(w)
        self.ln_in = nn.LayerNorm(w)
        self.drop = nn.Dropout(cfg.dropout)
        layer = nn.TransformerDecoderLayer(
            w, cfg.heads, cfg.ff, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, cfg.layers)
        self.ln_out = nn.LayerNorm(w)
        self.out_proj = nn.Linear(w, w)
        for emb in (self.position, self.cell):  # BERT's init: N(0, 1) would drown the ~0.05 content
            nn.init.normal_(emb.weight, std=0.02)
        self.out_bias = nn.Parameter(torch.zeros(cfg.vocab + 2))

    @property
    def bos(self) -> int:
        return self.cfg.vocab

    @property
    def eos(self) -> int:
        return self.cfg.vocab + 1

    def embedding_table(self) -> Tensor:
        """``[U + 2, W]``: projected word pieces, then BOS, EOS."""
        return torch.cat([self.text_proj(self.token_table), self.special])

    def memory(self, patches: Tensor) -> Tensor:
        """``[B, P, D]`` patch features -> ``[B, P, W]`` cross-attention memory."""
        return self.ln_mem(self.patch_proj(patches.float()) + self.cell.weight[: patches.shape[1]])

    def logits(self, inputs: Tensor, memory: Tensor) -> Tensor:
        t = inputs.shape[1]
        emb = self.embedding_table()
        x = self.drop(self.ln_in(emb[inputs] + self.position.weight[:t]))
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=inputs.device), diagonal=1)
        h = self.decoder(x, memory, tgt_mask=causal, tgt_is_causal=True)
        return self.out_proj(self.ln_out(h)) @ emb.T + self.out_bias

    def teacher_forcing(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """``(inputs [B, T + 1], targets [B, T + 1])`` from 0-padded pieces: BOS + pieces -> pieces + EOS."""
        b = tokens.shape[0]
        lengths = (tokens > 0).sum(1)
        inputs = torch.cat([torch.full((b, 1), self.bos, dtype=tokens.dtype), tokens], 1)
        targets = torch.cat([tokens, torch.zeros(b, 1, dtype=tokens.dtype)], 1)
        targets[torch.arange(b), lengths] = self.eos
        return inputs, targets

    def loss(self, tokens: Tensor, patches: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Mean teacher-forced cross-entropy per target piece (EOS included, padding ignored)."""
        inputs, targets = self.teacher_forcing(tokens)
        logits = self.logits(inputs, self.memory(patches))
        return F.cross_entropy(
            logits.flatten(0, 1), targets.flatten(), ignore_index=0, label_smoothing=label_smoothing
        )

    def next_logp(self, seq: Tensor, memory: Tensor, step: int, max_len: int) -> Tensor:
        """``[B, U + 2]`` next-piece log-probabilities; padding / BOS banned, EOS forced at ``max_len``."""
        logp = F.log_softmax(self.logits(seq, memory)[:, -1], dim=-1)
        banned = torch.zeros_like(logp, dtype=torch.bool)
        banned[:, [0, self.bos]] = True
        if step >= max_len:
            banned[:, : self.eos] = True
        return logp.masked_fill(banned, float("-inf"))


def _strip(seq: Tensor, eos: int) -> list[int]:
    out = []
    for t in seq.tolist():
        if t in (eos, 0):
            break
        out.append(t)
    return out


@torch.inference_mode()
def greedy(model: CaptionDecoder, patches: Tensor, max_len: int | None = None) -> list[list[int]]:
    """Local piece ids (no BOS / EOS) of the argmax title of each ``[B, P, D]`` patch set."""
    max_len = model.cfg.max_tokens if max_len is None else min(max_len, model.cfg.max_tokens)
    mem = model.memory(patches)
    b = len(patches)
    seq = torch.full((b, 1), model.bos, dtype=torch.long)
    done = torch.zeros(b, dtype=torch.bool)
    for step in range(max_len + 1):
        nxt = model.next_logp(seq, mem, step, max_len).argmax(-1)
        nxt = torch.where(done, torch.zeros_like(nxt), nxt)
        seq = torch.cat([seq, nxt[:, None]], 1)
        done |= nxt == model.eos
        if bool(done.all()):
            break
    return [_strip(s[1:], model.eos) for s in seq]


@torch.inference_mode()
def beam_search(
    model: CaptionDecoder,
    patches: Tensor,
    beam: int,
    length_penalty: float = 1.0,
    max_len: int | None = None,
) -> tuple[list[list[int]], list[float]]:
    """Best title per patch set by beam search, and its normalised score (see the module doc).

    Finished beams stay in the beam (extended by padding at no cost) and compete with the open ones on
    the normalised score, so a beam ends when all of its ``beam`` hypotheses have ended.
    """
    max_len = model.cfg.max_tokens if max_len is None else min(max_len, model.cfg.max_tokens)
    b, k, v = len(patches), beam, model.cfg.vocab + 2
    mem = model.memory(patches).repeat_interleave(k, 0)  # [B * k, P, W]
    seq = torch.full((b, k, 1), model.bos, dtype=torch.long)
    raw = torch.full((b, k), float("-inf"))
    raw[:, 0] = 0.0  # all beams start identical: expand only the first
    done = torch.zeros(b, k, dtype=torch.bool)
    lens = torch.zeros(b, k)
    pad_row = torch.full((v,), float("-inf"))
    pad_row[0] = 0.0
    for step in range(max_len + 1):
        logp = model.next_logp(seq.flatten(0, 1), mem, step, max_len).view(b, k, v)
        logp = torch.where(done[..., None], pad_row, logp)
        cand = raw[..., None] + logp  # [B, k, V]
        new_len = lens + (~done).float()
        norm = cand / new_len.clamp(min=1.0)[..., None] ** length_penalty
        idx = norm.flatten(1).topk(k, dim=1).indices  # [B, k] into k * V
        parent, tok = idx // v, idx % v
        seq = torch.cat([seq.gather(1, parent[..., None].expand(-1, -1, seq.shape[2])), tok[..., None]], 2)
        raw = cand.flatten(1).gather(1, idx)
        lens = new_len.gather(1, parent)
        done = done.gather(1, parent) | (tok == model.eos)
        if bool(done.all()):
            break
    final = raw / lens.clamp(min=1.0) ** length_penalty
    best = final.argmax(1)
    rows = seq[torch.arange(b), best]
    return [_strip(s[1:], model.eos) for s in rows], final[torch.arange(b), best].tolist()


def pieces_to_text(pieces: Sequence[str]) -> str:
    """Word pieces -> text as ``BertTokenizer.decode(..., clean_up_tokenization_spaces=True)``."""
    text = " ".join(pieces).replace(" ##", "").strip()
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                 (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):  # fmt: skip
        text = text.replace(a, b)
    return text


def map_extractor() -> ImageEncoder:
    """The backbone-map extractor the prepared patches came from (ONNX Runtime, one thread)."""
    from samestyle.features.activations import ActivationExtractor

    return ActivationExtractor("map", num_threads=1)


def image_patches(
    paths: Sequence[str | Path],
    extractor: ImageEncoder,
    pca_mean: np.ndarray,
    pca_components: np.ndarray,
    patch_scale: float,
) -> tuple[np.ndarray, list[str | None]]:
    """Patches ``[N, 55, D]`` float32 of image files as ``pretrain.prepare`` builds them, and per file an
    error message naming it (None when it worked; its patch row is then zeros).

    ``extractor`` gives flattened ``[C, H, W]`` maps with ``C = len(pca_mean)`` and ``H = W``.
    """
    from samestyle.pretrain.patches import kaleido_patches, n_patches

    c = len(pca_mean)
    side = round((extractor.dim // c) ** 0.5)
    errors: list[str | None] = [None] * len(paths)
    pixels = []
    for i, path in enumerate(paths):
        try:
            pixels.append(extractor.preprocess(Path(path)))
        except (SamestyleError, OSError, ValueError) as exc:
            errors[i] = f"{path}: not a usable image ({exc})"
    out = np.zeros((len(paths), n_patches(), pca_components.shape[1]), dtype=np.float32)
    if pixels:
        maps = extractor.encode_pixels(np.stack(pixels)).reshape(len(pixels), c, side, side)
        pca = (kaleido_patches(maps) - pca_mean) @ pca_components  # PatchPCA.transform
        out[[e is None for e in errors]] = pca / patch_scale
    return out, errors
