"""Gradual nested pruning with distillation from the dense network (`train --from ... --mode gradual-kd`).

One-shot nested pruning of a small pretrained network with little fine-tuning data (the MLPerf DS-CNN:
22k weights, 3.4k clips) collapses at high sparsity: pruning 70 % of every layer at once removes what
the folded batch norms had balanced, and cross-entropy on 3.4k labels cannot repair it. This mode:

* ramps every level's sparsity from 0 to its target over the first `ramp` fraction of the epochs
  (cubic schedule of Zhu & Gupta 2017, "To prune, or not to prune"), re-deriving the nested masks from
  the current weights' magnitudes every `prune_every` steps, so the network adapts while it is pruned;
* trains every level jointly (one weight set, loss averaged over the levels) on a mix of the labels'
  cross-entropy and the KL divergence to the dense network's softened outputs (Hinton et al. 2015):
  the teacher's outputs carry more than the 3.4k labels;
* gives layers their own share of a level's sparsity (`dense_scale`): weights named in it keep
  `1 - scale * s` of themselves (depthwise, first and last layers are small and sensitive) and the
  other layers take the rest, so the whole model still reaches the level's sparsity.

Adam with a cosine-decayed learning rate; pruned weights are held at exactly 0 after every step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call
from tqdm.auto import tqdm

from . import prune
from .nested import NestedResult, _masked_params, _torch_mask, evaluate, intro_from_masks, level_sparsity


@dataclass
class GradualConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    ramp: float = 0.6            # fraction of the epochs over which sparsity grows to its target
    prune_every: int = 25        # steps between mask updates during the ramp
    alpha: float = 0.7           # weight of the distillation term (1 - alpha: labels' cross-entropy)
    temperature: float = 3.0
    dense_scale: dict = field(default_factory=dict)   # weight key -> factor on the level's sparsity
    seed: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def layer_sparsities(numels: dict[str, int], sparsity: float, dense_scale: dict) -> dict[str, float]:
    """Per-layer sparsity of one level: scaled layers get `scale * sparsity`, the others share the rest
    equally so the total number of zeros is `sparsity` of all weights (capped at 0.98 per layer)."""
    total = sum(numels.values())
    fixed = {k: min(sparsity * dense_scale[k], 0.98) for k in numels if k in dense_scale}
    zeros_left = sparsity * total - sum(fixed[k] * numels[k] for k in fixed)
    free = [k for k in numels if k not in fixed]
    n_free = sum(numels[k] for k in free)
    s_free = min(max(zeros_left / n_free, 0.0), 0.98) if n_free else 0.0
    return fixed | {k: s_free for k in free}


def nested_intro(weights: dict[str, torch.Tensor], sparsities: list[float], dense_scale: dict,
                 allowed: dict[str, torch.Tensor] | None = None) -> dict[str, np.ndarray]:
    """Nested irregular magnitude masks (sparsest level first) as intro arrays. `allowed`: weights that
    may ever be kept (structural zeros of an imported kernel stay out)."""
    numels = {k: int(w.numel()) if allowed is None or k not in allowed else int(allowed[k].sum())
              for k, w in weights.items()}
    per_level = [layer_sparsities(numels, s, dense_scale) for s in sparsities]
    intro = {}
    for k, w in weights.items():
        al = None if allowed is None else allowed.get(k)
        # layer sparsity is of the allowed weights; nested_masks counts all of them
        frac = (numels[k] / w.numel())
        sp = [1.0 - (1.0 - lv[k]) * frac for lv in per_level]
        sp = [round(min(max(s, 0.0), 0.999), 9) for s in sp]
        distinct = sorted(set(sp), reverse=True)  # a capped or not yet pruned layer repeats a ratio
        by_sp = dict(zip(distinct, prune.nested_masks(w.detach(), "irregular", distinct, allowed=al)))
        intro[k] = intro_from_masks([by_sp[s] for s in sp])
    return intro


def _schedule(target: float, t: float, ramp: float) -> float:
    """Cubic ramp: 0 at t = 0, target at t = ramp (t: fraction of training done)."""
    if t >= ramp:
        return target
    return target * (1.0 - (1.0 - t / ramp) ** 3)


def train_gradual(model: nn.Module, teacher: nn.Module, x_train, y_train, *, sparsities, cfg: GradualConfig,
                  x_val=None, y_val=None, allowed: dict | None = None,
                  log: Callable[[str], None] = print) -> NestedResult:
    """Train `model` (pretrained; updated in place) into nested levels (sparsest first) with the dense
    `teacher`'s outputs as soft targets. Returns the intro arrays and history like train_nested."""
    sparsities = [float(s) for s in sparsities]
    if any(a <= b for a, b in zip(sparsities, sparsities[1:])) or not all(0 <= s < 1 for s in sparsities):
        raise ValueError(f"sparsities must be in [0, 1) and strictly decreasing (sparsest first), got {sparsities}")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    x_train, y_train = torch.as_tensor(x_train), torch.as_tensor(y_train)
    teacher.eval()
    with torch.no_grad():
        soft = torch.cat([teacher(x_train[i:i + 1000]) for i in range(0, len(y_train), 1000)])
    keys = list(prune.prunable_weights(model))
    params = dict(model.named_parameters())
    L = len(sparsities)
    steps_per_epoch = math.ceil(len(y_train) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    T, a = cfg.temperature, cfg.alpha
    history: list[dict] = []

    def remask(t: float) -> dict:
        cur = [_schedule(s, t, cfg.ramp) for s in sparsities]
        return nested_intro({k: params[k] for k in keys}, cur, cfg.dense_scale, allowed)

    intro = remask(0.0)
    cache: dict = {}
    bar = tqdm(total=total, desc="gradual-kd", unit="step", leave=False, mininterval=1.0)
    step = 0
    for ep in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(y_train), generator=gen)
        for i in range(0, len(y_train), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            xb, yb, sb = x_train[idx], y_train[idx], soft[idx]
            if step % cfg.prune_every == 0 and step / total <= cfg.ramp + cfg.prune_every / total:
                intro, cache = remask(step / total), {}
            loss = 0.0
            p_t = F.softmax(sb / T, 1)
            for lv in range(1, L + 1):
                out = functional_call(model, _masked_params(model, intro, lv, cache), (xb,))
                kd = F.kl_div(F.log_softmax(out / T, 1), p_t, reduction="batchmean") * T * T
                loss = loss + (1 - a) * F.cross_entropy(out, yb) + a * kd
            loss = loss / L
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():  # weights no level keeps stay exactly 0
                for k in keys:
                    params[k].mul_(cache.setdefault((k, "union"), _torch_mask(intro[k], L)))
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        if x_val is not None:
            accs = [evaluate(model, x_val, y_val, intro, lv) for lv in range(1, L + 1)]
            history.append({"phase": "gradual-kd", "epoch": ep + 1, "val_accuracy": accs,
                            "sparsity": [round(level_sparsity(intro, lv), 4) for lv in range(1, L + 1)]})
            log(f"epoch {ep + 1}/{cfg.epochs}: sparsity {history[-1]['sparsity']} val {[round(v, 4) for v in accs]}")
    bar.close()
    with torch.no_grad():
        for k in keys:
            params[k].mul_(_torch_mask(intro[k], L))
    for lv in range(1, L + 1):
        history.append({"phase": "final", "level": lv,
                        "val_accuracy": None if x_val is None else evaluate(model, x_val, y_val, intro, lv)})
    return NestedResult(intro, sparsities, [level_sparsity(intro, lv) for lv in range(1, L + 1)], None, history)


def sensitive_layers(graph: dict, scale: float = 0.5) -> dict[str, float]:
    """dense_scale for a layer graph: the first and last weighted layers and every grouped (depthwise)
    convolution keep `scale` of the level's sparsity; pointwise/dense layers take the rest."""
    weighted = [n for n in graph["nodes"] if n["op"] in ("conv1d", "conv2d", "linear")]
    if not weighted:
        return {}
    keys = {weighted[0]["weight"], weighted[-1]["weight"]}
    keys |= {n["weight"] for n in weighted if int(n.get("groups", 1) or 1) > 1}
    return {k: scale for k in sorted(keys)}
