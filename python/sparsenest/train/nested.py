"""Nested shared-weight training: several sparsity levels of one network in one set of weights.

Levels are numbered 1..L from sparsest to densest and nest: M1 ⊂ M2 ⊂ … ⊂ ML. Each prunable weight
has one `intro` array (docs/architecture.md): intro = k means "first kept at level k", 0 = never kept.
Level k computes with `weight * (1 <= intro <= k)`, so weights two levels share are the same bits.

Modes:
  no-retrain   train dense once, derive nested masks, stop (the seed report's simplified process)
  progressive  train the sparsest level, freeze it; each denser level trains only the weights it adds
  joint        one weight tensor; each step sums the losses of all levels
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

from ..levels import level_mask
from . import block_shapes, prune

MODES = ("no-retrain", "progressive", "joint")


class NestingError(ValueError):
    """Masks that should nest (sparser ⊂ denser) do not."""


def intro_from_masks(masks: list) -> np.ndarray:
    """Masks sparsest first -> intro array. Raises NestingError if a sparser mask is not inside a denser."""
    ms = [np.asarray(m.cpu().numpy() if hasattr(m, "cpu") else m).astype(bool) for m in masks]
    if len({m.shape for m in ms}) != 1:
        raise NestingError(f"masks have different shapes: {[m.shape for m in ms]}")
    intro = np.zeros(ms[0].shape, np.uint8)
    for k in range(len(ms), 0, -1):
        intro[ms[k - 1]] = k
    for k in range(1, len(ms)):
        outside = ms[k - 1] & ~ms[k]
        if outside.any():
            raise NestingError(f"level {k}'s mask keeps {int(outside.sum())} weights that level {k + 1} "
                               f"prunes (first at index {np.argwhere(outside)[0].tolist()}); masks must "
                               "nest, sparsest level inside the denser ones")
    return intro


def masks_from_intro(intro, n_levels: int) -> list[np.ndarray]:
    intro = np.asarray(intro)
    return [level_mask(intro, k) for k in range(1, n_levels + 1)]


def _torch_mask(intro: np.ndarray, level: int, device="cpu") -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(intro))
    return level_mask(t, level).to(device=device, dtype=torch.float32)


# ------------------------------------------------------------------------------------------------
# Which method and sparsity each layer gets


def layer_methods(model: nn.Module, keys: list[str], method: str) -> dict[str, str]:
    """PCONV patterns apply to square-kernel Conv2d layers; other layers of a pattern model are pruned
    irregularly (as in the PCONV paper, whose FC layers are pruned element-wise)."""
    if method != "pattern":
        return {k: method for k in keys}
    mods = dict(model.named_modules())
    out = {}
    for k in keys:
        m = mods[k.rsplit(".", 1)[0]]
        square = isinstance(m, nn.Conv2d) and m.kernel_size[0] == m.kernel_size[1] and m.kernel_size[0] > 1
        out[k] = "pattern" if square else "irregular"
    return out


def layer_opts(weights: dict, methods: dict[str, str], method: str, method_opts: dict | None) -> dict[str, dict]:
    """Weight key -> options of its method: `block` resolves its block_shape per layer ("lea", per-layer
    dicts: train/block_shapes.py); layers pruned by another method (a pattern model's irregular
    layers) get none."""
    mine = {k: tuple(w.shape) for k, w in weights.items() if methods[k] == method}
    method_opts = {k: v for k, v in (method_opts or {}).items() if k != LAYER_SPARSITY}   # level_allocation's
    opts = (block_shapes.per_layer_opts(mine, method_opts) if method == "block"
            else dict.fromkeys(mine, dict(method_opts)))
    return {k: opts.get(k, {}) for k in weights}


def allocate_sparsity(weights: dict[str, torch.Tensor], sparsity: float, scope: str) -> dict[str, float]:
    """Per-layer sparsity for one level. 'layer': the same ratio everywhere. 'global': the ratio a single
    magnitude threshold over all layers gives each layer (small, sensitive layers like conv1 keep more)."""
    if scope == "layer":
        return {k: sparsity for k in weights}
    if scope != "global":
        raise ValueError(f"scope must be 'layer' or 'global', not {scope!r}")
    allw = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    n_prune = int(round(sparsity * allw.numel()))
    if n_prune == 0:
        return {k: 0.0 for k in weights}
    thr = torch.kthvalue(allw, n_prune).values
    return {k: float((w.detach().abs() <= thr).float().mean()) for k, w in weights.items()}


def _respect_pattern_floor(alloc: dict[str, float], weights, methods, opts) -> dict[str, float]:
    """A PCONV layer keeps n of k*k weights in every kernel it keeps, so it cannot be
    less sparse than 1 - n/(k*k): raise that layer's share to the floor (the model ends up slightly sparser)."""
    out = dict(alloc)
    for k, s in alloc.items():
        if methods[k] == "pattern":
            kh, kw = weights[k].shape[-2:]
            floor = 1.0 - opts.get("n", 4) / (kh * kw)
            out[k] = max(s, floor + 1e-9)
    return out


ROW_METHODS = ("row", "block")   # methods that can remove every weight of a row (a class, in the output layer)


def output_row_keys(model: nn.Module, input_shape, method: str, prune_output_rows: bool) -> frozenset[str]:
    """The weights row/block pruning must leave whole (graph.output_row_weights), unless asked not to."""
    if method not in ROW_METHODS or prune_output_rows:
        return frozenset()
    from .graph import extract_graph, output_row_weights
    return frozenset(output_row_weights(extract_graph(model, tuple(input_shape))))


#: method_opts key {"layer name or weight key": sparsity}: those layers are pruned to that ratio at every level
#: (one mask, so nested), the others share the rest of each level's zeros (e.g. {"conv2": 0.65}: the LEA
#: engine's cost is in the convolutions' kernel rows, which global scope keeps; README "LEA engine")
LAYER_SPARSITY = "layer_sparsity"


def _fixed_sparsity(weights: dict, opts: dict) -> dict[str, float]:
    spec = (opts or {}).get(LAYER_SPARSITY) or {}
    fixed = {k: float(spec[n]) for k in weights for n in (k, k.rsplit(".", 1)[0]) if n in spec}
    unknown = set(spec) - {n for k in weights for n in (k, k.rsplit(".", 1)[0])}
    if unknown or not all(0.0 <= v < 1.0 for v in fixed.values()):
        raise ValueError(f"{LAYER_SPARSITY} {spec!r}: name prunable layers ({', '.join(weights)}) with "
                         "sparsities in [0, 1)")
    return fixed


def level_allocation(weights: dict[str, torch.Tensor], sparsity: float, scope: str, methods: dict,
                     opts: dict, protected=frozenset()) -> dict[str, float]:
    """Per-layer sparsity of one level: protected layers keep every weight (0.0), method_opts'
    layer_sparsity layers take their given ratio, and the others share the level's zeros so that the
    whole model still reaches `sparsity`."""
    given = _fixed_sparsity(weights, opts)
    if given:
        fixed = {k: 0.0 for k in protected} | given
        rest = {k: w for k, w in weights.items() if k not in fixed}
        n_all, n_rest = sum(w.numel() for w in weights.values()), sum(w.numel() for w in rest.values())
        s_rest = (sparsity * n_all - sum(s * weights[k].numel() for k, s in fixed.items())) / max(n_rest, 1)
        if not rest or not 0.0 <= s_rest < 1.0:
            raise ValueError(f"sparsity {sparsity} cannot be reached with the layers kept whole or at a given "
                             f"ratio ({', '.join(sorted(fixed))}); lower the sparsity, change "
                             f"{LAYER_SPARSITY} or pass --prune-output-rows")
        return _respect_pattern_floor(allocate_sparsity(rest, s_rest, scope), rest, methods, opts) | fixed
    if not protected:
        return _respect_pattern_floor(allocate_sparsity(weights, sparsity, scope), weights, methods, opts)
    rest = {k: w for k, w in weights.items() if k not in protected}
    n_all, n_rest = sum(w.numel() for w in weights.values()), sum(w.numel() for w in rest.values())
    s_rest = sparsity * n_all / max(n_rest, 1)
    if not rest or s_rest >= 1.0:
        raise ValueError(f"sparsity {sparsity} cannot be reached while the output layer(s) "
                         f"{', '.join(sorted(protected))} keep every row; lower the sparsity or pass "
                         f"--prune-output-rows")
    alloc = _respect_pattern_floor(allocate_sparsity(rest, s_rest, scope), rest, methods, opts)
    return alloc | {k: 0.0 for k in protected}


def derive_intro(model: nn.Module, sparsities: list[float], method: str, *, scope: str = "layer",
                 keys: list[str] | None = None, method_opts: dict | None = None,
                 score_weights: dict[str, torch.Tensor] | None = None,
                 protected=frozenset()) -> dict[str, np.ndarray]:
    """Nested masks for every prunable weight from its current (or given) values, as intro arrays.
    `protected`: weights kept whole at every level (output rows under row/block pruning)."""
    params = prune.prunable_weights(model)
    keys = keys or list(params)
    weights = {k: (score_weights or {}).get(k, params[k]).detach() for k in keys}
    methods = layer_methods(model, keys, method)
    per_level = [level_allocation(weights, s, scope, methods, method_opts or {}, protected)
                 for s in sparsities]
    opts_of = layer_opts(weights, methods, method, method_opts)
    intro = {}
    for k in keys:
        opts = opts_of[k]
        layer_sp = [lv[k] for lv in per_level]
        distinct = sorted(set(layer_sp), reverse=True)  # a floored layer may repeat a level's ratio
        by_sp = dict(zip(distinct, prune.nested_masks(weights[k], methods[k], distinct, **opts)))
        masks = [by_sp[sp] for sp in layer_sp]
        intro[k] = intro_from_masks(masks)
    return intro


# ------------------------------------------------------------------------------------------------
# Training loops


@dataclass
class TrainConfig:
    epochs_dense: int = 6
    epochs_retrain: int = 6  # per level in progressive mode, total in joint mode
    batch_size: int = 128
    lr: float = 0.05
    lr_retrain: float = 0.02  # fine-tuning a trained net (ADMM, retrain phases) at the dense peak diverges
    momentum: float = 0.9
    weight_decay: float = 5e-4
    scope: str = "global"
    admm_epochs: int = 0  # >0: ADMM-regularise towards the sparsest level before deriving masks
    admm_rho: float = 1e-3
    seed: int = 0
    method_opts: dict = field(default_factory=dict)
    prune_output_rows: bool = False  # row/block: may remove rows of the output layer (i.e. whole classes)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _batches(x: torch.Tensor, y: torch.Tensor, bs: int, gen: torch.Generator):
    perm = torch.randperm(len(y), generator=gen)
    for i in range(0, len(y), bs):
        idx = perm[i:i + bs]
        yield x[idx], y[idx]


def _masked_params(model: nn.Module, intro: dict[str, np.ndarray], level: int, masks_cache: dict):
    params = dict(model.named_parameters())
    for k in intro:
        m = masks_cache.setdefault((k, level), _torch_mask(intro[k], level))
        params[k] = params[k] * m
    return params


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, intro: dict | None = None,
             level: int | None = None, batch_size: int = 1000) -> float:
    """Accuracy of `model` (at `level`, if intro is given) on (x, y)."""
    model.eval()
    params = _masked_params(model, intro, level, {}) if intro is not None and level else None
    correct = 0
    for i in range(0, len(y), batch_size):
        xb = x[i:i + batch_size]
        out = functional_call(model, params, (xb,)) if params is not None else model(xb)
        correct += int((out.argmax(1) == y[i:i + batch_size]).sum())
    return correct / max(1, len(y))


def _run_epochs(model, x, y, epochs, cfg, gen, desc, step_loss: Callable, grad_mask: dict | None = None,
                zero_mask: dict | None = None, extra_loss: Callable | None = None, on_epoch=None,
                lr: float | None = None):
    """SGD + cosine LR over `epochs`; `grad_mask` (key -> float mask) limits which weights learn,
    `zero_mask` (key -> float mask) is re-applied after each step so pruned weights stay exactly 0."""
    if epochs <= 0:
        return
    lr = lr or cfg.lr
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    steps = epochs * math.ceil(len(y) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    params = dict(model.named_parameters())
    frozen_copy = {k: params[k].detach().clone() for k in (grad_mask or {})}
    bar = tqdm(total=steps, desc=desc, unit="step", leave=False, mininterval=1.0)
    for ep in range(epochs):
        model.train()
        for xb, yb in _batches(x, y, cfg.batch_size, gen):
            loss = step_loss(xb, yb)
            if extra_loss is not None:
                loss = loss + extra_loss()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for k, m in (grad_mask or {}).items():
                if params[k].grad is not None:
                    params[k].grad.mul_(m)
            opt.step()
            sched.step()
            with torch.no_grad():
                # Weight decay and momentum move even zero-gradient weights: restore frozen ones exactly.
                for k, m in (grad_mask or {}).items():
                    params[k].copy_(torch.where(m.bool(), params[k], frozen_copy[k]))
                for k, m in (zero_mask or {}).items():
                    params[k].mul_(m)
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        if on_epoch is not None:
            on_epoch(ep)
    bar.close()


@dataclass
class NestedResult:
    intro: dict[str, np.ndarray]
    sparsities: list[float]  # targets, sparsest first
    level_sparsity: list[float]  # measured over the prunable weights
    dense_accuracy: float | None = None
    history: list[dict] = field(default_factory=list)


def level_sparsity(intro: dict[str, np.ndarray], level: int) -> float:
    total = sum(a.size for a in intro.values())
    kept = sum(int(level_mask(a, level).sum()) for a in intro.values())
    return 1.0 - kept / total


def train_nested(model: nn.Module, x_train, y_train, *, sparsities=(0.9, 0.75, 0.5),
                 method: str = "irregular", mode: str = "joint", cfg: TrainConfig | None = None,
                 x_val=None, y_val=None, pretrained: bool = False, log: Callable[[str], None] = print,
                 on_epoch: Callable[[int, dict, list], None] | None = None) -> NestedResult:
    """Train `model` in place into L nested levels. x/y are tensors (float inputs, int64 labels).
    on_epoch(epoch, intro, val_accuracies) is called after every joint retraining epoch (the masks are fixed
    then), with each level's validation accuracy: what a sweep reports as an intermediate result."""
    cfg = cfg or TrainConfig()
    sparsities = [float(s) for s in sparsities]
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if any(a <= b for a, b in zip(sparsities, sparsities[1:])) or not all(0 <= s < 1 for s in sparsities):
        raise ValueError(f"sparsities must be in [0, 1) and strictly decreasing (sparsest first), got "
                         f"{sparsities}")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    x_train, y_train = torch.as_tensor(x_train), torch.as_tensor(y_train)
    L = len(sparsities)
    keys = list(prune.prunable_weights(model))
    protected = output_row_keys(model, x_train.shape[1:], method, cfg.prune_output_rows)
    history: list[dict] = []

    def val(intro=None, level=None):
        return None if x_val is None else evaluate(model, x_val, y_val, intro, level)

    plain = lambda xb, yb: F.cross_entropy(model(xb), yb)  # noqa: E731
    if not pretrained:
        _run_epochs(model, x_train, y_train, cfg.epochs_dense, cfg, gen, "dense", plain)
    dense_acc = val()
    history.append({"phase": "dense", "val_accuracy": dense_acc})
    log(f"dense model: val accuracy {dense_acc}")

    if cfg.admm_epochs > 0:
        from .admm import ADMMPruner
        methods = layer_methods(model, keys, method)
        params = prune.prunable_weights(model)
        target = level_allocation({k: params[k] for k in keys}, sparsities[0], cfg.scope, methods,
                                  cfg.method_opts, protected)
        admm = ADMMPruner(model, methods, target, weights=keys, rho=cfg.admm_rho,
                          layer_opts=layer_opts({k: params[k] for k in keys}, methods, method, cfg.method_opts))
        before = admm.distance()
        _run_epochs(model, x_train, y_train, cfg.admm_epochs, cfg, gen, "admm", plain,
                    extra_loss=admm.penalty, on_epoch=lambda ep: admm.update(), lr=cfg.lr_retrain)
        history.append({"phase": "admm", "distance_before": before, "distance": admm.distance(),
                        "val_accuracy": val()})

    if mode == "progressive":
        intro = _train_progressive(model, x_train, y_train, sparsities, method, keys, cfg, gen, history, val,
                                   protected)
    else:
        intro = derive_intro(model, sparsities, method, scope=cfg.scope, keys=keys,
                             method_opts=cfg.method_opts, protected=protected)
        if mode == "joint":
            cache: dict = {}
            union = {k: _torch_mask(intro[k], L) for k in keys}

            def joint_loss(xb, yb):
                return sum(F.cross_entropy(functional_call(model, _masked_params(model, intro, lv, cache),
                                                           (xb,)), yb) for lv in range(1, L + 1)) / L
            report = None if on_epoch is None else \
                (lambda ep: on_epoch(ep, intro, [val(intro, lv) for lv in range(1, L + 1)]))
            _run_epochs(model, x_train, y_train, cfg.epochs_retrain, cfg, gen, "joint", joint_loss,
                        zero_mask=union, lr=cfg.lr_retrain, on_epoch=report)
    with torch.no_grad():  # store exact zeros where every level prunes
        params = dict(model.named_parameters())
        for k in keys:
            params[k].mul_(_torch_mask(intro[k], L))
    for lv in range(1, L + 1):
        history.append({"phase": "final", "level": lv, "val_accuracy": val(intro, lv)})
    return NestedResult(intro, sparsities, [level_sparsity(intro, lv) for lv in range(1, L + 1)],
                        dense_acc, history)


def _train_progressive(model, x, y, sparsities, method, keys, cfg, gen, history, val, protected=frozenset()):
    """Sparsest level first (prune + retrain), then freeze it; each denser level regrows from the dense
    weights (kept where the sparser level left off) and trains only what it adds."""
    params = dict(model.named_parameters())
    dense = {k: params[k].detach().clone() for k in keys}
    methods = layer_methods(model, keys, method)
    L = len(sparsities)
    per_level = [level_allocation(dense, s, cfg.scope, methods, cfg.method_opts, protected) for s in sparsities]
    opts_of = layer_opts(dense, methods, method, cfg.method_opts)
    prev: dict[str, torch.Tensor] | None = None
    intro = {k: np.zeros(tuple(dense[k].shape), np.uint8) for k in keys}
    for lv in range(1, L + 1):
        masks = {}
        with torch.no_grad():
            for k in keys:
                opts = opts_of[k]
                # Score = current weights where already kept (frozen), dense weights elsewhere.
                score = dense[k] if prev is None else torch.where(prev[k], params[k], dense[k])
                m = prune_level(score, methods[k], per_level[lv - 1][k], prev[k] if prev else None, opts)
                masks[k] = m
                params[k].copy_(torch.where(m, score, torch.zeros_like(score)))
                intro[k][(m & ~(prev[k] if prev else torch.zeros_like(m))).numpy()] = lv
        grad = {k: (masks[k] & ~prev[k]).float() if prev else masks[k].float() for k in keys}
        if prev is not None:  # biases and unpruned layers are shared with the frozen sparser levels
            grad.update({n: torch.zeros_like(p) for n, p in params.items() if n not in keys})
        cache: dict = {}
        level_loss = lambda xb, yb, lv=lv: F.cross_entropy(  # noqa: E731
            functional_call(model, _masked_params(model, intro, lv, cache), (xb,)), yb)
        _run_epochs(model, x, y, cfg.epochs_retrain, cfg, gen, f"level {lv}", level_loss,
                    grad_mask=grad, zero_mask={k: masks[k].float() for k in keys}, lr=cfg.lr_retrain)
        history.append({"phase": "progressive", "level": lv, "val_accuracy": val(intro, lv)})
        prev = masks
    return intro


def prune_level(score: torch.Tensor, method: str, sparsity: float, must_keep, opts: dict) -> torch.Tensor:
    return prune.get_method(method)(score, sparsity, must_keep=must_keep, **opts).bool()
