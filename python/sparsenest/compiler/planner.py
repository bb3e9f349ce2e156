"""Lowering the layer graph to executed steps, and planning activation memory.

Lowering: every conv/linear/pool/add node is one step; a ReLU (or ReLU6) whose input is a conv/linear
output used by nothing else is fused into that step (same exponent, same result); other ReLUs run in place
when their input dies there; flatten never moves data (channel-major layout is already flat).

Planning: every tensor lives from the step that writes it to the last step that reads it; the
im2col patch, the int32 accumulator and a direct convolution's padded input copy live for their step
only. Items are placed first-fit into an SRAM arena (budget = target SRAM minus the stack/board
reserve), patch and accumulator first (the kernels' inner loops read them), then tensors by
decreasing size, then padded copies; a tensor or padded copy that does not fit spills to an arena in
FRAM. Patch and accumulator never spill: a layer whose scratch exceeds SRAM is an error.
Then the FRAM budget is checked layer by layer (weights, biases, switching tables, working copies,
spilled activations). Errors name the layer/buffer and the bytes over.

Bounds (`check_lowered`, `check_plan`, run on every lowering and plan): every tensor has a positive
size equal to its shape's, every step reads tensors that exist and are written before, and every
placement lies inside its arena (SRAM ones inside the budget) without overlapping another placement
that is live at the same step. Bundle.load already refuses bad shapes; these checks make a planner
bug an error at compile time instead of a buffer overrun in the generated C.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import numpy as np

from ..board import memory_map
from .quantize import MATMUL_OPS, QModel, relu6_bound

ALIGN = 4
LAYER_DESCRIPTOR_BYTES = 48  # sizeof(sn_layer) on the MSP430 (16-bit pointers), rounded up


class PlanError(ValueError):
    """The model does not fit the target's memory. bytes_needed (where known): the FRAM budget the
    model needs as compiled, so a caller can retry with at least that much."""

    def __init__(self, message: str, bytes_needed: int | None = None):
        super().__init__(message)
        self.bytes_needed = bytes_needed


class PlanBoundsError(PlanError):
    """A lowering or plan breaks the planner's own bounds (a bug, or a graph that bypassed validation)."""


_CHIP = memory_map("msp430fr5994")   # boards/msp430fr5994/board.toml
CODE_RESERVE_BYTES = 12 * 1024      # lower FRAM kept for code (runtime, kernels, board)


@dataclass(frozen=True)
class Target:
    name: str
    sram_bytes: int = _CHIP.sram_bytes          # total SRAM
    stack_reserve: int = _CHIP.cpu_sram_bytes   # lower SRAM half: stack, .data/.bss; the arena is the LEA half
    lea_bytes: int = _CHIP.lea_bytes            # LEA RAM (upper half of SRAM): scratch that fits can use LEA
    fram_bytes: int = _CHIP.fram_bytes          # FRAM available to model data (consts, persistent, spills)
    allow_spill: bool = True        # activations may spill to FRAM
    upper_fram_bytes: int = 0       # far FRAM for weights streamed in tiles (codegen: far placement)

    @property
    def sram_arena_budget(self) -> int:
        return self.sram_bytes - self.stack_reserve


TARGETS = {
    # The host board emulates the FR5994's SRAM so plans (and counters) match the device; its FRAM
    # budget is the whole 256 KB as if upper FRAM were directly addressable.
    "host": Target("host"),
    # SRAM: the arena is the 4 KB LEA RAM (SN_LEA_RAM, 0x2C00-0x3BFF); the lower 4 KB is the board's
    # (.data/.bss/stack). Lower FRAM 0x4000-0xFF7F (49,024 bytes) is what 16-bit code addresses
    # directly; CODE_RESERVE_BYTES of it is kept for code. Weights that do not fit go to upper FRAM
    # 0x10000-0x43FFF and are streamed into an SRAM tile by DMA (codegen: far placement).
    "msp430fr5994": Target("msp430fr5994", fram_bytes=_CHIP.lower_fram_bytes - CODE_RESERVE_BYTES,
                           upper_fram_bytes=_CHIP.upper_fram_bytes),
}


def get_target(target: str | Target, **overrides) -> Target:
    if isinstance(target, Target):
        t = target
    elif target in TARGETS:
        t = TARGETS[target]
    else:
        raise ValueError(f"unknown target {target!r}; known: {', '.join(TARGETS)}")
    return replace(t, **overrides) if overrides else t


# ------------------------------------------------------------------------------------------ lowering

C_OPS = {"conv1d": "conv", "conv2d": "conv", "linear": "linear", "maxpool1d": "maxpool",
         "maxpool2d": "maxpool", "avgpool1d": "avgpool", "avgpool2d": "avgpool",
         "global_avgpool": "gavgpool", "add": "add", "relu": "relu", "relu6": "relu"}


@dataclass
class Step:
    name: str                 # graph node name (the conv/linear for fused steps)
    op: str                   # C op: conv linear maxpool avgpool gavgpool add relu
    node: dict
    inputs: list[str]         # tensor ids
    output: str               # tensor id
    relu: bool = False
    relu_max: int | None = None   # ReLU6 (fused or stand-alone): the upper clamp in the output's Q format
    fused: list[str] = field(default_factory=list)
    scratch: dict = field(default_factory=dict)   # "patch"/"acc"/"pad" -> bytes (codegen sets "pad")


@dataclass
class Lowered:
    steps: list[Step]
    tensors: dict[str, int]   # tensor id -> int16 elements
    shapes: dict[str, list[int]]
    alias: dict[str, str]     # graph node name -> tensor id
    input: str
    output: str


def lower(qm: QModel, in_place: bool = True) -> Lowered:
    """in_place=False (intermittent builds): no step writes over one of its inputs (stand-alone ReLUs
    and residual adds get their own output), so re-running a step after a power failure reads the
    same inputs."""
    g = qm.graph
    in_name = g["input"]["name"]
    alias = {in_name: in_name}
    tensors = {in_name: int(np.prod(g["input"]["shape"]))}
    shapes = {in_name: list(g["input"]["shape"])}
    users: dict[str, int] = {}
    for n in g["nodes"]:
        for s in n["inputs"]:
            users[s] = users.get(s, 0) + 1
    users[g["output"]] = users.get(g["output"], 0) + 1
    steps: list[Step] = []
    producer: dict[str, Step] = {}
    for n in g["nodes"]:
        name, op = n["name"], n["op"]
        ins = [alias[s] for s in n["inputs"]]
        if op == "flatten":
            alias[name] = ins[0]
            continue
        if op in ("relu", "relu6"):
            src = n["inputs"][0]
            st = producer.get(ins[0])
            top = relu6_bound(qm.exps[name]) if op == "relu6" else None
            if st is not None and st.op in ("conv", "linear") and not st.relu and users[src] == 1 \
                    and alias[src] == st.output:
                st.relu, st.relu_max = True, top
                st.fused.append(name)
                alias[name] = st.output
                continue
            if users[src] == 1 and in_place:  # in place: the input dies here
                alias[name] = ins[0]
                steps.append(Step(name, "relu", n, ins, ins[0], relu_max=top))
                continue
        alias[name] = name
        tensors[name] = int(np.prod(n["shape"]))
        shapes[name] = list(n["shape"])
        st = Step(name, C_OPS[op], n, ins, name,
                  relu_max=relu6_bound(qm.exps[name]) if op == "relu6" else None)
        if op in MATMUL_OPS:
            q = qm.layers[name]
            groups = int(n.get("groups", 1) or 1)
            st.scratch["acc"] = 4 * (q.rows // groups)
            if op != "linear":
                st.scratch["patch"] = 2 * q.cols
        steps.append(st)
        producer[name] = st
    if in_place:
        _adds_in_place(steps, tensors, alias, in_name)
    return Lowered(steps, tensors, shapes, alias, in_name, alias[g["output"]])


def check_lowered(low: Lowered) -> None:
    """Positive, consistent tensor sizes and scratch; inputs written before they are read."""
    for t, n in low.tensors.items():
        shape = low.shapes.get(t)
        if not (isinstance(n, int) and n > 0 and shape and all(isinstance(d, int) and d > 0 for d in shape)
                and int(np.prod(shape)) == n):
            raise PlanBoundsError(f"tensor '{t}': {n} elements but shape {shape}; shapes must be positive "
                                  "and agree with the tensor size (an invalid graph reached the planner)")
    written = {low.input}
    for i, st in enumerate(low.steps, 1):
        for t in st.inputs:
            if t not in written:
                raise PlanBoundsError(f"step {i} ('{st.name}') reads tensor '{t}' before any step writes it")
        if st.output not in low.tensors:
            raise PlanBoundsError(f"step {i} ('{st.name}') writes unknown tensor '{st.output}'")
        bad = {k: v for k, v in st.scratch.items() if not (isinstance(v, int) and v > 0)}
        if bad:
            raise PlanBoundsError(f"step {i} ('{st.name}'): scratch sizes must be positive, got {bad}")
        written.add(st.output)
    if low.output not in written:
        raise PlanBoundsError(f"the output tensor '{low.output}' is never written")


def _adds_in_place(steps: list[Step], tensors: dict[str, int], alias: dict[str, str], keep: str) -> None:
    """A residual add writes over an input no later step reads (sn_op_add reads both inputs of an
    element before writing it): one block's activation buffer less."""
    for i, st in enumerate(steps):
        if st.op != "add":
            continue
        later = {t for s in steps[i + 1:] for t in s.inputs}
        dead = [t for t in st.inputs if t != keep and t not in later and tensors[t] == tensors[st.output]]
        if not dead:
            continue
        old, new = st.output, dead[0]
        del tensors[old]
        st.output = new
        for s in steps[i + 1:]:  # readers, and in-place steps (ReLU) that write it again
            s.inputs = [new if t == old else t for t in s.inputs]
            s.output = new if s.output == old else s.output
        for k, v in alias.items():
            if v == old:
                alias[k] = new


# ------------------------------------------------------------------------------------------ planning

@dataclass
class Placement:
    tier: str      # "sram" | "fram"
    offset: int
    nbytes: int
    start: int
    end: int


@dataclass
class Plan:
    target: Target
    tensors: dict[str, Placement]
    scratch: dict[tuple[int, str], Placement]    # (step index, "patch"/"acc"/"pad")
    sram_bytes: int
    fram_bytes: int
    # intermittent builds: SRAM working copies of FRAM-resident tensors (tensor -> SRAM placement)
    working: dict[str, Placement] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"target": self.target.name, "sram_arena_bytes": self.sram_bytes,
                "sram_arena_budget": self.target.sram_arena_budget,
                "fram_arena_bytes": self.fram_bytes,
                "scratch_fits_lea": max([p.offset + p.nbytes for p in self.scratch.values()
                                         if p.tier == "sram"], default=0) <= self.target.lea_bytes,
                "tensors": {k: {"tier": p.tier, "offset": p.offset, "bytes": p.nbytes,
                                "live": [p.start, p.end]} for k, p in self.tensors.items()},
                "working_copies": {k: {"offset": p.offset, "bytes": p.nbytes} for k, p in self.working.items()}}


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _first_fit(placed: list[Placement], size: int, start: int, end: int) -> int:
    busy = sorted((p.offset, p.offset + p.nbytes) for p in placed if p.start <= end and start <= p.end)
    off = 0
    for lo, hi in busy:
        if off + size <= lo:
            break
        off = max(off, hi)
    return off


# Packing the FRAM arena (tensors and padded copies together, so a padded copy can take a hole a dead
# tensor left): first fit in a few fixed orders (largest first, biggest bytes x steps first, by first
# step), then, while the top is above the most bytes ever live at once (no packing needs less), in up
# to FRAM_PACK_TRIES orders shuffled with a fixed seed; the smallest top wins, the same every run.
# SqueezeNext-CIFAR: 25,088 bytes as tensors-then-pads, 24,576 in the fixed orders, 21,272 (its
# bound) after 740 shuffles, ~0.3 s.
FRAM_PACK_TRIES = 1000
_FRAM_ORDERS = (lambda k, v: (-v[0], v[1], str(k)),
                lambda k, v: (-v[0] * (v[2] - v[1] + 1), v[1], str(k)),
                lambda k, v: (v[1], -v[0], str(k)))


def _pack_fram(items: dict[tuple[str, object], tuple[int, int, int]]) -> dict[tuple[str, object], Placement]:
    """FRAM placements of the items (bytes, first step, last step) with the smallest arena top found.
    Memoised on the items (choose.py plans the same activations once per layout it tries)."""
    canon = tuple(sorted(items.items(), key=lambda kv: str(kv[0])))
    return {k: Placement("fram", off, *v) for (k, v), off in zip(canon, _pack_offsets(canon))}


@functools.lru_cache(maxsize=256)
def _pack_offsets(canon: tuple) -> tuple[int, ...]:
    items = dict(canon)
    if not items:
        return ()
    steps = {s for _, s0, e0 in items.values() for s in (s0, e0)}
    bound = max(sum(n for n, s0, e0 in items.values() if s0 <= s <= e0) for s in steps)
    orders = [sorted(items, key=lambda k: key(k, items[k])) for key in _FRAM_ORDERS]
    rng = np.random.default_rng(0)
    best: dict[tuple[str, object], Placement] = {}
    best_top = None
    for n in range(len(orders) + FRAM_PACK_TRIES):
        order = orders[n] if n < len(orders) else [orders[0][i] for i in rng.permutation(len(items))]
        placed: list[Placement] = []
        for k in order:
            size, s0, e0 = items[k]
            placed.append(Placement("fram", _first_fit(placed, size, s0, e0), size, s0, e0))
        top = max(p.offset + p.nbytes for p in placed)
        if best_top is None or top < best_top:
            best, best_top = dict(zip(order, placed)), top
        if best_top <= bound:
            break
    return tuple(best[k].offset for k, _ in canon)


def plan_memory(low: Lowered, target: Target, tensors_in_fram: bool = False) -> Plan:
    """tensors_in_fram (intermittent builds): the input and every activation have their home in the
    FRAM arena, so they survive a power failure, and where it fits (placed as the continuous plan
    places tensors) an SRAM working copy that the layers read and write: the runtime copies each
    unit's outputs home at its commit and reloads the working copies after a reboot
    (sn_intermittent.c). Scratch (patch, accumulator, padded copies) stays in SRAM when it fits,
    since a unit of work rebuilds it."""
    check_lowered(low)
    n = len(low.steps)
    # step 0 copies the input in; steps 1..n run the layers; n+1 copies the output out
    start = {low.input: 0}
    end = {low.input: 0}
    for i, st in enumerate(low.steps, 1):
        start.setdefault(st.output, i)
        end[st.output] = max(end.get(st.output, i), i)
        for t in st.inputs:
            end[t] = max(end.get(t, 0), i)
    end[low.output] = n + 1
    budget = target.sram_arena_budget
    sram: list[Placement] = []
    spill: dict[tuple[str, object], tuple[int, int, int]] = {}   # FRAM-bound item -> (bytes, start, end)
    scratch: dict[tuple[int, str], Placement] = {}
    for i, st in enumerate(low.steps, 1):
        for kind in ("acc", "patch", "lea"):
            if kind not in st.scratch:
                continue
            size = _align(st.scratch[kind])
            off = _first_fit(sram, size, i, i)
            if kind == "lea" and off + size > min(budget, target.lea_bytes):   # LEA operands: LEA RAM only
                raise PlanError(f"layer '{st.name}': its LEA operands need {size} bytes of LEA RAM but the "
                                f"{target.name} has {min(budget, target.lea_bytes)} for them: "
                                f"{off + size - min(budget, target.lea_bytes)} bytes over; run the layer on "
                                f"the CPU (--engine cpu) or make it narrower.")
            if off + size > budget:
                need = sum(_align(v) for v in st.scratch.values())
                raise PlanError(
                    f"layer '{st.name}': its scratch (" + ", ".join(
                        f"{'im2col patch' if k == 'patch' else 'int32 accumulator'} {v} bytes"
                        for k, v in sorted(st.scratch.items())) +
                    f") needs {need} bytes of SRAM but the {target.name} SRAM arena budget is "
                    f"{budget} bytes ({target.sram_bytes} SRAM - {target.stack_reserve} stack reserve): "
                    f"{off + size - budget} bytes over. Scratch cannot spill to FRAM; make the layer "
                    f"narrower or raise sram_bytes/lower stack_reserve.")
            p = Placement("sram", off, size, i, i)
            sram.append(p)
            scratch[(i, kind)] = p
    order = sorted(low.tensors, key=lambda t: (-low.tensors[t], start[t], t))
    tensors: dict[str, Placement] = {}
    working: dict[str, Placement] = {}
    for t in order:
        size = _align(2 * low.tensors[t])
        off = _first_fit(sram, size, start[t], end[t])
        if off + size <= budget and tensors_in_fram:
            working[t] = Placement("sram", off, size, start[t], end[t])
            sram.append(working[t])
        if off + size <= budget and not tensors_in_fram:
            p = Placement("sram", off, size, start[t], end[t])
            sram.append(p)
        else:
            if not target.allow_spill and not tensors_in_fram:
                raise PlanError(
                    f"activation buffer '{t}' ({size} bytes, live from step {start[t]} to {end[t]}) "
                    f"does not fit the {target.name} SRAM arena of {budget} bytes: "
                    f"{off + size - budget} bytes over, and spilling to FRAM is disabled")
            spill[("tensor", t)] = (size, start[t], end[t])
            continue
        tensors[t] = p
    pads: dict[int, Placement] = {}
    for i, st in enumerate(low.steps, 1):  # padded input copies: SRAM if room is left, else FRAM
        if "pad" in st.scratch:
            size = _align(st.scratch["pad"])
            off = _first_fit(sram, size, i, i)
            if off + size > budget:
                spill[("pad", i)] = (size, i, i)
                continue
            pads[i] = Placement("sram", off, size, i, i)
            sram.append(pads[i])
    fram = _pack_fram(spill)
    tensors = {t: tensors.get(t) or fram[("tensor", t)] for t in order}
    pads |= {i: p for (kind, i), p in fram.items() if kind == "pad"}
    scratch.update({(i, "pad"): pads[i] for i in sorted(pads)})
    top = lambda ps: max((p.offset + p.nbytes for p in ps), default=0)  # noqa: E731
    plan = Plan(target, tensors, scratch, top(sram), top(fram.values()), working)
    check_plan(low, plan)
    return plan


def check_plan(low: Lowered, plan: Plan) -> None:
    """Every buffer placed once, aligned, big enough, inside its arena (SRAM: inside the budget), and
    no two buffers of one arena overlap while both are live."""
    items = [(f"tensor '{t}'", p, _align(2 * low.tensors[t])) for t, p in plan.tensors.items()]
    items += [(f"step {i} {kind}", p, _align(low.steps[i - 1].scratch[kind]))
              for (i, kind), p in plan.scratch.items()]
    items += [(f"working copy of '{t}'", p, _align(2 * low.tensors[t])) for t, p in plan.working.items()]
    missing = set(low.tensors) - set(plan.tensors)
    if missing:
        raise PlanBoundsError(f"tensors {sorted(missing)} have no placement")
    arena = {"sram": plan.sram_bytes, "fram": plan.fram_bytes}
    if plan.sram_bytes > plan.target.sram_arena_budget:
        raise PlanBoundsError(f"SRAM arena {plan.sram_bytes} bytes exceeds the budget "
                              f"{plan.target.sram_arena_budget}")
    for what, p, need in items:
        if p.tier not in arena or p.offset < 0 or p.offset % ALIGN or p.nbytes < need \
                or p.offset + p.nbytes > arena[p.tier] or p.start > p.end:
            raise PlanBoundsError(f"{what}: {p.nbytes} bytes at {p.tier} offset {p.offset} (live steps "
                                  f"{p.start}..{p.end}) is not inside the {arena.get(p.tier)}-byte arena or "
                                  f"smaller than the {need} bytes it needs")
    for tier in arena:  # sweep by offset: only neighbours in address order can overlap
        placed = sorted(((p.offset, p.offset + p.nbytes, p.start, p.end, w) for w, p, _ in items
                         if p.tier == tier))
        for a_i, (lo, hi, s, e, w) in enumerate(placed):
            for lo2, hi2, s2, e2, w2 in placed[a_i + 1:]:
                if lo2 >= hi:
                    break
                if s <= e2 and s2 <= e:
                    raise PlanBoundsError(f"{w} and {w2} overlap in the {tier} arena ([{lo}, {hi}) and "
                                          f"[{lo2}, {hi2})) while both are live")


def _spill_detail(spilled: dict[str, "Placement"]) -> str:
    """Which spilled activation buffers are live together where the FRAM arena needs the most bytes."""
    if not spilled:
        return ""
    steps = range(min(p.start for p in spilled.values()), max(p.end for p in spilled.values()) + 1)
    live = lambda s: [(t, p) for t, p in spilled.items() if p.start <= s <= p.end]  # noqa: E731
    peak = max(steps, key=lambda s: (sum(p.nbytes for _, p in live(s)), -s))
    parts = sorted(live(peak), key=lambda tp: (-tp[1].nbytes, tp[0]))
    return (f"; at step {peak} the spilled buffers " + ", ".join(f"'{t}' ({p.nbytes} bytes)" for t, p in parts)
            + " are live together")


def check_fram(target: Target, layer_bytes: list[tuple[str, int]], fram_arena: int,
               fixed: int = 0, spilled: dict[str, "Placement"] | None = None) -> int:
    """layer_bytes: (layer name, FRAM bytes it needs) in execution order. Raises PlanError naming the
    first layer (or the spilled activations) that takes the total over target.fram_bytes, with a byte
    breakdown of the whole model. spilled: the activation buffers placed in FRAM (Plan.tensors of tier
    "fram"), to name them in the message."""
    weights = sum(b for _, b in layer_bytes)
    need = fixed + weights + fram_arena
    breakdown = (f" Breakdown of the {need} bytes the model needs here: {weights} bytes of weights, indices, "
                 f"metadata and tables of {len(layer_bytes)} layers (weights streamed from upper FRAM not "
                 f"counted) + {fram_arena} bytes of activation buffers "
                 f"spilled to FRAM (activations beyond the {target.sram_arena_budget}-byte SRAM arena) + "
                 f"{fixed} bytes of level selector and tables.")
    total = fixed
    for name, b in layer_bytes:
        total += b
        if total > target.fram_bytes:
            raise PlanError(
                f"model does not fit the {target.name} FRAM budget of {target.fram_bytes} bytes: layer "
                f"'{name}' ({b} bytes of weights, indices, metadata and tables) brings the total to "
                f"{total} bytes, {total - target.fram_bytes} bytes over. Use a sparser level set, a "
                f"smaller format (--format auto), or a smaller model." + breakdown, need)
    total += fram_arena
    if total > target.fram_bytes:
        raise PlanError(
            f"model does not fit the {target.name} FRAM budget of {target.fram_bytes} bytes: the "
            f"activation buffers spilled to FRAM ({fram_arena} bytes{_spill_detail(spilled or {})}) bring the "
            f"total to {total} bytes, {total - target.fram_bytes} bytes over." + breakdown +
            " Sparsity does not shrink activations: narrow those layers or downsample earlier.", need)
    return total
