"""Cost-driven choice of each conv/linear layer's layout: (engine, format, convolution method).

Every engine (a registered `Engine`) lists the layouts it can run a layer in and predicts, per level,
the operation counts the host board would record for them (runtime_c/include/sn_counters.h); the
calibrated cycle model (cycle_model.py) turns counts into core cycles, the platform (board.toml)
into time with FRAM wait states and energy. The chooser then picks per layer the layout that
minimises the objective:

  time    predicted cycles (core + FRAM wait states) of one inference, averaged over the levels
  energy  predicted energy (µJ) of one inference, averaged over the levels
  bytes   weight bytes of the layer stored once for all levels (values + indices + metadata)

Levels are weighted equally (the mean): the device moves between levels as its stored energy changes
and the compiler does not know how long it stays at each, so the uniform mean is the unbiased guess;
the densest level alone would ignore the sparse levels, where index overheads dominate and the choice
differs most. `choose(..., level_weights=[...])` takes other weights (e.g. a harvest trace's occupancy).
For time and energy, layouts the calibrated cycle model covers rank before those only the fallback
table costs (flagged `*` in the table).

Memory: the per-layer best choices must fit the target's FRAM for model data (`Target.fram_bytes`:
lower FRAM less the code reserve on the MSP430FR5994, so weights stay directly addressable instead of
being streamed from upper FRAM) together with everything else the planner places there. `fits`
(the caller's check: compile runs the real planner, `planner_fits`) says how many bytes are over. While
over, the chooser falls back greedily: of all moves of one layer to a smaller layout it takes the one
with the least objective increase per byte saved, and records each move (`Choice.fallbacks`). When even
the smallest layouts are over and the target has upper FRAM (`fits_far`), it starts again from the best
layouts among the formats with row tiles (what codegen_far can stream) and falls back the same way
until the compiler's far placement succeeds; the DMA time of streaming is not in the prediction. What is
still over after that is `Choice.over_bytes`, and the planner refuses the build with its usual message.

Engines, one registry: "cpu" (the format kernels on the CPU/MPY32, direct or im2col convolutions; the
direct candidates follow `formats.supports_direct`, their counters the format's arrays) and "lea" (the
LEA layouts of lea_plan: gathered blocks on msp_mac_q15, kernel rows on msp_fir_q15; costed by
lea_plan.lea_layer_cost, bytes = its arrays, operands within `lea_ram_bytes` of LEA RAM). An engine is
`register_engine(Engine(...))`: `layouts` says what it can run, `counts` (+ the cycle model) or `cost`
what that costs; `choose(engines=...)` picks the engines considered (default cpu: `--engine cpu` output
is unchanged) and `Choice.engines()` tells codegen (lea_codegen.choose) which layers run where.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..board import load_platform
from .cycle_model import CycleModel, count_features, time_energy
from . import formats, lea_plan
from .codegen_lower import _shape3, _window, direct_conv

OBJECTIVES = ("time", "energy", "bytes")
CONV_METHODS = ("direct", "im2col")
#: the shipped cycle model: simulator samples of every format and conv method (bench objectives --calibrate)
DEFAULT_CYCLE_MODEL = Path(__file__).with_name("cycle_model_cpu.json")
#: the LEA model's factor per layer kind against our simulator (bench objectives --calibrate-lea)
LEA_CALIBRATION = Path(__file__).with_name("cycle_model_lea.json")


class ChooseError(ValueError):
    """The chooser was asked for something it cannot do (unknown objective, engine, bad weights)."""


# ------------------------------------------------------------------------------------------ layers

@dataclass
class LayerInfo:
    """One conv/linear layer as the chooser sees it: shapes and the weight matrix (int16, per group rows)."""
    name: str
    graph_op: str              # conv1d | conv2d | linear
    node: dict
    w: np.ndarray              # int16 rows x cols (all groups)
    intro: np.ndarray          # uint8, same shape
    n_levels: int
    groups: int
    in_shape: list[int]
    out_shape: list[int]
    opts: dict = field(default_factory=dict)   # format options (block_shape, kernel_size)
    qm: object = None          # the quantized model (shift, bias: the LEA engine's checks); None from a bundle
    cache: dict = field(default_factory=dict, repr=False)   # per-engine layouts computed once

    @property
    def is_conv(self) -> bool:
        return self.graph_op.startswith("conv")

    @property
    def positions(self) -> int:
        """Output positions per group (1 for a linear layer)."""
        if not self.is_conv:
            return 1
        _, h, w = _shape3(self.out_shape)
        return h * w

    def encode(self, fmt: str) -> list[formats.EncodedLayer]:
        """One EncodedLayer per group (codegen_lower.encode_layer's split); FormatError if it cannot."""
        rows_g = self.w.shape[0] // self.groups
        opts = {k: v for k, v in self.opts.items() if k in formats._OPTS.get(fmt, ())}
        return [formats.encode(fmt, self.w[g * rows_g:(g + 1) * rows_g], self.intro[g * rows_g:(g + 1) * rows_g],
                               self.n_levels, **opts) for g in range(self.groups)]


def _format_opts(node: dict, given: Mapping | None) -> dict:
    opts = dict(given or {})
    if node["op"] in ("conv1d", "conv2d") and "kernel_size" not in opts:
        k = node["kernel"]
        opts["kernel_size"] = (1, k[0]) if len(k) == 1 else tuple(k)
    return opts


def layers_from_qmodel(qm, format_opts: Mapping | None = None) -> list[LayerInfo]:
    """The quantized model's conv/linear layers in graph order (the weights the compiler encodes)."""
    shapes = {qm.graph["input"]["name"]: qm.graph["input"]["shape"]}
    out = []
    for n in qm.graph["nodes"]:
        shapes[n["name"]] = n["shape"]
        if n["name"] in qm.layers:
            q = qm.layers[n["name"]]
            w, it = q.matrix()
            out.append(LayerInfo(n["name"], n["op"], n, np.asarray(w, np.int16), np.asarray(it, np.uint8),
                                 qm.n_levels, int(n.get("groups", 1) or 1), list(shapes[n["inputs"][0]]),
                                 list(n["shape"]), _format_opts(n, (format_opts or {}).get(n["name"])), qm))
    return out


def layers_from_bundle(bundle, format_opts: Mapping | None = None) -> list[LayerInfo]:
    """The bundle's conv/linear layers with power-of-two int16 weights: byte counts and kernel counts do
    not depend on the values, so the analyzer needs no calibration data."""
    from .analyze import _as_q15
    shapes = {bundle.graph["input"]["name"]: bundle.graph["input"]["shape"]}
    out = []
    for n in bundle.graph["nodes"]:
        shapes[n["name"]] = n["shape"]
        key = n.get("weight")
        if n["op"] in ("conv1d", "conv2d", "linear") and key in bundle.intro:
            w = formats.as_matrix(_as_q15(bundle.weights[key]))
            it = formats.as_matrix(np.asarray(bundle.intro[key])).astype(np.uint8)
            out.append(LayerInfo(n["name"], n["op"], n, w, it, bundle.n_levels, int(n.get("groups", 1) or 1),
                                 list(shapes[n["inputs"][0]]), list(n["shape"]),
                                 _format_opts(n, (format_opts or {}).get(n["name"]))))
    return out


# ------------------------------------------------------------------------------------------ engines

@dataclass(frozen=True)
class Engine:
    """A back-end that can run conv/linear layers.

    layouts(layer) -> [(format, method)] it can run the layer in (method "direct" | "im2col" for
    convolutions, "-" for linear layers); counts(layer, encs, method, level) -> the host-board counters
    of one inference of the layer at `level` (macs, weight_bytes_read, act_bytes_read,
    act_bytes_written, calls, decode_bytes); kernel_key(layer, format, method) -> the cycle model's key.
    An engine with its own cost model gives `cost(layer, format, method)` -> {"bytes": weight bytes,
    "cycles": [core cycles per level], "fram_read": [weight bytes read per level], "key": its model's
    name, "calibrated": bool} instead of counts (the cycle model is then not asked)."""
    name: str
    layouts: Callable[[LayerInfo], list[tuple[str, str]]]
    counts: Callable[[LayerInfo, list, str, int], dict] | None = None
    kernel_key: Callable[[LayerInfo, str, str], str] | None = None
    cost: Callable[[LayerInfo, str, str], dict] | None = None


ENGINES: dict[str, Engine] = {}


def register_engine(engine: Engine) -> Engine:
    ENGINES[engine.name] = engine
    return engine


#: formats the CPU engine tries; block and pattern only with their shape option (as `auto` does)
CPU_FORMATS = formats.FORMATS


def _cpu_layouts(layer: LayerInfo) -> list[tuple[str, str]]:
    out = []
    for fmt in CPU_FORMATS:
        if fmt == "block" and "block_shape" not in layer.opts:
            continue
        if fmt == "pattern" and not layer.is_conv:
            continue
        if not layer.is_conv:
            out.append((fmt, "-"))
            continue
        if formats.supports_direct(fmt):   # direct_conv may still refuse (16-bit offsets): layer_options skips it
            out.append((fmt, "direct"))
        out.append((fmt, "im2col"))
    return out


def _inside_reads(layer: LayerInfo) -> int:
    """Input samples inside the image over all windows of one group (what im2col copies; padding not)."""
    w = _window(layer.node)
    _, in_h, in_w = _shape3(layer.in_shape)
    _, out_h, out_w = _shape3(layer.out_shape)

    def axis(n_out, k, s, p, d, n_in):
        pos = np.arange(n_out)[:, None] * s - p + np.arange(k)[None, :] * d
        return int(((pos >= 0) & (pos < n_in)).sum())
    cg = _shape3(layer.in_shape)[0] // layer.groups
    return cg * axis(out_h, w["k_h"], w["s_h"], w["p_h"], w["d_h"], in_h) * \
        axis(out_w, w["k_w"], w["s_w"], w["p_w"], w["d_w"], in_w)


def _direct_weight_bytes(encs: list, kc: list[dict], positions: int, chunks: int) -> int:
    """Weight bytes the host board counts for a direct convolution, from the format's arrays: the formats
    whose direct kernel maps columns through an offset table (sn_conv_direct.h) count what their spmv
    kernel counts, per window; the others (csr16: indices are the offsets) read their per-entry arrays
    (values + indices) per window and the rest (the counts table) once per kernel call."""
    if formats.direct_needs_offset_table(encs[0].format):
        return positions * sum(k["weight_bytes_read"] for k in kc)
    e = encs[0]
    per_mac = sum(a.dtype.itemsize for n, a in e.arrays.items() if e.parts[n] in ("values", "indices"))
    return sum(positions * per_mac * k["macs"] + chunks * (k["weight_bytes_read"] - per_mac * k["macs"])
               for k in kc)


def _cpu_counts(layer: LayerInfo, encs: list, method: str, level: int) -> dict:
    """The host board's counters for the layer at `level` (sn_op_conv.c counting; the first step's copy
    of the model input, which sn_graph.c adds to it, is not the layer's and is left out)."""
    P, G = layer.positions, layer.groups
    kc = [e.kernel_counts(level) for e in encs]
    macs = P * sum(k["macs"] for k in kc)
    wbr = P * sum(k["weight_bytes_read"] for k in kc)
    kernel_calls = G * P
    if method == "direct":
        dc = direct_conv(layer.node, encs, layer.in_shape, layer.out_shape)
        if dc is not None:
            _, out_h, out_w = _shape3(layer.out_shape)
            chunks = out_h * -(-out_w // dc["chunk"])
            wbr = _direct_weight_bytes(encs, kc, P, chunks)
            kernel_calls = G * chunks
    rows_g, cols_g = encs[0].rows, encs[0].cols
    read, written = 2 * macs, 2 * rows_g * G * P
    if method == "im2col":
        read += 2 * G * _inside_reads(layer)
        written += 2 * G * P * cols_g
    elif method == "direct":
        win = _window(layer.node)
        if win["p_h"] or win["p_w"]:
            c, h, w = _shape3(layer.in_shape)
            read += 2 * c * h * w
            written += 2 * c * (h + 2 * win["p_h"]) * (w + 2 * win["p_w"])
    return count_features({"macs": macs, "weight_bytes_read": wbr, "act_bytes_read": read,
                           "act_bytes_written": written}, G * P, kernel_calls)


def _cpu_key(layer: LayerInfo, fmt: str, method: str) -> str:
    return f"{layer.graph_op}/{fmt}" + ("-direct" if method == "direct" else "")


register_engine(Engine("cpu", _cpu_layouts, _cpu_counts, _cpu_key))


def _lea_layout(layer: LayerInfo):
    """The layer's LEA layout (lea_plan, computed once), or None with the reason in layer.cache."""
    if "lea" not in layer.cache:
        if layer.qm is not None:
            lay, why = lea_plan.plan_layer(layer.qm, layer.name, layer.node, layer.in_shape, layer.out_shape)
        elif layer.is_conv:   # a bundle: no shift or bias yet; costed as shift 15 (no doublings on LEA)
            lay, why = lea_plan.conv_layout(layer.name, layer.node, layer.w, layer.intro, layer.n_levels,
                                            layer.in_shape, layer.out_shape)
        else:
            lay, why = lea_plan.linear_layout(layer.name, layer.w, layer.intro, layer.n_levels), ""
        layer.cache["lea"], layer.cache["lea_why"] = lay, why
    return layer.cache["lea"]


def _lea_layouts(layer: LayerInfo) -> list[tuple[str, str]]:
    lay = _lea_layout(layer)
    if lay is None:
        return []
    if lay.kind == "conv":
        return [("kernel-rows", "fir")]
    dense = len(lay.groups) == 1 and lay.bh == lay.rows and lay.bw == lay.cols
    return [("dense" if dense else f"blocks{lay.bh}x{lay.bw}", "mac")]


def _lea_weight_words(lay, level: int) -> int:
    """Weight words one inference at `level` copies from FRAM into LEA RAM (lea_plan.lea_layer_cost's copies)."""
    if lay.kind == "linear":
        return sum(nr * lea_plan._even(counts[level - 1] * lay.bw) for _, nr, _, counts in lay.groups)
    bands = -(-lay.out_h // lay.band)
    return bands * lay.taps * sum(c[level - 1] for c in lay.counts)


@functools.lru_cache(maxsize=None)
def _lea_factors() -> dict[str, float]:
    """LEA_CALIBRATION's factor per layer kind ({} when the file is absent: the model is then uncalibrated)."""
    try:
        return {k: float(v) for k, v in json.loads(LEA_CALIBRATION.read_text())["factors"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _lea_cost(layer: LayerInfo, fmt: str, method: str) -> dict:
    """The LEA model (lea_plan.lea_layer_cost: DSPLib call costs from board.toml, CPU glue rounded from `make
    bench-lea`'s simulated layers) per level, times its factor against our simulator (LEA_CALIBRATION);
    bytes: the LEA arrays (weights, layout words, requantisation constants); lea_ram: the layer's LEA RAM
    operands."""
    lay = _lea_layout(layer)
    k = _lea_factors().get(lay.kind)
    arrays = [lay.meta_words()] + ([lay.seg_words(), lay.weights] if lay.kind == "linear"
                                   else [lay.entry_words(), lay.coeffs])
    nbytes = sum(int(a.nbytes) for a in arrays) + (4 * lay.out_c if lay.kind == "conv" else 0)
    L = layer.n_levels
    return {"bytes": nbytes,
            "cycles": [(k or 1.0) * lea_plan.lea_layer_cost(lay, lv)["cycles"] for lv in range(1, L + 1)],
            "fram_read": [2.0 * _lea_weight_words(lay, lv) for lv in range(1, L + 1)],
            "key": f"lea/{lay.kind}", "calibrated": k is not None, "lea_ram": int(lay.scratch_bytes)}


#: the LEA engine (compiler/lea_plan.py layouts, runtime_c/kernels_lea): a candidate for conv/linear layers
#: it can run; `choose(engines=...)` includes it where the build allows (resident, continuous)
register_engine(Engine("lea", _lea_layouts, cost=_lea_cost))


# ------------------------------------------------------------------------------------------ costing

@dataclass
class Option:
    """One layout of one layer with its predicted cost."""
    engine: str
    format: str
    method: str
    bytes: int                       # weight bytes, all levels stored once
    cycles: list[float]              # per level: core + FRAM wait cycles
    energy_uj: list[float]
    calibrated: bool
    key_used: str
    lea_ram_bytes: int = 0           # LEA RAM the layout's operands take (LEA engine)

    def score(self, objective: str, weights: Sequence[float]) -> float:
        if objective == "bytes":
            return float(self.bytes)
        per = self.cycles if objective == "time" else self.energy_uj
        return float(sum(w * v for w, v in zip(weights, per)))

    def label(self) -> str:
        return f"{self.engine}/{self.format}" + ("" if self.method == "-" else f"/{self.method}")

    def to_dict(self) -> dict:
        return {"engine": self.engine, "format": self.format, "method": self.method, "bytes": self.bytes,
                "cycles": [round(c) for c in self.cycles], "energy_uj": [round(e, 3) for e in self.energy_uj],
                "calibrated": self.calibrated, "cycle_model_key": self.key_used}


def _predict(cm: CycleModel, key: str, counts: Mapping) -> tuple[float, str, bool]:
    """Core cycles; a "-direct" key the model knows nothing specific about is costed as its format."""
    det = cm.predict_detail(key, counts)
    if key.endswith("-direct") and det["key_used"] in ("*", key.split("/")[0]):
        det = cm.predict_detail(key.removesuffix("-direct"), counts)
    return det["cycles"], det["key_used"], det["calibrated"]


def layer_options(layer: LayerInfo, cm: CycleModel, platform, engines: Iterable[str] | None = None) -> list[Option]:
    """Every layout of every engine that can represent the layer, costed at every level."""
    out = []
    for en in engines or ("cpu",):
        if en not in ENGINES:
            raise ChooseError(f"unknown engine {en!r}; known: {', '.join(ENGINES)}")
        eng = ENGINES[en]
        if eng.cost is not None:
            for fmt, method in eng.layouts(layer):
                c = eng.cost(layer, fmt, method)
                tes = [time_energy(platform, cyc, rd, 0.0) for cyc, rd in zip(c["cycles"], c["fram_read"])]
                out.append(Option(en, fmt, method, int(c["bytes"]), [t["cycles"] for t in tes],
                                  [t["energy_uj"] for t in tes], c["calibrated"], c["key"], c.get("lea_ram", 0)))
            continue
        encoded: dict[str, list | None] = {}
        for fmt, method in eng.layouts(layer):
            if fmt not in encoded:
                try:
                    encoded[fmt] = layer.encode(fmt)
                except formats.FormatError:
                    encoded[fmt] = None
            encs = encoded[fmt]
            if encs is None or (method == "direct" and
                                direct_conv(layer.node, encs, layer.in_shape, layer.out_shape) is None):
                continue
            key = eng.kernel_key(layer, fmt, method)
            cyc, en_uj, cal, used = [], [], True, key
            for lv in range(1, layer.n_levels + 1):
                counts = eng.counts(layer, encs, method, lv)
                core, used, ok = _predict(cm, key, counts)
                te = time_energy(platform, core, counts["weight_bytes_read"], 0.0)
                cyc.append(te["cycles"])
                en_uj.append(te["energy_uj"])
                cal = cal and ok
            out.append(Option(en, fmt, method, int(sum(e.total_bytes for e in encs)), cyc, en_uj, cal, used))
    return out


# ------------------------------------------------------------------------------------------ choosing

@dataclass
class Choice:
    """The chosen layout per layer, its runner-up and the memory fallbacks taken."""
    objective: str
    level_weights: list[float]
    layers: dict[str, dict]           # name -> {"chosen": Option, "runner_up": Option | None, "options": [..]}
    fallbacks: list[str]
    over_bytes: int = 0               # > 0: even the smallest layouts are over the budget by this much
    calibration: str = ""

    def formats(self) -> dict[str, str]:
        """CPU format per layer (layers on another engine are left to the compiler's default)."""
        return {n: d["chosen"].format for n, d in self.layers.items() if d["chosen"].engine == "cpu"}

    def conv_methods(self) -> dict[str, str]:
        return {n: d["chosen"].method for n, d in self.layers.items()
                if d["chosen"].engine == "cpu" and d["chosen"].method != "-"}

    def engines(self) -> dict[str, str]:
        return {n: d["chosen"].engine for n, d in self.layers.items()}

    def totals(self) -> dict:
        ch = [d["chosen"] for d in self.layers.values()]
        L = len(self.level_weights)
        return {"bytes": int(sum(o.bytes for o in ch)),
                "cycles": [float(sum(o.cycles[k] for o in ch)) for k in range(L)],
                "energy_uj": [float(sum(o.energy_uj[k] for o in ch)) for k in range(L)]}

    def to_dict(self) -> dict:
        return {"objective": self.objective, "level_weights": self.level_weights, "fallbacks": self.fallbacks,
                "over_bytes": self.over_bytes, "calibration": self.calibration, "totals": self.totals(),
                "layers": {n: {"chosen": d["chosen"].to_dict(),
                               "runner_up": d["runner_up"].to_dict() if d["runner_up"] else None}
                           for n, d in self.layers.items()}}


def default_cycle_model() -> CycleModel:
    """The shipped calibration when present, else the fallback table (predictions flagged uncalibrated)."""
    if DEFAULT_CYCLE_MODEL.exists():
        return CycleModel.load(DEFAULT_CYCLE_MODEL)
    return CycleModel.fallback_only()


def _ranked(opts: list[Option], objective: str, weights: Sequence[float]) -> list[Option]:
    """Best first. For time and energy a layout whose cycles come from the calibrated model ranks before
    one costed by the fallback table (an unmeasured guess does not beat a measurement); ties: fewer bytes,
    then the earlier layout (engine order, FORMATS order, direct before im2col)."""
    guess = (lambda o: not o.calibrated) if objective != "bytes" else (lambda o: False)
    return sorted(opts, key=lambda o: (guess(o), o.score(objective, weights), o.bytes))


def choose(layers: Sequence[LayerInfo], objective: str = "time", *, fits: Callable[..., int] | None = None,
           fits_far: Callable[..., int] | None = None,
           cycle_model: CycleModel | None = None, platform=None, level_weights: Sequence[float] | None = None,
           engines: Iterable[str] | None = None, conv: str = "auto", lea_ram_bytes: int | None = None) -> Choice:
    """Per layer the layout minimising `objective` (module docstring). fits(formats, conv_methods,
    engines) -> bytes over the memory budget with every weight in lower FRAM (0: fits); None: no budget
    check. fits_far: the same with weights streamed from upper FRAM allowed, tried when even the smallest
    layouts are over `fits`. conv "im2col": no direct convolutions (compile --conv im2col). engines: the
    registered engines to consider (default: cpu only). lea_ram_bytes: LEA RAM for one layer's operands
    (default: the MSP430FR5994's LEA RAM within its SRAM arena; layouts that need more are no candidates)."""
    if objective not in OBJECTIVES:
        raise ChooseError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    cm = cycle_model or default_cycle_model()
    platform = platform or load_platform()
    L = layers[0].n_levels if layers else 1
    if level_weights is None:
        level_weights = [1.0 / L] * L
    level_weights = [float(w) for w in level_weights]
    if len(level_weights) != L or any(w < 0 or not math.isfinite(w) for w in level_weights) or sum(level_weights) <= 0:
        raise ChooseError(f"level_weights: {L} non-negative numbers with a positive sum, got {level_weights}")
    if lea_ram_bytes is None:
        from .planner import get_target
        chip = get_target("msp430fr5994")
        lea_ram_bytes = min(chip.lea_bytes, chip.sram_arena_budget)
    table: dict[str, dict] = {}
    for ly in layers:
        opts = [o for o in layer_options(ly, cm, platform, engines)
                if (conv != "im2col" or o.method != "direct") and o.lea_ram_bytes <= lea_ram_bytes]
        if not opts:
            raise ChooseError(f"layer '{ly.name}': no engine can run it in any format")
        ranked = _ranked(opts, objective, level_weights)
        table[ly.name] = {"chosen": ranked[0], "runner_up": ranked[1] if len(ranked) > 1 else None,
                          "options": ranked}
    unc = sorted({o.key_used for d in table.values() for o in d["options"] if not o.calibrated})
    calibration = (("cycle model " + str(cm.meta.get("calibration", "fit")))
                   + (f"; UNCALIBRATED (fallback table) for {', '.join(unc)}" if unc else ""))
    ch = Choice(objective, level_weights, table, [], 0, calibration)
    if fits is None:
        return ch
    over = _fall_back(ch, fits, lambda o: True)
    if over > 0 and fits_far is not None:
        del ch.fallbacks[:]   # the lower-FRAM-only moves led nowhere
        # lower FRAM cannot hold even the smallest layouts: some weights must stream from upper FRAM, which
        # needs formats cut into row tiles (codegen_far); start again from the best of those
        for d in table.values():
            ok = [o for o in d["options"] if o.format not in NO_ROW_TILES]
            d["chosen"], d["runner_up"] = ok[0], (ok[1] if len(ok) > 1 else None)
        ch.fallbacks.append(f"lower FRAM cannot hold even the smallest layouts ({over} bytes over): weights "
                            "stream from upper FRAM "
                            f"(formats limited to those with row tiles, not {', '.join(NO_ROW_TILES)}; the DMA "
                            "cost of streaming is not in the prediction)")
        over = _fall_back(ch, fits_far, lambda o: o.format not in NO_ROW_TILES)
    ch.over_bytes = over
    if over > 0:
        ch.fallbacks.append(f"even the smallest layouts are {over} bytes over the memory budget")
    return ch


#: formats codegen_far cannot cut into row tiles (one segment row, or the whole-matrix hbitmap stages)
NO_ROW_TILES = ("hbitmap", "rows", "cols")


def _fall_back(ch: Choice, fits: Callable[..., int], allowed: Callable[[Option], bool]) -> int:
    """While `fits` says over: move the one layer whose next smaller allowed layout costs the least
    objective per byte saved. Returns the bytes still over (0: fits)."""
    objective, weights = ch.objective, ch.level_weights
    over = fits(ch.formats(), ch.conv_methods(), ch.engines())
    while over > 0:
        best = None   # (objective increase per byte saved, layer, option)
        for name, d in ch.layers.items():
            cur = d["chosen"]
            for o in d["options"]:
                saved = cur.bytes - o.bytes
                if saved <= 0 or not allowed(o):
                    continue
                rate = (o.score(objective, weights) - cur.score(objective, weights)) / saved
                if best is None or rate < best[0]:
                    best = (rate, name, o)
        if best is None:
            return over
        rate, name, o = best
        cur = ch.layers[name]["chosen"]
        ch.fallbacks.append(f"{name}: {cur.label()} -> {o.label()} ({cur.bytes - o.bytes} bytes less, "
                            f"{rate:+.3g} {_unit(objective)} per byte saved): {over} bytes over the budget")
        ch.layers[name]["runner_up"] = cur
        ch.layers[name]["chosen"] = o
        over = fits(ch.formats(), ch.conv_methods(), ch.engines())
    return 0


def _unit(objective: str) -> str:
    return {"time": "cycles", "energy": "µJ", "bytes": "bytes"}[objective]


# ------------------------------------------------------------------------------------------ printing

def format_choice(ch: Choice) -> str:
    """Per layer: chosen and runner-up layout, their bytes and predicted cycles per level."""
    L = len(ch.level_weights)
    cyc = lambda o: "/".join(f"{c / 1e3:.1f}k" for c in o.cycles)  # noqa: E731
    lines = [f"objective {ch.objective} (levels weighted {'/'.join(f'{w:.2f}' for w in ch.level_weights)}); "
             f"{ch.calibration}",
             f"{'layer':<14} {'chosen':<22} {'bytes':>7} {'cycles L1..L' + str(L):>26}   "
             f"{'runner-up':<22} {'bytes':>7} {'cycles':>26}"]
    for name, d in ch.layers.items():
        c, r = d["chosen"], d["runner_up"]
        flag = "" if c.calibrated else " *"
        rtxt = f"{r.label() + ('' if r.calibrated else ' *'):<22} {r.bytes:>7} {cyc(r):>26}" if r else "-"
        lines.append(f"{name:<14} {c.label() + flag:<22} {c.bytes:>7} {cyc(c):>26}   {rtxt}")
    t = ch.totals()
    lines.append(f"{'total':<14} {'':<22} {t['bytes']:>7} {'/'.join(f'{c / 1e3:.1f}k' for c in t['cycles']):>26}"
                 "   (conv/linear layers; predicted cycles incl. FRAM wait states)")
    for f in ch.fallbacks:
        lines.append("memory fallback: " + f)
    if any(not d["chosen"].calibrated for d in ch.layers.values()):
        lines.append("* uncalibrated: fallback cycle table (sparsenest.analysis.cost.FALLBACK_TABLE)")
    return "\n".join(lines)


def planner_fits(qm, target, *, format_opts: Mapping | None = None, switching: str = "resident",
                 intermittent: bool = False, checkpoint: str = "auto", conv_default: str = "auto",
                 far: bool = False) -> Callable[..., int]:
    """A `fits` for `choose` that runs the compiler's own lowering, memory plan and placement and returns
    the bytes over `target.fram_bytes`: the exact check compile makes. far=False: every weight in lower
    FRAM; far=True: the compiler's far placement (upper FRAM) as compile runs it, 0 when it succeeds,
    else the bytes over with every weight in lower FRAM (which shrink as layouts do). engines (optional
    third argument, {layer: "cpu" | "lea"}): the layers on LEA get their LEA arrays and operands as
    compile gives them (lea_codegen.choose)."""
    from .planner import PlanError
    from dataclasses import replace

    from . import lea_codegen
    from .codegen_lower import lower_layers
    from .codegen_place import place
    from .planner import plan_memory
    roomy = replace(target, fram_bytes=1 << 30, upper_fram_bytes=0)

    def fits(fmts: dict, convs: dict, engines: dict | None = None) -> int:
        on_lea = lea_codegen.uses_lea(engines or "cpu")
        low, lps = lower_layers(qm, fmt={**fmts, "*": "auto"}, format_opts=format_opts,
                                conv={**convs, "*": conv_default}, in_place=not intermittent,
                                conv_in_place=not on_lea)
        if on_lea:
            lea_codegen.choose(qm, low, lps, engines, staged=switching == "staged", intermittent=intermittent)
        plan = plan_memory(low, target, tensors_in_fram=intermittent)
        opts = dict(staged=switching == "staged", initial_level=1, far_tile_bytes=1024, intermittent=intermittent,
                    checkpoint=checkpoint)
        total = place(qm, low, lps, plan, roomy, far="none", **opts).total_fram
        if far and total > target.fram_bytes:
            try:
                place(qm, low, lps, plan, target, far="auto", **opts)
                return 0
            except PlanError:
                pass
        return max(0, total - target.fram_bytes)
    return fits


def choose_for_compile(qm, target, objective: str, *, cycle_model=None, format_opts: Mapping | None = None,
                       switching: str = "resident", intermittent: bool = False, checkpoint: str = "auto",
                       conv: str = "auto", engine: str = "cpu") -> Choice:
    """compile_bundle's choice: the quantized model's layers within the real planner's budget (lower FRAM
    first, then with far placement where the target has upper FRAM). engine "auto": the CPU and the LEA
    engines are candidates per layer (the LEA only in resident, continuous builds, within the target's
    LEA RAM); "cpu" (and "lea", which lea_codegen forces afterwards): the CPU formats only."""
    opts = dict(format_opts=format_opts, switching=switching, intermittent=intermittent, checkpoint=checkpoint,
                conv_default=conv)
    engines = ("cpu", "lea") if engine == "auto" and switching == "resident" and not intermittent else ("cpu",)
    return choose(layers_from_qmodel(qm, format_opts), objective, cycle_model=cycle_model, conv=conv,
                  engines=engines, lea_ram_bytes=min(target.lea_bytes, target.sram_arena_budget),
                  fits=planner_fits(qm, target, **opts),
                  fits_far=planner_fits(qm, target, far=True, **opts) if target.upper_fram_bytes else None)


def estimate_fits(layers: Sequence[LayerInfo], target, far: bool = False) -> Callable[..., int]:
    """A `fits` without a quantized model (the analyzer): weights (CPU formats or LEA arrays) + int32
    biases + layer descriptors of the conv/linear layers against `target.fram_bytes` (far=True: plus
    upper FRAM). It leaves out what
    the planner adds (activations spilled to FRAM, other layers' descriptors, level tables), so compile's
    check is the stricter one."""
    from .planner import LAYER_DESCRIPTOR_BYTES
    fixed = sum(4 * ly.w.shape[0] + LAYER_DESCRIPTOR_BYTES for ly in layers)
    by_layer = {ly.name: ly for ly in layers}
    sizes: dict[tuple[str, str], int] = {}

    def size(name: str, fmt: str) -> int:
        if (name, fmt) not in sizes:
            sizes[(name, fmt)] = sum(e.total_bytes for e in by_layer[name].encode(fmt))
        return sizes[(name, fmt)]

    def fits(fmts: dict, convs: dict, engines: dict | None = None) -> int:
        budget = target.fram_bytes + (target.upper_fram_bytes if far else 0)
        lea = sum(_lea_cost(by_layer[n], "", "")["bytes"] for n, e in (engines or {}).items() if e == "lea")
        return max(0, fixed + lea + sum(size(n, f) for n, f in fmts.items()) - budget)
    return fits
