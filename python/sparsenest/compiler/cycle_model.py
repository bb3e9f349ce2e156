"""The cycle model of the CPU kernels and `time_energy` (core cycles -> cycles with FRAM wait states, time
and energy on a platform). The compiler's layout choice (choose.py, with the shipped calibration
cycle_model_cpu.json) reads them; analysis/cost.py builds its per-inference predictions on them and
re-exports them.

Cycles of one kernel invocation as a linear function of the operation counts that the
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
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..board import Platform

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
    "block": (20.0, 1.0, "measured ~20 cycles per product in the kernel harness (16x72 matrices, 10 windows per call)"),
    "pattern": (20.0, 1.0, "measured ~20 cycles per product in the kernel harness (16x72 matrices, 10 windows per call)"),
    "hbitmap": (27.0, 8.0, "measured 27-58 cycles per product in the kernel harness (stage-bit chains, by level)"),
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




def time_energy(platform: Platform, core_cycles: float, fram_read: float, fram_written: float) -> dict:
    """Cycles (core + FRAM wait states), time and energy (active power + FRAM word writes) of one run."""
    wait = platform.wait_cycles(core_cycles, fram_read, fram_written)
    cycles = core_cycles + wait
    t = cycles / platform.mclk_hz
    words = math.ceil(fram_written / 2) if fram_written > 0 else 0
    e = platform.active_power_w * t + words * platform.fram_write_energy_j
    return {"cycles_core": core_cycles, "cycles_wait": wait, "cycles": cycles, "time_us": t * 1e6,
            "energy_uj": e * 1e6}
