"""The shipped harvest traces (analysis/traces/: constant, onoff, solar), generated deterministically."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..energy_store import TRACE_DIR, Trace

class _SplitMix64:
    """Tiny seeded generator (SplitMix64) in pure Python: its stream never changes with numpy versions,
    so the shipped traces regenerate bit for bit."""

    def __init__(self, seed: int):
        self.s = seed & 0xFFFFFFFFFFFFFFFF

    def next_u64(self) -> int:
        self.s = (self.s + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def uniform(self) -> float:
        return (self.next_u64() >> 11) / float(1 << 53)


#: Parameters of the shipped traces (the README repeats them).
TRACE_PARAMS = {
    "constant": {"power_w": 1.0e-3, "duration_s": 3600},
    "onoff": {"power_w": 8.0e-3, "period_s": 600, "on_s": 300, "duration_s": 3600},
    "solar": {"peak_w": 8.0e-3, "sunrise_h": 6.0, "sunset_h": 18.0, "step_s": 60, "duration_s": 86400,
              "seed": 20240601, "p_clear_to_cloudy": 0.05, "p_cloudy_to_clear": 0.15,
              "cloud_min": 0.2, "cloud_max": 0.6},
}


def _solar(p) -> Trace:
    rng = _SplitMix64(p["seed"])
    n = p["duration_s"] // p["step_s"]
    ts, ps = [], []
    cloudy, factor = False, 1.0
    for i in range(n + 1):
        t = i * p["step_s"]
        # cloud state: a two-state Markov chain advanced once per step (one uniform draw), and a new
        # attenuation drawn on entering a cloud (one more draw)
        u = rng.uniform()
        if cloudy and u < p["p_cloudy_to_clear"]:
            cloudy, factor = False, 1.0
        elif not cloudy and u < p["p_clear_to_cloudy"]:
            cloudy = True
            factor = p["cloud_min"] + (p["cloud_max"] - p["cloud_min"]) * rng.uniform()
        h = t / 3600.0
        day = (h - p["sunrise_h"]) / (p["sunset_h"] - p["sunrise_h"])
        sun = math.sin(math.pi * day) if 0.0 < day < 1.0 else 0.0
        ps.append(round(p["peak_w"] * sun * factor, 9))
        ts.append(t)
    return Trace(np.array(ts, float), np.array(ps), "solar")


def make_traces(out_dir: str | Path = TRACE_DIR) -> list[Path]:
    """Write constant.csv, onoff.csv and solar.csv (deterministic; see TRACE_PARAMS and traces/README.md)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    c = TRACE_PARAMS["constant"]
    const = Trace(np.array([0.0, c["duration_s"]]), np.array([c["power_w"]] * 2), "constant")
    o = TRACE_PARAMS["onoff"]
    ts, ps = [], []
    for start in range(0, o["duration_s"], o["period_s"]):
        ts += [start, start + o["on_s"], start + o["on_s"], start + o["period_s"]]
        ps += [o["power_w"], o["power_w"], 0.0, 0.0]
    onoff = Trace(np.array(ts, float), np.array(ps), "onoff")
    paths = [const.save(out / "constant.csv"), onoff.save(out / "onoff.csv"),
             _solar(TRACE_PARAMS["solar"]).save(out / "solar.csv")]
    return paths
