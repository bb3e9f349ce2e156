"""Pruning masks for Linear/Conv1d/Conv2d weights, in the spirit of torch.nn.utils.prune.

Every method is `mask = prune.<method>(weight, sparsity, *, must_keep=None, allowed=None, **opts)` and
returns a bool tensor of the weight's shape (True = kept); `sparsity` is the fraction of zeros.
`must_keep` marks positions that must stay kept (a denser level grown from a sparser one), `allowed`
the only positions that may be kept (a sparser level carved from a denser one). Structured methods
decide whole units (rows, columns, blocks, kernels); their constraints are read in units too: a unit
is forced if any of its positions is in `must_keep`, and allowed only if all its positions are allowed
(a unit-shaped mask, e.g. one bool per row, is also accepted).

Methods work on the weight's 2-D view (docs/architecture.md): Linear `out x in`, Conv `out x (in·kh·kw)`.
"""
from __future__ import annotations

import math
import re
from typing import Callable, Iterable, NamedTuple

import numpy as np
import torch
import torch.nn as nn

from .block_shapes import DEFAULT_BLOCK_SHAPE, check_block_shape

METHODS = ("irregular", "row", "column", "block", "pattern")
_PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


# ------------------------------------------------------------------------------------------------
# Shared machinery: every method ranks units and keeps a prefix of the ranking.


def _as_tensor(weight) -> torch.Tensor:
    w = weight.detach() if isinstance(weight, torch.Tensor) else torch.as_tensor(np.asarray(weight))
    return w.float() if not w.is_floating_point() or w.dtype in (torch.float16, torch.bfloat16) else w


def _as_bool(m) -> torch.Tensor:
    """Any bool-like mask (tensor on any device, numpy array) -> CPU bool tensor."""
    return (m.detach().cpu() if isinstance(m, torch.Tensor) else torch.as_tensor(np.asarray(m))).bool()


def _check_sparsity(sparsity: float) -> float:
    s = float(sparsity)
    if not 0.0 <= s <= 1.0 or math.isnan(s):
        raise ValueError(f"sparsity must be in [0, 1] (fraction of zeros), got {sparsity}")
    return s


def _view2d(w: torch.Tensor, method: str) -> torch.Tensor:
    if w.dim() < 2:
        raise ValueError(f"{method} pruning needs a Linear/Conv weight (2-D or more), got shape "
                         f"{tuple(w.shape)}")
    return w.reshape(w.shape[0], -1)


def _unit_ids(shape2d: tuple[int, int], method: str, block_shape=None) -> tuple[torch.Tensor, int]:
    """Unit index of every element of the 2-D view, and the number of units."""
    rows, cols = shape2d
    r = torch.arange(rows).unsqueeze(1).expand(rows, cols)
    c = torch.arange(cols).unsqueeze(0).expand(rows, cols)
    if method == "row":
        return r, rows
    if method == "column":
        return c, cols
    br, bc = block_shape
    nbc = -(-cols // bc)
    return (r // br) * nbc + c // bc, -(-rows // br) * nbc


def _reduce_units(values: torch.Tensor, ids: torch.Tensor, n_units: int, how: str) -> torch.Tensor:
    out = torch.zeros(n_units, dtype=values.dtype, device=values.device)
    return out.scatter_reduce(0, ids.reshape(-1).to(values.device), values.reshape(-1), how,
                              include_self=False)


def _unit_constraint(mask, weight_shape, unit_shape, reduce, name: str) -> torch.Tensor | None:
    """An element mask (weight's shape) or unit mask (unit_shape) -> one bool per unit (flattened).
    `reduce(bool_mask_of_weight_shape) -> per-unit bool` says how elements combine (any / all)."""
    if mask is None:
        return None
    m = _as_bool(mask)
    if tuple(m.shape) == tuple(weight_shape):
        return reduce(m)
    if tuple(m.shape) == tuple(unit_shape):
        return m.reshape(-1)
    raise ValueError(f"{name} has shape {tuple(m.shape)}; expected the weight's shape {tuple(weight_shape)}"
                     f" or one entry per unit {tuple(unit_shape)}")


def _select(scores: torch.Tensor, sizes: torch.Tensor, target_kept: float, forced, allowed,
            tol: float, what: str) -> torch.Tensor:
    """Keep forced units, then allowed units by descending score (ties: lower index first), stopping
    at the prefix whose kept element count is closest to `target_kept`. Returns one bool per unit."""
    n = scores.numel()
    forced = torch.zeros(n, dtype=torch.bool) if forced is None else forced.reshape(-1).cpu()
    allowed = torch.ones(n, dtype=torch.bool) if allowed is None else allowed.reshape(-1).cpu()
    scores, sizes = scores.reshape(-1).cpu().double(), sizes.reshape(-1).cpu().double()
    if (forced & ~allowed).any():
        i = int(torch.nonzero(forced & ~allowed)[0])
        raise ValueError(f"must_keep and allowed conflict: {what} {i} must be kept but is not allowed")
    base = float(sizes[forced].sum())
    if base > target_kept + tol + 1e-9:
        raise ValueError(f"must_keep already keeps {base:.0f} weights, more than the {target_kept:.1f} "
                         "this sparsity keeps; ask for a lower sparsity or a sparser must_keep")
    cand = torch.nonzero(allowed & ~forced).reshape(-1)
    order = cand[torch.sort(-scores[cand], stable=True).indices]
    kept_after = base + torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(sizes[order], 0)])
    m = int(torch.argmin((kept_after - target_kept).abs()))  # first minimum: the sparser prefix on ties
    if float(kept_after[m]) < target_kept - tol - 1e-9:
        raise ValueError(f"allowed permits only {float(kept_after[-1]):.0f} kept weights, fewer than the "
                         f"{target_kept:.1f} this sparsity keeps; ask for a higher sparsity or a denser "
                         "allowed mask")
    keep = forced.clone()
    keep[order[:m]] = True
    return keep


# ------------------------------------------------------------------------------------------------
# Methods


def irregular(weight, sparsity: float, *, must_keep=None, allowed=None) -> torch.Tensor:
    """Remove the smallest |w|: exactly round(sparsity·numel) zeros; ties keep the lower flat index."""
    w = _as_tensor(weight)
    s = _check_sparsity(sparsity)
    n = w.numel()
    flat = lambda m: m.reshape(-1)  # noqa: E731  (element = unit)
    forced = _unit_constraint(must_keep, w.shape, w.shape, flat, "must_keep")
    allow = _unit_constraint(allowed, w.shape, w.shape, flat, "allowed")
    keep = _select(w.abs().reshape(-1), torch.ones(n), n - round(s * n), forced, allow, 0, "weight")
    return keep.reshape(w.shape).to(w.device)


def _structured(w, s, method, must_keep, allowed, block_shape=None) -> torch.Tensor:
    w2 = _view2d(w, method)
    ids, n_units = _unit_ids(tuple(w2.shape), method, block_shape)
    unit_shape = {"row": (w2.shape[0],), "column": (w2.shape[1],)}.get(method)
    if unit_shape is None:
        unit_shape = (-(-w2.shape[0] // block_shape[0]), -(-w2.shape[1] // block_shape[1]))
    cpu = w2.detach().cpu().double()
    scores = _reduce_units(cpu.square(), ids, n_units, "sum").sqrt()
    sizes = _reduce_units(torch.ones_like(cpu), ids, n_units, "sum")
    by_unit = lambda how: lambda m: _reduce_units(m.reshape(w2.shape).double(), ids, n_units, how).bool()  # noqa: E731
    forced = _unit_constraint(must_keep, w.shape, unit_shape, by_unit("amax"), "must_keep")
    allow = _unit_constraint(allowed, w.shape, unit_shape, by_unit("amin"), "allowed")
    keep = _select(scores, sizes, w.numel() * (1 - s), forced, allow, float(sizes.max()), method)
    return keep[ids].reshape(w.shape).to(w.device)


def row(weight, sparsity: float, *, must_keep=None, allowed=None) -> torch.Tensor:
    """Remove whole rows (output neurons / filters) of smallest L2 norm; sparsity to within one row."""
    return _structured(_as_tensor(weight), _check_sparsity(sparsity), "row", must_keep, allowed)


def column(weight, sparsity: float, *, must_keep=None, allowed=None) -> torch.Tensor:
    """Remove whole columns (inputs / (c, ky, kx) positions across filters) of smallest L2 norm."""
    return _structured(_as_tensor(weight), _check_sparsity(sparsity), "column", must_keep, allowed)


def block(weight, sparsity: float, *, must_keep=None, allowed=None,
          block_shape=DEFAULT_BLOCK_SHAPE) -> torch.Tensor:
    """Remove (br, bc) blocks of the 2-D view by L2 norm (edge blocks partial); to within one block."""
    return _structured(_as_tensor(weight), _check_sparsity(sparsity), "block", must_keep, allowed,
                       check_block_shape(block_shape))


# ------------------------------------------------------------------------------------------------
# PCONV pattern pruning (Ma et al., "PCONV: The missing but desirable sparsity in DNN weight pruning")


class PatternAssignment(NamedTuple):
    table: np.ndarray  # (P, n) int64: kept positions of each pattern in the flattened kh·kw kernel
    ids: np.ndarray  # (out, in) int64: pattern id of each kernel, -1 for removed kernels


def _kernels(w: torch.Tensor) -> torch.Tensor:
    if w.dim() != 4:
        raise ValueError(f"pattern pruning needs a Conv2d weight (out, in, kh, kw), got shape "
                         f"{tuple(w.shape)}; prune Linear/Conv1d layers with another method")
    return w.reshape(w.shape[0] * w.shape[1], -1)


def _pattern_table(patterns, q: int, n: int) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(patterns, dtype=np.int64))
    if t.dim() != 2 or t.shape[1] != n or t.shape[0] == 0:
        raise ValueError(f"patterns must be a non-empty (P, n={n}) array of kernel positions, got shape "
                         f"{tuple(t.shape)}")
    if (t < 0).any() or (t >= q).any() or any(len(set(r.tolist())) != n for r in t):
        raise ValueError(f"each pattern must list {n} distinct positions in [0, {q})")
    return torch.sort(t, 1).values


def _fits(mk: torch.Tensor, al: torch.Tensor, pm: torch.Tensor) -> torch.Tensor:
    """(K, P): pattern p covers kernel k's must_keep positions and stays inside its allowed ones."""
    return ((mk.double() @ (1 - pm).T) == 0) & (((~al).double() @ pm.T) == 0)


def _membership(table: torch.Tensor, q: int) -> torch.Tensor:
    pm = torch.zeros(len(table), q, dtype=torch.double)
    return pm.scatter_(1, table, 1.0)


def _by_frequency(rows: torch.Tensor) -> list[tuple]:
    if len(rows) == 0:
        return []
    uniq, counts = torch.unique(rows, dim=0, return_counts=True)  # lexicographic: the tie-break
    return [tuple(uniq[i].tolist()) for i in torch.sort(-counts, stable=True).indices.tolist()]


def _derive_patterns(sq, mk, al, n: int, num_patterns: int) -> torch.Tensor:
    """The `num_patterns` most frequent top-n position sets over the kernels. Sets the constraints pin
    down (a kernel with exactly n must_keep or n allowed positions) come first, and a forced kernel no
    chosen set fits adds its own, so constrained kernels stay keepable."""
    pref = sq.clone()
    pref[mk] = math.inf
    pref[~al] = -math.inf
    top = torch.sort(torch.sort(-pref, dim=1, stable=True).indices[:, :n], 1).values
    valid = (mk.sum(1) <= n) & (al.sum(1) >= n)
    pinned = valid & ((mk.sum(1) == n) | (al.sum(1) == n))
    chosen = _by_frequency(top[pinned])
    for t in _by_frequency(top[valid & ~pinned]):
        if len(chosen) >= num_patterns:
            break
        if t not in chosen:
            chosen.append(t)
    q = sq.shape[1]
    forced = valid & mk.any(1)
    if forced.any():
        fit = _fits(mk[forced], al[forced], _membership(torch.tensor(chosen, dtype=torch.int64).reshape(-1, n), q))
        chosen += [t for t in _by_frequency(top[forced][~fit.any(1)]) if t not in chosen]
    if not chosen:  # no kernel can be kept; any table will do
        chosen = [tuple(range(n))]
    return torch.tensor(chosen, dtype=torch.int64)


def pattern(weight, sparsity: float, *, must_keep=None, allowed=None, n: int = 4, patterns=None,
            num_patterns: int = 8) -> torch.Tensor:
    """PCONV: every kernel keeps one n-position pattern from a small table (the one keeping the largest
    L2 norm), then whole kernels of lowest norm are removed (connectivity pruning) to reach `sparsity`.
    `patterns`: a (P, n) table of flattened kh·kw positions; by default the `num_patterns` most
    frequent top-n sets of the kernels. The pattern of a kernel depends only on the weights, so
    levels computed from the same weights differ only by connectivity."""
    w = _as_tensor(weight)
    s = _check_sparsity(sparsity)
    wk = _kernels(w).detach().cpu().double()
    K, q = wk.shape
    n = int(n)
    if not 1 <= n <= q:
        raise ValueError(f"n must be in [1, {q}] for {w.shape[2]}x{w.shape[3]} kernels, got {n}")
    min_s = 1 - n / q
    if s < min_s - 1e-9:
        raise ValueError(f"pattern pruning with n={n} of {w.shape[2]}x{w.shape[3]} kernels cannot go below "
                         f"sparsity {min_s:.4f} (1 - n/(kh·kw)); got {s}")
    kshape = (w.shape[0], w.shape[1])

    def constraint(m, name):
        m = _as_bool(m)
        if tuple(m.shape) not in (tuple(w.shape), kshape):
            raise ValueError(f"{name} has shape {tuple(m.shape)}; expected {tuple(w.shape)} or one entry "
                             f"per kernel {kshape}")
        return m.reshape(K, -1)

    mk = torch.zeros(K, q, dtype=torch.bool)
    forced = torch.zeros(K, dtype=torch.bool)
    if must_keep is not None:
        m = constraint(must_keep, "must_keep")
        forced = m.any(1)
        if m.shape[1] == q:  # per-position: the kernel's pattern must cover these
            mk = m
    al = torch.ones(K, q, dtype=torch.bool)
    if allowed is not None:
        al = constraint(allowed, "allowed").expand(K, q).clone()
    sq = wk.square()

    table = (_pattern_table(patterns, q, n) if patterns is not None
             else _derive_patterns(sq, mk, al, n, int(num_patterns)))
    pm = _membership(table, q)
    fits = _fits(mk, al, pm)
    energy = torch.where(fits, sq @ pm.T, torch.tensor(-math.inf, dtype=torch.double))
    best = torch.argmax(energy, 1)  # first maximum: ties go to the earlier pattern
    keepable = fits.any(1)
    if (forced & ~keepable).any():
        i = int(torch.nonzero(forced & ~keepable)[0])
        raise ValueError(f"kernel {divmod(i, kshape[1])} must be kept but no pattern of the table "
                         "covers its must_keep positions inside allowed")
    score = energy.gather(1, best.unsqueeze(1)).squeeze(1).clamp_min(0).sqrt()
    keep_k = _select(score, torch.full((K,), float(n)), w.numel() * (1 - s), forced, keepable, n,
                     "kernel")
    mask = (pm[best] > 0) & keep_k.unsqueeze(1)
    return mask.reshape(w.shape).to(w.device)


def pattern_assignment(mask) -> PatternAssignment:
    """Recover the pattern table and per-kernel pattern ids of a pattern mask. Call it on the densest
    level's mask: sparser levels use the same patterns on a subset of kernels."""
    m = _as_bool(mask)
    mk = _kernels(m)
    counts = mk.sum(1)
    kept = counts > 0
    sizes = sorted(set(counts[kept].tolist()))
    if len(sizes) > 1:
        raise ValueError(f"not a pattern mask: kept kernels keep different numbers of positions {sizes}")
    n = sizes[0] if sizes else 0
    table = np.zeros((0, n), np.int64)
    ids = np.full(mk.shape[0], -1, np.int64)
    if kept.any():
        uniq, inv = torch.unique(mk[kept], dim=0, return_inverse=True)
        # unique() sorts the bool rows; re-sort by position tuples so table order is easy to read
        pos = torch.stack([torch.nonzero(r).reshape(-1) for r in uniq])
        order = sorted(range(len(pos)), key=lambda i: pos[i].tolist())
        rank = torch.empty(len(order), dtype=torch.long)
        rank[torch.tensor(order)] = torch.arange(len(order))
        table = pos[order].numpy().astype(np.int64)
        ids[kept.numpy()] = rank[inv].numpy()
    return PatternAssignment(table, ids.reshape(m.shape[0], m.shape[1]))


# ------------------------------------------------------------------------------------------------
# Structure checks and nesting


def check_structure(mask, method: str, **opts) -> bool:
    """True if `mask` has the structure `method` produces (options as for the method; others ignored)."""
    m = mask.detach().cpu() if isinstance(mask, torch.Tensor) else torch.as_tensor(np.asarray(mask))
    if m.dtype != torch.bool:
        return False
    if method == "irregular":
        return True
    if method in ("row", "column", "block"):
        if m.dim() < 2:
            return False
        m2 = m.reshape(m.shape[0], -1)
        bs = check_block_shape(opts.get("block_shape", DEFAULT_BLOCK_SHAPE)) if method == "block" else None
        ids, n_units = _unit_ids(tuple(m2.shape), method, bs)
        v = m2.double()
        return bool(torch.equal(_reduce_units(v, ids, n_units, "amax"), _reduce_units(v, ids, n_units, "amin")))
    if method == "pattern":
        if m.dim() != 4:
            return False
        try:
            table, _ = pattern_assignment(m)
        except ValueError:
            return False
        if len(table) == 0:
            return True
        if table.shape[1] != int(opts.get("n", 4)):
            return False
        if opts.get("patterns") is not None:
            allowed = {tuple(r) for r in np.sort(np.asarray(opts["patterns"], np.int64), 1).tolist()}
            return all(tuple(r) in allowed for r in table.tolist())
        return len(table) <= int(opts.get("num_patterns", 8))
    raise ValueError(f"unknown pruning method {method!r}; choose one of {METHODS}")


def get_method(method: str) -> Callable[..., torch.Tensor]:
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; choose one of {METHODS}")
    return globals()[method]


def nested_masks(weight, method: str, sparsities: Iterable[float], *, must_keep=None, allowed=None,
                 **opts) -> list[torch.Tensor]:
    """Masks for `sparsities` (sparsest first, strictly decreasing), returned sparsest first with
    M1 ⊂ M2 ⊂ … . The densest level is computed first and each sparser one is carved from it, so
    structured units nest too. `must_keep` applies to every level, `allowed` to all (via the densest)."""
    sp = [_check_sparsity(s) for s in sparsities]
    if not sp:
        raise ValueError("sparsities is empty")
    if any(a <= b for a, b in zip(sp, sp[1:])):
        raise ValueError(f"sparsities must be strictly decreasing (sparsest first), got {sp}")
    fn = get_method(method)
    masks = [fn(weight, sp[-1], must_keep=must_keep, allowed=allowed, **opts)]
    for s in reversed(sp[:-1]):
        masks.append(fn(weight, s, must_keep=must_keep, allowed=masks[-1], **opts))
    return masks[::-1]


# ------------------------------------------------------------------------------------------------
# Model-level helpers


def prunable_weights(model: nn.Module, include=None) -> dict[str, nn.Parameter]:
    """state_dict key -> weight of every nn.Linear / nn.Conv1d / nn.Conv2d (module order). `include`:
    a regex or list of regexes (re.search on the key; any may match) or a callable key -> bool."""
    if include is None:
        keep = lambda k: True  # noqa: E731
    elif callable(include):
        keep = include
    else:
        pats = [re.compile(p) for p in ([include] if isinstance(include, str) else include)]
        keep = lambda k: any(p.search(k) for p in pats)  # noqa: E731
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, _PRUNABLE) and isinstance(getattr(mod, "weight", None), nn.Parameter):
            key = f"{name}.weight" if name else "weight"
            if keep(key):
                out[key] = mod.weight
    return out


_BERT_MATRICES = ("attention.self.query", "attention.self.key", "attention.self.value",
                  "attention.output.dense", "intermediate.dense", "output.dense")
_BERT_RE = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.(" + "|".join(map(re.escape, _BERT_MATRICES)) +
                      r")\.weight$")


def bert_encoder_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The six matrices of every encoder layer of a Hugging Face BERT (Q, K, V, attention output,
    intermediate, output); embeddings, pooler and heads are left out."""
    out = prunable_weights(model, include=lambda k: _BERT_RE.search(k) is not None)
    if not out:
        raise ValueError("no BERT encoder layers found (expected keys like "
                         "'encoder.layer.0.attention.self.query.weight')")
    per_layer: dict[str, int] = {}
    for k in out:
        layer = _BERT_RE.search(k)
        prefix = k[:layer.start(2)]
        per_layer[prefix] = per_layer.get(prefix, 0) + 1
    bad = {p: c for p, c in per_layer.items() if c != 6}
    if bad:
        raise ValueError(f"BERT encoder layers without exactly six matrices: {bad}")
    return out


def resolve_weights(model: nn.Module, weights=None) -> dict[str, torch.Tensor]:
    """None -> every prunable weight; a list of state_dict keys; or a dict key -> tensor (as is)."""
    if weights is None:
        return prunable_weights(model)
    if isinstance(weights, dict):
        return dict(weights)
    params = dict(model.named_parameters(remove_duplicate=False))
    missing = [k for k in weights if k not in params]
    if missing:
        raise KeyError(f"weights not among the model's parameters: {missing}")
    return {k: params[k] for k in weights}


def _method_for(method, key: str) -> str:
    return method[key] if isinstance(method, dict) else method


def compute_masks(model: nn.Module, method, sparsity: float, weights=None, **opts) -> dict[str, torch.Tensor]:
    """state_dict key -> mask, the same sparsity for every weight. `method` may be a dict key -> method
    (e.g. pattern for 3x3 convs, irregular elsewhere); `opts` go to every call."""
    ws = resolve_weights(model, weights)
    return {k: get_method(_method_for(method, k))(w, sparsity, **opts) for k, w in ws.items()}


# ------------------------------------------------------------------------------------------------
# Hard pruning


class PruneHandle:
    """Undo with `.remove()` (also a context manager). `.apply()` re-zeros the masked weights."""

    def __init__(self, params: dict[str, nn.Parameter], masks: dict[str, torch.Tensor]):
        self.params, self.masks = params, masks
        self._hooks: list = []

    @torch.no_grad()
    def apply(self) -> None:
        for k, p in self.params.items():
            p.mul_(self.masks[k])

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def hard_prune(model: nn.Module, masks: dict, optimizer: torch.optim.Optimizer | None = None) -> PruneHandle:
    """Zero the masked weights (masks keyed by state_dict key, True = kept) and keep them at exactly 0:
    gradients are multiplied by the mask, the optimizer's per-weight state (momentum, Adam moments) is
    cleared where pruned, and after every `optimizer.step()` the weights are re-zeroed, because decoupled
    weight decay or momentum from before pruning would otherwise move them."""
    all_params = dict(model.named_parameters(remove_duplicate=False))
    missing = [k for k in masks if k not in all_params]
    if missing:
        raise KeyError(f"masks for weights the model does not have: {missing}")
    params, fmasks = {}, {}
    for k, m in masks.items():
        p = all_params[k]
        m = _as_bool(m)
        if tuple(m.shape) != tuple(p.shape):
            raise ValueError(f"mask for {k} has shape {tuple(m.shape)}, weight has {tuple(p.shape)}")
        params[k], fmasks[k] = p, m.to(device=p.device, dtype=p.dtype)
    handle = PruneHandle(params, fmasks)
    handle.apply()
    for k, p in params.items():
        handle._hooks.append(p.register_hook(lambda g, m=fmasks[k]: g * m))
        if p.grad is not None:
            p.grad.mul_(fmasks[k])
    if optimizer is not None:
        by_id = {id(p): fmasks[k] for k, p in params.items()}
        with torch.no_grad():
            for p, state in optimizer.state.items():
                m = by_id.get(id(p))
                for v in (state.values() if m is not None else ()):
                    if isinstance(v, torch.Tensor) and v.shape == m.shape:
                        v.mul_(m.to(v.dtype))
        handle._hooks.append(optimizer.register_step_post_hook(lambda opt, args, kwargs: handle.apply()))
    return handle
