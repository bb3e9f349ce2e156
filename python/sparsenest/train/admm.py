"""ADMM-regularised pruning (Zhang et al. 2018, "A systematic DNN weight pruning framework using ADMM").

Pruning is posed as  min loss(W)  s.t.  W ∈ S  (S = weights a prune method can produce at the target
sparsity) and split with an auxiliary Z ∈ S and a scaled dual U:
    W-step  SGD on loss(W) + Σ rho/2 ‖W − Z + U‖²      (add `penalty()` to the loss)
    Z-step  Z ← Π_S(W + U)                             (`update()`, e.g. once per epoch)
    U-step  U ← U + W − Z
Π_S keeps the method's mask of its argument (the Euclidean projection for magnitude/norm methods).
Training drives W towards S, so the final hard prune (`final_masks()`) removes little, then retrain.

Usage:
    admm = ADMMPruner(model, "irregular", 0.9)
    for epoch ...:
        for batch ...: loss = task_loss + admm.penalty(); ...
        admm.update()
    handle = prune.hard_prune(model, admm.final_masks(), optimizer)
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from . import prune


class ADMMPruner:
    """ADMM state for the prunable weights of `model`.

    weights: None (every Linear/Conv weight), a list of state_dict keys, or a dict key -> parameter.
    method: a prune method name, or a dict key -> name (e.g. "pattern" for 3x3 convs, "irregular" for
    the rest). sparsity: one ratio, or a dict key -> ratio. layer_opts: per-key method options that
    replace `method_opts` for that key (e.g. {} for the irregular layers of a pattern model). rho grows by `rho_growth` per `update()` up to `rho_max`, as in the paper's progressive
    penalty; the scaled dual U is rescaled by rho_old/rho_new so the unscaled multiplier rho·U stays put
    (Boyd et al. 2011, §3.4.1) instead of jumping with every rho change."""

    def __init__(self, model: nn.Module, method, sparsity, weights=None, rho: float = 1e-3,
                 rho_growth: float = 1.3, rho_max: float = 1.0, layer_opts: dict | None = None,
                 **method_opts):
        if not (rho > 0 and rho_growth >= 1 and rho_max >= rho):
            raise ValueError(f"need rho > 0, rho_growth >= 1, rho_max >= rho; got {rho}, {rho_growth}, "
                             f"{rho_max}")
        self.params = prune.resolve_weights(model, weights)
        self.method = method
        self.sparsity = {k: float(sparsity[k]) for k in self.params} if isinstance(sparsity, dict) \
            else {k: float(sparsity) for k in self.params}
        self.method_opts = method_opts
        self.layer_opts = layer_opts or {}
        self.rho, self.rho_growth, self.rho_max = float(rho), float(rho_growth), float(rho_max)
        for k in self.params:  # fail now, not after an epoch of training, on a bad method/option
            prune.get_method(prune._method_for(method, k))
        with torch.no_grad():
            self.Z = {k: self._project(k, p.detach()) for k, p in self.params.items()}
            self.U = {k: torch.zeros_like(p) for k, p in self.params.items()}

    def mask(self, key: str, w: torch.Tensor) -> torch.Tensor:
        fn = prune.get_method(prune._method_for(self.method, key))
        return fn(w, self.sparsity[key], **self.layer_opts.get(key, self.method_opts))

    def _project(self, key: str, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask(key, w).to(w.dtype)

    def penalty(self) -> torch.Tensor:
        """Σ rho/2 ‖W − Z + U‖², differentiable in W; add it to the training loss."""
        terms = [(p - self.Z[k] + self.U[k]).square().sum() for k, p in self.params.items()]
        return self.rho / 2 * torch.stack(terms).sum() if terms else torch.zeros(())

    @torch.no_grad()
    def update(self) -> None:
        """Z ← Π(W + U), U ← U + W − Z, then grow rho (capped at rho_max) and rescale U."""
        new_rho = min(self.rho * self.rho_growth, self.rho_max)
        for k, p in self.params.items():
            w = p.detach()
            self.Z[k] = self._project(k, w + self.U[k])
            self.U[k] = (self.U[k] + w - self.Z[k]) * (self.rho / new_rho)
        self.rho = new_rho

    @torch.no_grad()
    def distance(self) -> dict:
        """Relative distance ‖W − Π(W)‖ / ‖W‖ to the constraint set: {"overall": d, "per_weight": {key: d}}."""
        per, num, den = {}, 0.0, 0.0
        for k, p in self.params.items():
            w = p.detach().double()
            d2 = float((w - self._project(k, w)).square().sum())
            n2 = float(w.square().sum())
            per[k] = math.sqrt(d2 / n2) if n2 > 0 else 0.0
            num, den = num + d2, den + n2
        return {"overall": math.sqrt(num / den) if den > 0 else 0.0, "per_weight": per}

    @torch.no_grad()
    def final_masks(self) -> dict[str, torch.Tensor]:
        """Masks of Π(W) (state_dict key -> bool) for the final hard prune and retrain."""
        return {k: self.mask(k, p.detach()) for k, p in self.params.items()}
