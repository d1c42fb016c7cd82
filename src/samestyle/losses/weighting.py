"""Combine named loss terms into one scalar: fixed, uncertainty (Kendall) or FashionBERT adaptive weights.

Every weighting is an ``nn.Module`` called as ``weighting(terms) -> (total, weights)``: ``terms`` is the
``dict[str, Tensor]`` a loss returns, ``total`` the 0-d tensor to back-propagate, ``weights`` a
``dict[str, float]`` of the weight each term got (for logging). Build one from a config string with
``WEIGHTINGS.build("uncertainty", names=unit.term_names)``.

- :class:`UncertaintyWeighting` (Kendall, Gal and Cipolla, CVPR 2018), in the common simplified form
  ``sum_i exp(-s_i) L_i + s_i`` with ``s_i = log sigma_i^2`` learned (the optimiser must include its
  parameters). Reported weights are ``exp(-s_i) > 0``; the total can go below zero.
- :class:`FashionBertWeighting` (Gao et al., "FashionBERT: Text and Image Matching with Adaptive Loss for
  Cross-modal Retrieval", SIGIR 2020). The weights are re-solved every step under ``sum_i w_i = 1,
  w_i >= 0``; the closed form in the authors' released code (alibaba/EasyTransfer,
  ``scripts/fashion_bert/pretrain_main.py``, ``build_loss``) is, for ``K`` tasks and ``alpha = 1``,
  ``w_i = prod_{j != i}(alpha K - n_j) / sum_k prod_{j != k}(alpha K - n_j)``, i.e. ``w_i`` proportional
  to ``1 / (alpha K - n_i)``, with ``n = softmax(losses)^2``. The paper derives it from the task
  gradients (``n_i`` stands for task ``i``'s squared gradient norm); the released code uses the softmax
  of the loss values instead, which is ``signal="loss"`` here (no extra cost). ``signal="grad"`` takes
  per-task squared gradient norms from the caller (see :func:`task_grad_sq_norms`: one extra backward
  pass per task per step) and normalises them to sum to one, our choice, so every ``n_i`` lies in [0, 1]
  as the softmax does and the weights stay positive. A task with a larger ``n_i`` gets a larger weight.
  The released code lets gradients flow through the weights; ``detach=True`` (default) treats the
  solved weights as constants, ``detach=False`` reproduces the code.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from samestyle.errors import ConfigError
from samestyle.registry import Registry

FASHIONBERT_SIGNALS = ("loss", "grad")


class Weighting(nn.Module):
    """Base of the weightings: ``forward(terms) -> (total, weights)``."""

    def forward(
        self, terms: Mapping[str, Tensor], grad_sq_norms: Mapping[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        raise NotImplementedError


class FixedWeighting(Weighting):
    """``total = sum_i w_i L_i`` with constant weights.

    Args:
        weights: term name (or ``fnmatch`` pattern such as ``"reg/*"``) -> weight. An exact name wins
            over a pattern; among patterns the first listed that matches wins.
        default: weight of any term no key matches.

    Example:
        >>> terms = {"nce/a": torch.tensor(2.0), "reg/b": torch.tensor(1.0)}
        >>> total, w = FixedWeighting({"reg/*": 0.1})(terms)
        >>> round(float(total), 3), w
        (2.1, {'nce/a': 1.0, 'reg/b': 0.1})
    """

    def __init__(self, weights: Mapping[str, float] | None = None, default: float = 1.0) -> None:
        super().__init__()
        self.weights = dict(weights or {})
        self.default = float(default)

    def weight_for(self, name: str) -> float:
        if name in self.weights:
            return float(self.weights[name])
        for pattern, weight in self.weights.items():
            if fnmatch.fnmatchcase(name, pattern):
                return float(weight)
        return self.default

    def forward(
        self, terms: Mapping[str, Tensor], grad_sq_norms: Mapping[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        _require_terms(terms)
        weights = {name: self.weight_for(name) for name in terms}
        total = torch.stack([weights[name] * loss for name, loss in terms.items()]).sum()
        return total, weights


class AdaptiveWeighting(Weighting):
    """Base of the weightings whose weights change during training, over a fixed set of term names.

    A call may pass any subset of ``names`` (a term can be absent from a step); an unknown name is an
    error, so a typo in a config cannot silently leave a term unweighted.
    """

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__()
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"adaptive weighting needs distinct term names, got {list(names)}")
        self.names = tuple(names)

    def _check(self, terms: Mapping[str, Tensor]) -> None:
        _require_terms(terms)
        unknown = sorted(set(terms) - set(self.names))
        if unknown:
            raise ValueError(
                f"terms {unknown} were not declared to {type(self).__name__}; known: {', '.join(self.names)}"
            )


class UncertaintyWeighting(AdaptiveWeighting):
    """Kendall et al. 2018: ``sum_i exp(-s_i) L_i + s_i`` with one learned ``s_i`` per term.

    Args:
        names: the term names (e.g. ``ContrastiveUnit.term_names``).
        init_log_var: initial ``s_i`` (0 gives initial weights of 1).
    """

    def __init__(self, names: Sequence[str], init_log_var: float = 0.0) -> None:
        super().__init__(names)
        self.log_vars = nn.Parameter(torch.full((len(self.names),), float(init_log_var)))  # [K]

    def forward(
        self, terms: Mapping[str, Tensor], grad_sq_norms: Mapping[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        self._check(terms)
        parts: list[Tensor] = []
        weights: dict[str, float] = {}
        for name, loss in terms.items():
            s = self.log_vars[self.names.index(name)]
            parts.append(torch.exp(-s) * loss + s)
            weights[name] = float(torch.exp(-s.detach()))
        return torch.stack(parts).sum(), weights


class FashionBertWeighting(AdaptiveWeighting):
    """FashionBERT's adaptive loss: weights re-solved each step, positive and summing to one.

    Args:
        names: the term names.
        alpha: the ``alpha`` of the closed form (1.0 in the released code); must be >= 1.
        signal: ``"loss"`` (softmax of the loss values, as released) or ``"grad"`` (caller-supplied
            squared gradient norms, normalised to sum to one).
        detach: treat the weights as constants in back-propagation.

    Inputs:
        terms: ``name -> 0-d loss``.
        grad_sq_norms: ``name -> ||grad L_i||^2`` over the shared parameters; required for ``"grad"``.
    """

    def __init__(
        self, names: Sequence[str], alpha: float = 1.0, signal: str = "loss", detach: bool = True
    ) -> None:
        super().__init__(names)
        if signal not in FASHIONBERT_SIGNALS:
            raise ConfigError(f"FashionBERT signal '{signal}' is unknown; use one of {FASHIONBERT_SIGNALS}")
        if alpha < 1.0:
            raise ConfigError(f"FashionBERT alpha must be >= 1 so every weight stays positive, got {alpha}")
        self.alpha = float(alpha)
        self.signal = signal
        self.detach = detach

    def solve(self, signal: Tensor) -> Tensor:
        """``[K]`` per-task signal -> ``[K]`` weights, ``w_i`` proportional to ``1 / (alpha K - n_i)``."""
        k = signal.shape[0]
        if k == 1:
            return torch.ones_like(signal)
        if self.signal == "loss":
            n = torch.softmax(signal, dim=0) ** 2  # [K]
        else:
            n = signal / signal.sum().clamp(min=torch.finfo(signal.dtype).tiny)  # [K]
        inv = 1.0 / (self.alpha * k - n)  # [K]; alpha K - n >= K - 1 >= 1 > 0
        return inv / inv.sum()

    def forward(
        self, terms: Mapping[str, Tensor], grad_sq_norms: Mapping[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        self._check(terms)
        names = list(terms)
        losses = torch.stack([terms[n] for n in names])  # [K]
        if self.signal == "grad":
            if grad_sq_norms is None or set(names) - set(grad_sq_norms):
                raise ValueError("FashionBERT signal='grad' needs grad_sq_norms for every term")
            signal = torch.stack([torch.as_tensor(grad_sq_norms[n]).to(losses) for n in names]).detach()
        else:
            signal = losses.detach() if self.detach else losses
        w = self.solve(signal)  # [K]
        if self.detach:
            w = w.detach()
        return (w * losses).sum(), {n: float(x) for n, x in zip(names, w.detach(), strict=True)}


def task_grad_sq_norms(terms: Mapping[str, Tensor], params: Iterable[Tensor]) -> dict[str, Tensor]:
    """``name -> ||d L_name / d params||^2`` (detached), for ``FashionBertWeighting(signal="grad")``.

    Cost: one extra backward pass per term (the graph is retained), so a step costs about ``K + 1``
    backward passes instead of one. Pass the shared parameters only (e.g. the projection heads).
    """
    shared = [p for p in params if p.requires_grad]
    out: dict[str, Tensor] = {}
    for name, loss in terms.items():
        total = loss.new_zeros(())
        if loss.requires_grad and shared:
            grads = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
            for g in grads:
                if g is not None:
                    total = total + g.detach().pow(2).sum()
        out[name] = total
    return out


def _require_terms(terms: Mapping[str, Tensor]) -> None:
    if not terms:
        raise ValueError("no loss terms to weight")


WEIGHTINGS: Registry[Weighting] = Registry("weighting")
WEIGHTINGS.register("fixed")(FixedWeighting)
WEIGHTINGS.register("uncertainty")(UncertaintyWeighting)
WEIGHTINGS.register("fashionbert")(FashionBertWeighting)
