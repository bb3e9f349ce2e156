"""Cost model of sparse inference on the MSP430FR5994: cycles, time, energy and FRAM traffic.

Three parts, each usable alone:

* **Platform** (`load_platform`, defined in `sparsenest.board` and re-exported here): the board's
  constants from a TOML file, each with its source; derived numbers (active power, energy per cycle,
  FRAM wait states, FRAM write energy) with their formula by `Platform.derived()`.

* **CycleModel**: cycles of one kernel invocation as a linear function of the operation counts that the
  host board records (`runtime_c/include/sn_counters.h`) plus the number of kernel calls::

      cycles ~ a*macs + b*weight_bytes_read + c*act_bytes_read + d*act_bytes_written + e*calls
               + f*decode_bytes

  with one coefficient vector per kernel key. Kernel keys are ``"<graph op>/<format>"`` for matrix
  layers (``"conv2d/csr16"``, ``"linear/dense"``) and ``"<graph op>"`` for the rest (``"maxpool2d"``).
  `CycleModel.fit(samples)` calibrates the coefficients by least squares from measured samples
  ``(kernel_key, counts, cycles)`` (the MSP430 instruction-level simulator supplies them); `save`/`load`
  ship the result as JSON. A key without calibration falls back to `FALLBACK_TABLE`, rough per-format
  numbers built from the toolchain measurements (`CycleModel.fallback_only()`); every prediction using it
  is flagged ``calibrated: False`` and every summary says "UNCALIBRATED".
  Cycles are *core* cycles with zero FRAM wait states: our MSP430FR5994 simulator's `cpu_cycles` (the
  CPUXv2 table; samples from `sparsenest.analysis.calibration`); the platform adds the wait states of
  the chosen clock (`Platform.wait_cycles`). mspdebug 0.22's cycles (an older table that over-counts
  constant-generator operands, about 18 % on a typical loop) should not be mixed in.

* **Predictions**: `predict_inference` (per layer and per inference: cycles, µs, µJ, FRAM bytes read and
  written, optional LEA estimate), `predict_switch` (FRAM writes of a level switch by CPU or DMA),
  `lea_estimate` (a dense layer on the LEA accelerator) and `breakeven_sparsity` (the sparsity above
  which a sparse CPU kernel beats dense CPU, and dense-on-LEA, as a function of row length).

Energy model: E = P_active * t + n_fram_words_written * E_write, with P_active = I(µA/MHz) * f * V.
Time t counts core cycles plus FRAM wait cycles at MCLK. The LEA's own figures (nJ per call and per
element) are used as they are for its part.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

# Platform lives with the board's other facts (layer 0); re-exported here for the cost model's callers
from ..board import REQUIRED_KEYS, Constant, Platform, PlatformError, load_platform  # noqa: F401

__all__ = [
    "Constant", "Platform", "PlatformError", "load_platform", "REQUIRED_KEYS",
    "FEATURES", "count_features", "CycleModel", "CycleModelError", "FALLBACK_TABLE", "resolve_chain",
    "time_energy", "predict_layer", "predict_inference", "predict_switch", "far_dma", "switch_matrices",
    "lea_estimate",
    "row_counts", "breakeven_sparsity", "layers_from_build", "format_inference_table",
]

# ========================================================================================= cycle model

#: Count features of the linear cycle model, in coefficient order. The first four are host-board
#: counters; `calls` is the number of kernel invocations (1 for a linear layer, output positions x
#: groups for a convolution; `layers_from_build` derives it). `decode_bytes` (`count_features`): the
#: weight bytes a direct convolution decodes once per kernel call (a row's entries into (value, offset)
#: pairs, sn_conv_direct.h) over all its calls; the counters count a window's weight bytes per window,
#: but the decoding runs once per chunk of windows, so without it a direct layer's decode cost has no
#: count of its own (held-out errors of up to 15 %). 0 for im2col convolutions and linear layers.
FEATURES = ("macs", "weight_bytes_read", "act_bytes_read", "act_bytes_written", "calls", "decode_bytes")
#: value of a feature a count dict leaves out (calls: noted, as before; decode_bytes: no direct decoding)
FEATURE_DEFAULTS = {"calls": 1.0, "decode_bytes": 0.0}


def count_features(counters: Mapping[str, float], calls: float, kernel_calls: float | None = None) -> dict:
    """The cycle model's counts of one layer from the host board's counters: `calls` = output positions x
    groups (1 for a linear layer), `kernel_calls` = the C kernel's invocations (a direct convolution: groups x
    output rows x chunks per row; None or equal to calls: no per-call decoding) -> decode_bytes = the
    weight bytes of one window x kernel_calls."""
    out = {k: float(v) for k, v in counters.items()}
    out["calls"] = float(calls)
    direct = kernel_calls is not None and calls and float(kernel_calls) != float(calls)
    out["decode_bytes"] = float(out.get("weight_bytes_read", 0.0)) * float(kernel_calls) / float(calls) \
        if direct else 0.0
    return out


class CycleModelError(ValueError):
    pass


def _readable_to_raw(mac, meta_byte, act_read_byte, act_write_byte, call):
    """Coefficients on the raw counters from per-unit costs: `mac` = cycles per MAC including its
    2-byte value and its 2-byte activation; `meta_byte` = cycles per weight byte beyond 2 per MAC
    (indices, bitmaps, counts tables); `act_read_byte` = cycles per activation byte read beyond 2 per
    MAC (im2col, pooling); `act_write_byte`; `call` = fixed cycles per kernel call."""
    return {"macs": mac - 2 * meta_byte - 2 * act_read_byte, "weight_bytes_read": meta_byte,
            "act_bytes_read": act_read_byte, "act_bytes_written": act_write_byte, "calls": call}


# (mac, meta_byte, why). MAC base: the MPY32 MACS/OP2 loop measured at 13-16 cycles (midpoint 14.5) in
# the simulator [msp430-toolchain.md]. Index / metadata costs are instruction-count estimates for the
# 16-bit ISA (a word load with auto-increment is 2 cycles, register ops 1, a bit test + branch 3).
_FALLBACK_FORMATS = {
    "dense": (14.5, 0.0, "measured 13-16 cycles/MAC through MACS/OP2 (midpoint)"),
    "csr16": (14.5, 2.0, "+ 16-bit column index: load (2) + word-address arithmetic (2) = 2 cycles/byte"),
    "rel8": (14.5, 5.0, "+ 8-bit delta: byte load (2) + running column add (1) + scale/add base (2)"),
    "rel4": (14.5, 16.0, "+ 4-bit delta: nibble extraction with 4 single-bit shifts + mask (~8 per nibble)"),
    "bitmap": (16.5, 26.0, "+ 2 per MAC column advance; bitmap scanned bit by bit (~3 per bit + load)"),
    "block": (14.5, 10.0, "dense inside a block; ~20 cycles per 2-byte block id / row setup"),
    "rows": (14.5, 10.0, "dense kept rows; ~20 cycles per 2-byte row id"),
    "cols": (14.5, 10.0, "dense kept columns; ~20 cycles per 2-byte column id"),
    "pattern": (14.5, 5.0, "+ 1-byte kernel offset per entry and a 4-byte kernel header (~5 per byte)"),
    "hbitmap": (16.5, 30.0, "as bitmap, plus per kept weight a chain of stage-bit tests (~8 bits per byte read)"),
}
#: Direct convolutions (sn_conv_<format>, kernel format "<format>-direct"): per (format, method) the
#: same (mac, meta_byte, why). The counters count a row's weight bytes once per window, but the row is
#: decoded once per call (chunk of windows), so metadata is cheap per counted byte.
_FALLBACK_DIRECT = {
    "csr16": (13.0, 1.0, "byte-offset indices: 4 instructions per product (weight to MACS, offset, + window, sample to OP2)"),
    "bitmap": (13.0, 1.0, "row decoded once per call into (value, byte offset) pairs; 4 instructions per product"),
    "rel8": (13.0, 1.0, "row decoded once per call into (value, byte offset) pairs; 4 instructions per product"),
    "rel4": (13.0, 1.0, "row decoded once per call into (value, byte offset) pairs; 4 instructions per product"),
}
_FALLBACK_ACT_READ, _FALLBACK_ACT_WRITE, _FALLBACK_CALL = 3.0, 6.0, 60.0
_FALLBACK_WHY_COMMON = ("activation bytes read beyond the MAC operands (im2col, pooling) 3 cycles/byte; "
                        "activation bytes written 6 cycles/byte (int32 requantize shift loop + store, "
                        "averaged with im2col copies); 60 cycles per call (call, prologue, loop set-up)")


def _build_fallback(mac_cycles: float | None = None) -> dict[str, dict]:
    table = {}
    for fmt, (mac, meta, why) in [*_FALLBACK_FORMATS.items(),
                                  *((f"{f}-direct", v) for f, v in _FALLBACK_DIRECT.items())]:
        if mac_cycles is not None:
            mac = mac + (mac_cycles - 14.5)
        table[f"*/{fmt}"] = {"coefficients": _readable_to_raw(mac, meta, _FALLBACK_ACT_READ,
                                                              _FALLBACK_ACT_WRITE, _FALLBACK_CALL),
                             "why": f"{why}; {_FALLBACK_WHY_COMMON}"}
    table["*"] = {"coefficients": {"macs": 0.0, "weight_bytes_read": 0.0, "act_bytes_read": 3.0,
                                   "act_bytes_written": 4.0, "calls": _FALLBACK_CALL},
                  "why": "element-wise / pooling / copy ops: ~6 cycles per 16-bit input (load, compare or "
                         "add), ~8 per output stored, 60 per call"}
    return table


#: The uncalibrated fallback: key -> {"coefficients": {feature: cycles per unit}, "why": derivation}.
FALLBACK_TABLE = _build_fallback()


def resolve_chain(kernel_key: str) -> list[str]:
    """Keys tried, most specific first: "conv2d/csr16" -> conv2d/csr16, */csr16, conv2d, *."""
    if "/" in kernel_key:
        op, fmt = kernel_key.split("/", 1)
        return [kernel_key, f"*/{fmt}", op, "*"]
    return [kernel_key, "*"]


def _feature_vector(counts: Mapping[str, float], features: Sequence[str], kernel_key: str,
                    needed: Iterable[str] | None = None) -> tuple[np.ndarray, list[str]]:
    notes = []
    vec = np.zeros(len(features))
    needed = set(features if needed is None else needed)
    for i, f in enumerate(features):
        if f in counts:
            vec[i] = float(counts[f])
        elif f in FEATURE_DEFAULTS:
            vec[i] = FEATURE_DEFAULTS[f]
            if f == "calls":
                notes.append(f"{kernel_key}: 'calls' not given, assumed 1")
        elif f in needed:
            raise CycleModelError(f"{kernel_key}: counts lack {f!r} (have {sorted(counts)}); the cycle "
                                  f"model needs {list(features)}")
    return vec, notes


@dataclass
class CycleModel:
    """Per-kernel linear cycle model. `kernels[key]` = {"coefficients": {feature: value}, ...fit stats}.
    Keys missing here resolve through `resolve_chain` into `fallback` (default: FALLBACK_TABLE), and such
    predictions are marked uncalibrated."""
    kernels: dict[str, dict] = field(default_factory=dict)
    features: tuple[str, ...] = FEATURES
    meta: dict = field(default_factory=dict)
    fallback: dict[str, dict] | None = field(default_factory=lambda: FALLBACK_TABLE)

    FORMAT = "sparsenest-cycle-model"
    VERSION = 1

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def fallback_only(cls, mac_cycles: float | None = None) -> "CycleModel":
        """No calibrated kernels: every prediction comes from the fallback table (optionally rebuilt
        with another per-MAC base, e.g. the C-multiply path's 89 cycles)."""
        fb = FALLBACK_TABLE if mac_cycles is None else _build_fallback(mac_cycles)
        return cls({}, FEATURES, {"calibration": "none (fallback table only)"}, fb)

    @classmethod
    def fit(cls, samples: Iterable, *, features: Sequence[str] = FEATURES, pool: str = "key",
            relative: bool = True, nonnegative: bool = False, meta: dict | None = None,
            fallback: dict | None = FALLBACK_TABLE) -> "CycleModel":
        """Least-squares fit per kernel key from samples ``(kernel_key, counts, measured_cycles)`` (tuples
        or dicts with those names). `pool="format"` fits one model per format ("*/csr16") across ops.
        `relative=True` weights each sample by 1/cycles (minimises relative error, so small layers count
        as much as large ones). Features that are zero in every sample of a key, or linearly dependent
        on earlier ones (e.g. weight_bytes_read = 2*macs for dense), are dropped (coefficient 0) and
        listed under "dropped".

        `nonnegative=True` solves non-negative least squares on all features instead (always relative;
        a missing count is 0, a missing `calls` 1): non-negative coefficients keep predictions monotone in
        the counts, so they extrapolate sanely from the sparse levels the simulator holds to denser ones,
        where a plain fit on a few collinear samples gives large coefficients of both signs. `calibrate`
        uses it."""
        groups: dict[str, list[tuple[np.ndarray, float]]] = {}
        features = tuple(features)
        for s in samples:
            if isinstance(s, Mapping):
                key, counts, cyc = s["kernel_key"], s["counts"], s["cycles"]
            else:
                key, counts, cyc = s
            if pool == "format":
                key = f"*/{key.split('/', 1)[1]}" if "/" in key else key
            elif pool != "key":
                raise CycleModelError(f"pool must be 'key' or 'format', not {pool!r}")
            cyc = float(cyc)
            if not math.isfinite(cyc) or cyc <= 0:
                raise CycleModelError(f"{key}: measured cycles must be > 0, got {cyc}")
            vec, _ = _feature_vector(counts, features, key, needed=() if nonnegative else None)
            groups.setdefault(key, []).append((vec, cyc))
        if not groups:
            raise CycleModelError("fit() needs at least one sample")
        kernels = {}
        for key, rows in sorted(groups.items()):
            X = np.array([r[0] for r in rows])
            y = np.array([r[1] for r in rows])
            if nonnegative:
                kernels[key] = _nnls_entry(X, y, features)
                continue
            w = 1.0 / y if relative else np.ones_like(y)
            keep, dropped = [], []
            nonzero = [j for j in range(len(features)) if np.any(X[:, j])]
            if len(rows) < len(nonzero):
                raise CycleModelError(f"{key}: {len(rows)} samples cannot determine {len(nonzero)} coefficients "
                                      f"({', '.join(features[j] for j in nonzero)}); give more varied samples "
                                      f"or fewer features")
            for j, f in enumerate(features):
                if j not in nonzero:
                    dropped.append(f"{f} (always 0)")
                    continue
                trial = keep + [j]
                Xt = X[:, trial] / np.linalg.norm(X[:, trial], axis=0)
                if np.linalg.matrix_rank(Xt, tol=1e-9 * max(Xt.shape)) < len(trial):
                    dropped.append(f"{f} (linearly dependent on {', '.join(features[i] for i in keep)})")
                    continue
                keep.append(j)
            A = X[:, keep] * w[:, None]
            scale = np.linalg.norm(A, axis=0)
            sol, *_ = np.linalg.lstsq(A / scale, y * w, rcond=None)
            coef = np.zeros(len(features))
            coef[keep] = sol / scale
            kernels[key] = {"coefficients": {f: float(c) for f, c in zip(features, coef)},
                            **_fit_stats(X, y, coef), "dropped": dropped}
        how = "non-negative least squares" if nonnegative else "least squares"
        return cls(kernels, features, dict(meta or {}, calibration=how, pool=pool,
                                           relative=relative or nonnegative), fallback)

    @classmethod
    def calibrate(cls, samples: Sequence[Mapping], *, cycle_note: str = "") -> "CycleModel":
        """The cycle model the tools ship (report, Table 2), calibrated on simulator samples (dicts with
        kernel_key, counts, cycles, source): one entry per kernel key ("conv2d/csr16", "maxpool1d") and one
        per format pooled over ops ("*/csr16", what a key without its own entry uses; see resolve_chain).
        Each entry is `fit(nonnegative=True)` when the samples hold at least MIN_DISTINCT distinct count
        vectors, else the fallback table scaled by one factor; a fit that misses a sample by more than
        MAX_FIT_ERROR is dropped (that key stays uncalibrated). cycle_note: what the simulator's cycles
        mean (analysis.calibration's are core cycles of our simulator's CPUXv2 table)."""
        groups: dict[str, list] = {}
        for s in samples:
            groups.setdefault(s["kernel_key"], []).append(s)
            if "/" in s["kernel_key"]:
                groups.setdefault("*/" + s["kernel_key"].split("/", 1)[1], []).append(s)
        kernels, skipped = {}, {}
        for key, ss in sorted(groups.items()):
            base_key = key if key.startswith("*/") else ("*/" + key.split("/", 1)[1] if "/" in key else "*")
            ent, why = _calibrate_group(cls, key, ss, base_key)
            if ent is None:
                skipped[key] = why
            else:
                kernels[key] = ent
        meta = {"calibration": "simulator per-layer core cycles: non-negative least squares, or the fallback table scaled",
                "cycle_note": cycle_note, "n_samples": len(samples),
                "sources": sorted({s["source"] for s in samples}), "skipped": skipped}
        return cls(kernels, meta=meta)

    # -- prediction ---------------------------------------------------------------------------------
    def lookup(self, kernel_key: str) -> tuple[str, dict, bool]:
        """(key used, its entry, calibrated?) for a kernel key."""
        for k in resolve_chain(kernel_key):
            if k in self.kernels:
                return k, self.kernels[k], True
        if self.fallback:
            for k in resolve_chain(kernel_key):
                if k in self.fallback:
                    return k, self.fallback[k], False
        raise CycleModelError(f"no cycle model for {kernel_key!r} (calibrated keys: {sorted(self.kernels)}"
                              + ("; fallback disabled)" if not self.fallback else ")"))

    def is_calibrated(self, kernel_key: str) -> bool:
        return self.lookup(kernel_key)[2]

    def predict_detail(self, kernel_key: str, counts: Mapping[str, float]) -> dict:
        key, ent, calibrated = self.lookup(kernel_key)
        coef = ent["coefficients"]
        needed = [f for f in self.features if coef.get(f, 0.0) != 0.0]
        vec, notes = _feature_vector(counts, self.features, kernel_key, needed)
        cycles = float(sum(coef.get(f, 0.0) * v for f, v in zip(self.features, vec)))
        return {"cycles": max(cycles, 0.0), "key_used": key, "calibrated": calibrated, "notes": notes}

    def predict(self, kernel_key: str, counts: Mapping[str, float]) -> float:
        """Core cycles (zero wait states) of the counted work of one kernel key."""
        return self.predict_detail(kernel_key, counts)["cycles"]

    # -- persistence --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": self.FORMAT, "version": self.VERSION, "features": list(self.features),
                "kernels": self.kernels, "meta": self.meta}

    @classmethod
    def from_dict(cls, d: Mapping, *, fallback: dict | None = FALLBACK_TABLE, where: str = "cycle model"
                  ) -> "CycleModel":
        if d.get("format") != cls.FORMAT:
            raise CycleModelError(f"{where}: 'format' is {d.get('format')!r}, expected {cls.FORMAT!r}")
        if d.get("version") != cls.VERSION:
            raise CycleModelError(f"{where}: version {d.get('version')!r} not supported (this code reads "
                                  f"{cls.VERSION})")
        feats = tuple(d.get("features") or ())
        if not feats:
            raise CycleModelError(f"{where}: no 'features'")
        for key, ent in d.get("kernels", {}).items():
            coef = ent.get("coefficients") if isinstance(ent, Mapping) else None
            if not isinstance(coef, Mapping) or set(coef) - set(feats):
                raise CycleModelError(f"{where}: kernel {key!r} needs 'coefficients' over {list(feats)}")
        return cls(copy.deepcopy(dict(d.get("kernels", {}))), feats, dict(d.get("meta", {})), fallback)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, *, fallback: dict | None = FALLBACK_TABLE) -> "CycleModel":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise CycleModelError(f"cannot read cycle model {path}: {e}") from None
        return cls.from_dict(d, fallback=fallback, where=str(path))


# ----------------------------------------------------------------------------------- fitting helpers

MAX_FIT_ERROR = 0.20   # calibrate: a fit that misses a sample by more than this is not used
MIN_DISTINCT = 3       # calibrate: distinct count vectors needed for a per-feature fit; fewer: one scale factor


def _fit_stats(X: np.ndarray, y: np.ndarray, coef: np.ndarray) -> dict:
    resid = X @ coef - y
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {"n_samples": len(y), "rmse_cycles": float(np.sqrt((resid ** 2).mean())),
            "max_rel_error": float(np.max(np.abs(resid) / y)),
            "r2": 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0}


def _nnls_entry(X: np.ndarray, y: np.ndarray, features: Sequence[str]) -> dict:
    """Non-negative least squares of cycles on the count features, each sample weighted by 1/cycles."""
    from scipy.optimize import nnls   # scipy is only needed when calibrating
    A = X / y[:, None]
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1.0
    sol, _ = nnls(A / scale, np.ones_like(y))
    coef = sol / scale
    return {"coefficients": {f: float(c) for f, c in zip(features, coef)}, **_fit_stats(X, y, coef),
            "dropped": [], "fit": "non-negative least squares, relative error"}


def _scaled_entry(samples: Sequence[Mapping], base: dict, features: Sequence[str]) -> dict:
    """The fallback coefficients `base` times one factor that matches the samples' total cycles."""
    X = np.array([_feature_vector(s["counts"], features, s["kernel_key"])[0] for s in samples])
    y = np.array([float(s["cycles"]) for s in samples])
    b = np.array([base["coefficients"].get(f, 0.0) for f in features])
    pred0 = X @ b
    k = float(y.sum() / pred0.sum()) if pred0.sum() > 0 else 1.0
    return {"coefficients": {f: float(k * c) for f, c in zip(features, b)},
            **_fit_stats(X, y, k * b), "r2": None, "dropped": [],
            "fit": f"fallback table x {k:.3f} (fewer than {MIN_DISTINCT} distinct samples)"}


def _calibrate_group(cls, key: str, samples: Sequence[Mapping], base_key: str) -> tuple[dict | None, str]:
    distinct = {tuple(float(s["counts"].get(f, 0)) for f in FEATURES) for s in samples}
    ent = None
    if len(distinct) >= MIN_DISTINCT:
        ent = cls.fit([(key, s["counts"], s["cycles"]) for s in samples], nonnegative=True).kernels[key]
        if ent["max_rel_error"] <= MAX_FIT_ERROR:
            return ent, ""
    base = FALLBACK_TABLE.get(base_key) or FALLBACK_TABLE["*"]
    sc = _scaled_entry(samples, base, FEATURES)
    if sc["max_rel_error"] <= MAX_FIT_ERROR:
        return sc, ""
    return None, (f"fit misses a sample by {100 * min(sc['max_rel_error'], ent['max_rel_error'] if ent else 9):.0f} %")



# ========================================================================================= predictions

def time_energy(platform: Platform, core_cycles: float, fram_read: float, fram_written: float) -> dict:
    """Cycles (core + FRAM wait states), time and energy (active power + FRAM word writes) of one run."""
    wait = platform.wait_cycles(core_cycles, fram_read, fram_written)
    cycles = core_cycles + wait
    t = cycles / platform.mclk_hz
    words = math.ceil(fram_written / 2) if fram_written > 0 else 0
    e = platform.active_power_w * t + words * platform.fram_write_energy_j
    return {"cycles_core": core_cycles, "cycles_wait": wait, "cycles": cycles, "time_us": t * 1e6,
            "energy_uj": e * 1e6}


def predict_layer(layer: Mapping, platform: Platform, cycle_model: CycleModel | None = None, *,
                  lea: bool = True) -> dict:
    """One layer: ``{"name", "kernel_key", "counts", optional "act_in_fram" (activations read from FRAM),
    optional "shape": {"rows", "cols", "positions", "groups"} for the LEA estimate}``."""
    cm = cycle_model or CycleModel.fallback_only()
    counts = layer["counts"]
    det = cm.predict_detail(layer["kernel_key"], counts)
    fram_read = float(counts.get("weight_bytes_read", 0))
    if layer.get("act_in_fram"):
        fram_read += float(counts.get("act_bytes_read", 0))
    fram_written = float(counts.get("fram_bytes_written", 0))
    out = {"name": layer.get("name", layer["kernel_key"]), "kernel_key": layer["kernel_key"],
           "key_used": det["key_used"], "calibrated": det["calibrated"],
           **time_energy(platform, det["cycles"], fram_read, fram_written),
           "fram_bytes_read": fram_read, "fram_bytes_written": fram_written,
           "macs": float(counts.get("macs", 0)), "notes": det["notes"]}
    shape = layer.get("shape")
    if lea and shape and "/" in layer["kernel_key"]:
        out["lea"] = lea_estimate(shape["rows"], shape["cols"], platform,
                                  positions=shape.get("positions", 1), groups=shape.get("groups", 1))
    return out


def predict_inference(layers: Sequence[Mapping], platform: Platform, cycle_model: CycleModel | None = None,
                      *, lea: bool = True) -> dict:
    """Per-layer and total cycles, time (µs at MCLK with wait states), energy (µJ) and FRAM traffic of one
    inference. `layers`: list of {name, kernel_key, counts[, act_in_fram, shape]} (see predict_layer).
    The result says "uncalibrated": True when any layer used the fallback table."""
    cm = cycle_model or CycleModel.fallback_only()
    rows = [predict_layer(l, platform, cm, lea=lea) for l in layers]
    tot = {k: float(sum(r[k] for r in rows)) for k in
           ("cycles_core", "cycles_wait", "cycles", "time_us", "energy_uj", "fram_bytes_read",
            "fram_bytes_written", "macs")}
    unc = [r["name"] for r in rows if not r["calibrated"]]
    out = {"platform": platform.name, "mclk_hz": platform.mclk_hz, "wait_states": platform.wait_states,
           "active_power_mw": platform.active_power_w * 1e3, "layers": rows, "total": tot,
           "uncalibrated": bool(unc), "uncalibrated_layers": unc,
           "calibration": ("UNCALIBRATED: fallback table for " + ", ".join(unc)) if unc else
                          f"calibrated ({cm.meta.get('calibration', 'fit')})",
           "notes": sorted({n for r in rows for n in r["notes"]})}
    if lea and any("lea" in r for r in rows):
        out["lea_total"] = {k: float(sum(r["lea"][k] for r in rows if "lea" in r))
                            for k in ("cycles", "time_us", "energy_uj")}
    return out


def predict_switch(bytes_written: float, platform: Platform, method: str = "dma", *,
                   blocks: int = 1) -> dict:
    """Cost of writing `bytes_written` bytes to FRAM for a level switch.

    cpu: copy_cycles_per_word per word (+ a FRAM wait per word above 8 MHz).
    dma: block mode, cycles_per_transfer per word + (sync + setup) per block; the CPU is halted and we
    charge active power for the duration (assumption: MCLK and FRAM stay on).
    Both: never faster than the FRAM write time per word; plus the FRAM write energy per word."""
    words = math.ceil(bytes_written / 2) if bytes_written > 0 else 0
    if words == 0:
        return {"method": method, "words": 0, "cycles": 0.0, "time_us": 0.0, "energy_uj": 0.0}
    if method == "cpu":
        cycles = words * platform["cpu.copy_cycles_per_word"] + words * platform.wait_states
    elif method == "dma":
        cycles = (words * platform["dma.cycles_per_transfer"]
                  + blocks * (platform["dma.sync_cycles"] + platform["dma.setup_cycles"]))
    else:
        raise ValueError(f"method must be 'cpu' or 'dma', not {method!r}")
    t = max(cycles / platform.mclk_hz, words * platform["fram.write_ns_per_word"] * 1e-9)
    e = platform.active_power_w * t + words * platform.fram_write_energy_j
    return {"method": method, "words": words, "cycles": float(cycles), "time_us": t * 1e6, "energy_uj": e * 1e6}


def far_dma(far: Mapping, platform: Platform) -> dict:
    """Cycles and energy of streaming the far (upper FRAM) tiles of one inference by DMA into SRAM."""
    words = sum(math.ceil(v["bytes_per_call"] / 2) * v["calls"] for v in far.values())
    blocks = sum(v["tiles"] * v["arrays"] * v["calls"] for v in far.values())
    cycles = words * platform["dma.cycles_per_transfer"] + blocks * (platform["dma.sync_cycles"]
                                                                     + platform["dma.setup_cycles"])
    return {"bytes": 2 * words, "blocks": blocks, "cycles": float(cycles),
            "energy_uj": cycles * platform.energy_per_cycle_j * 1e6}


def switch_matrices(bytes_matrix: Sequence[Sequence[float]], platform: Platform, method: str = "dma"
                    ) -> dict:
    """{"energy_uj": LxL, "time_us": LxL} from bytes written per switch (row = from level, column = to
    level), e.g. from the host board's write log; the diagonal is zero."""
    L = len(bytes_matrix)
    e = [[0.0] * L for _ in range(L)]
    t = [[0.0] * L for _ in range(L)]
    for i in range(L):
        for j in range(L):
            if i != j:
                s = predict_switch(bytes_matrix[i][j], platform, method)
                e[i][j], t[i][j] = s["energy_uj"], s["time_us"]
    return {"energy_uj": e, "time_us": t, "method": method}


# ================================================================================================= LEA

def lea_estimate(rows: int, cols: int, platform: Platform, *, positions: int = 1, groups: int = 1,
                 weights_in_fram: bool = True, reserve_bytes: int = 64) -> dict:
    """A dense (or block) matrix-vector layer on the LEA: one vector MAC call per row chunk per output
    position. Chunk length: the weight chunk and the input chunk (int16 each) must fit in LEA RAM minus
    `reserve_bytes` (result, alignment). Weights live in FRAM and are DMA'd into LEA RAM: once per layer
    when the whole group matrix fits beside one input vector, else once per call. Inputs are assumed to be
    produced directly in LEA RAM (im2col writes there). Cost = calls*cycles_per_call + elements*
    cycles_per_element + DMA; energy uses the LEA's nJ figures plus active power for the DMA."""
    usable = platform["lea.ram_bytes"] - reserve_bytes
    chunk = max(1, int(usable // 4))
    per_row = math.ceil(cols / chunk)
    calls = rows * per_row * positions * groups
    elements = rows * cols * positions * groups
    resident = 2 * rows * cols + 2 * cols <= usable
    if not weights_in_fram:
        dma_words, blocks = 0, 0
    elif resident:
        dma_words, blocks = rows * cols * groups, groups
    else:
        dma_words, blocks = elements, calls
    dma_cycles = (dma_words * platform["dma.cycles_per_transfer"]
                  + blocks * (platform["dma.sync_cycles"] + platform["dma.setup_cycles"]))
    lea_cycles = calls * platform["lea.cycles_per_call"] + elements * platform["lea.cycles_per_element"]
    cycles = lea_cycles + dma_cycles
    e = (calls * platform["lea.nj_per_call"] + elements * platform["lea.nj_per_element"]) * 1e-9 \
        + dma_cycles * platform.energy_per_cycle_j
    return {"calls": calls, "elements": elements, "chunk": chunk, "weights_resident": resident,
            "dma_words": dma_words, "cycles_lea": lea_cycles, "cycles_dma": dma_cycles, "cycles": cycles,
            "time_us": cycles / platform.mclk_hz * 1e6, "energy_uj": e * 1e6}


# ========================================================================================== break-even

def _table_bytes(n: int) -> int:
    return 1 if n <= 0xFF else 2


def _rel_entries(n: int, k: int, max_delta: int) -> int:
    """Stored entries of a row of k nonzeros spread evenly over n columns (positions floor(i*n/k)) with
    a relative-index format whose largest step is max_delta (padding entries fill longer gaps)."""
    if k == 0:
        return 0
    pos = (np.arange(k, dtype=np.int64) * n) // k
    gaps = np.diff(np.concatenate([[0], pos]))
    return k + int(np.where(gaps > 0, (gaps - 1) // max_delta, 0).sum())


#: The formats row_counts has a per-row model for.
ROW_MODEL_FORMATS = ("dense", "csr16", "rel8", "rel4", "bitmap", "block")


def row_counts(fmt: str, row_len: int, nnz: int, *, level: int = 1, block_width: int = 4) -> dict:
    """Counter values (as the C kernels count them) for ONE row of `row_len` columns holding `nnz`
    nonzeros, one level, inside a single-row call: macs, weight_bytes_read, act_bytes_read (2 per MAC),
    act_bytes_written (the row's 2-byte output), calls = 1."""
    n, k = int(row_len), int(nnz)
    tb = _table_bytes(n)
    if fmt == "dense":
        macs, wb = n, 2 * n
    elif fmt == "csr16":
        macs, wb = k, 4 * k + 2 * tb
    elif fmt == "rel8":
        macs = _rel_entries(n, k, 255)
        wb = 3 * macs + 2 * tb
    elif fmt == "rel4":
        macs = _rel_entries(n, k, 15)
        macs += macs % 2
        wb = int(2.5 * macs) + 2 * tb
    elif fmt == "bitmap":
        macs, wb = k, 2 * k + level * math.ceil(n / 8) + tb
    elif fmt == "block":
        nb = math.ceil(k / block_width)
        macs, wb = nb * block_width, 2 * nb * block_width + 2 * nb + 2 * tb
    else:
        raise ValueError(f"row_counts: no per-row model for {fmt!r} ({', '.join(ROW_MODEL_FORMATS)})")
    return {"macs": macs, "weight_bytes_read": wb, "act_bytes_read": 2 * macs, "act_bytes_written": 2,
            "calls": 1}


def _row_cost(platform: Platform, cm: CycleModel, key: str, counts: dict, metric: str) -> tuple[float, bool]:
    det = cm.predict_detail(key, counts)
    te = time_energy(platform, det["cycles"], counts["weight_bytes_read"], 0.0)
    return (te["energy_uj"] * 1e3 if metric == "energy" else te["cycles"]), det["calibrated"]


def breakeven_sparsity(row_len: int, format_cost: str | Mapping, platform: Platform,
                       cycle_model: CycleModel | None = None, *, op: str = "linear", metric: str = "energy",
                       weights_in_fram: bool = True, dense_key: str | None = None) -> dict:
    """The sparsity at and above which a sparse CPU kernel costs less per row than (a) the dense CPU
    kernel and (b) the dense row on the LEA (vector MAC call + DMA of the weights from FRAM).

    `format_cost` is a format name (costed with `cycle_model`, key "<op>/<fmt>", counts from
    `row_counts`: the index bytes, padding and per-row tables the C kernels read) or an explicit
    ``{"per_nnz": cycles, "per_row": cycles}``. `metric` is "energy" (nJ per row) or "cycles".
    Returns {"cpu": s or None, "lea": s or None, ...costs per row}; None = the sparse kernel never wins
    (not even with zero nonzeros), 0.0 = it always wins. Row length matters because fixed per-row
    costs (tables, the LEA's ~616-cycle call) are amortised over the row."""
    cm = cycle_model or CycleModel.fallback_only()
    n = int(row_len)
    if n < 1:
        raise ValueError("row_len must be >= 1")
    if metric not in ("energy", "cycles"):
        raise ValueError("metric must be 'energy' or 'cycles'")
    dkey = dense_key or f"{op}/dense"
    dense_cpu, dense_cal = _row_cost(platform, cm, dkey, row_counts("dense", n, n), metric)
    le = lea_estimate(1, n, platform, weights_in_fram=weights_in_fram)
    dense_lea = le["energy_uj"] * 1e3 if metric == "energy" else le["cycles"]
    ks = np.arange(n + 1)
    calibrated = dense_cal
    if isinstance(format_cost, str):
        fmt = format_cost
        costs = np.empty(n + 1)
        for k in ks:
            costs[k], cal = _row_cost(platform, cm, f"{op}/{fmt}", row_counts(fmt, n, int(k)), metric)
            calibrated = calibrated and cal
        label = fmt
    else:
        per_nnz, per_row = float(format_cost["per_nnz"]), float(format_cost.get("per_row", 0.0))
        cyc = per_row + per_nnz * ks
        costs = cyc * platform.energy_per_cycle_j * 1e9 if metric == "energy" else cyc
        label = format_cost.get("label", "explicit")

    def solve(ref):
        ok = costs < ref
        if not ok[0]:
            return None
        k = int(np.max(np.nonzero(ok)[0]))  # costs are nondecreasing in k
        if k == n:
            return 0.0
        # interpolate the crossing between k and k+1 nonzeros, so the result is not quantised to 1/n
        step = costs[k + 1] - costs[k]
        kstar = k + ((ref - costs[k]) / step if step > 0 else 0.0)
        return float(max(0.0, 1.0 - kstar / n))

    unit = "nJ" if metric == "energy" else "cycles"
    s_cpu, s_lea = solve(dense_cpu), solve(dense_lea)
    return {"row_len": n, "format": label, "metric": metric, "unit": unit,
            "cpu": s_cpu, "lea": s_lea, "dense_cpu_per_row": float(dense_cpu),
            "dense_lea_per_row": float(dense_lea), "sparse_per_row_at_zero": float(costs[0]),
            "sparse_per_nnz": float((costs[-1] - costs[0]) / n), "calibrated": calibrated,
            "explanation": (f"row of {n}: dense CPU {dense_cpu:.1f} {unit}, dense LEA {dense_lea:.1f} {unit} "
                            f"(calls x {platform['lea.cycles_per_call']:g} + elements x "
                            f"{platform['lea.cycles_per_element']:g} cycles + DMA), sparse {label} "
                            f"{costs[0]:.1f} + {(costs[-1] - costs[0]) / n:.2f}/nnz {unit}"
                            + ("" if calibrated else "; UNCALIBRATED fallback cycle table"))}


# ====================================================================================== build adapters

def kernel_format(lm: Mapping) -> str | None:
    """The format part of a conv/linear layer's kernel key from its model_meta.json entry: "csr16", "a+b"
    for per-group formats, "csr16-direct" for a direct convolution (sn_conv_csr16, not im2col + spmv);
    None for other layers."""
    f = lm.get("format")
    if f is None:
        return None
    f = f if isinstance(f, str) else "+".join(f)
    return f + "-direct" if lm.get("conv") == "direct" else f


def kernel_c_name(fmt: str | None) -> str | None:
    """The C kernel of a kernel_format: sn_spmv_<format>, or sn_conv_<format> for "<format>-direct"."""
    if not fmt:
        return None
    return f"sn_conv_{fmt.removesuffix('-direct')}" if fmt.endswith("-direct") else f"sn_spmv_{fmt}"


def layers_from_build(meta: Mapping, layer_counters: Mapping[str, Mapping], level: int) -> list[dict]:
    """Layer list for predict_inference from a build's model_meta.json and the host board's per-step
    counters (HostSim.layer_counters() after one inference at `level`). Kernel key = "<graph op>/<format>"
    for conv/linear, "<graph op>" otherwise; calls = groups x output positions;
    decode_bytes from the build's kernel_calls (count_features)."""
    out = []
    for name in meta["steps"]:
        lm = meta["layers"][name]
        counts = dict(layer_counters[name])
        gop = lm.get("graph_op", lm.get("op"))
        if lm.get("op") in ("conv", "linear"):
            key = f"{gop}/{kernel_format(lm)}"
            nnz = lm["nnz"][level - 1]
            groups = int(lm.get("groups", 1))
            # older builds lack "positions": macs / nnz (over-counts formats with padding entries, rel4/rel8)
            positions = lm.get("positions") or (round(counts["macs"] / nnz) if nnz else 0)
            counts = count_features(counts, groups * positions if gop.startswith("conv") else groups,
                                    lm.get("kernel_calls"))
            shape = {"rows": int(lm["rows"]), "cols": int(lm["cols"]),
                     "positions": positions if gop.startswith("conv") else 1, "groups": groups}
            out.append({"name": name, "kernel_key": key, "counts": counts, "shape": shape})
        else:
            counts["calls"] = 1
            out.append({"name": name, "kernel_key": gop, "counts": counts})
    return out


def format_inference_table(pred: Mapping) -> str:
    """A plain-text table of predict_inference's result."""
    head = (f"{pred['platform']} @ {pred['mclk_hz'] / 1e6:g} MHz, {pred['wait_states']} FRAM wait state(s), "
            f"P_active {pred['active_power_mw']:.3f} mW; {pred['calibration']}")
    lines = [head, f"{'layer':<14} {'kernel':<18} {'cycles':>11} {'time us':>10} {'energy uJ':>10} "
                   f"{'FRAM rd B':>10} {'FRAM wr B':>10}  {'LEA uJ':>8}"]
    for r in pred["layers"]:
        flag = "" if r["calibrated"] else " *"
        lea = f"{r['lea']['energy_uj']:8.2f}" if "lea" in r else " " * 8
        lines.append(f"{r['name']:<14} {r['kernel_key'] + flag:<18} {r['cycles']:11.0f} {r['time_us']:10.1f} "
                     f"{r['energy_uj']:10.3f} {r['fram_bytes_read']:10.0f} {r['fram_bytes_written']:10.0f}  {lea}")
    t = pred["total"]
    lines.append(f"{'total':<14} {'':<18} {t['cycles']:11.0f} {t['time_us']:10.1f} {t['energy_uj']:10.3f} "
                 f"{t['fram_bytes_read']:10.0f} {t['fram_bytes_written']:10.0f}")
    if pred["uncalibrated"]:
        lines.append("* uncalibrated: fallback cycle table (sparsenest.analysis.cost.FALLBACK_TABLE)")
    if "lea_total" in pred:
        lines.append("LEA uJ: the layer's matrix product alone as dense vector-MAC calls on the LEA (one call per "
                     "row and output position) plus the DMA of weights from FRAM; im2col, requantisation and "
                     "pooling are not included")
    return "\n".join(lines)
