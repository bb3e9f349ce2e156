"""Completed inferences per hour on harvested energy with and without intermittent execution.

Per-level costs come from `make bench-intermittent` (build/bench/intermittent.json): MSP430 simulator
cycles per inference of the continuous build and of the intermittent build (auto granularity), turned
into time and energy with the platform constants (boards/msp430fr5994/board.toml: active power,
FRAM write energy per word; the simulator has no FRAM wait states and none are added for reads). The
harvest model (analysis/harvest.py) runs each on the shipped traces for capacitors of 47 uF .. 1 mF,
for fixed-densest, fixed-sparsest and energy-aware policies; with `units` (intermittent) a brown-out
keeps the committed units and the inference resumes after the next boot.

    sparsenest harvest-intermittent [--bench build/bench/intermittent.json]
        [--model lenet5-small] [--bundle build/lenet5-small.nest] [--hours H]
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from .harvest import (Capacitor, Costs, EnergyAwarePolicy, FixedPolicy, HarvestResult, load_trace, make_costs,
                      shipped_trace, simulate)

CAPS_UF = (47, 100, 220, 470, 1000)
TRACES = ("solar", "onoff", "constant")


def costs_from_bench(bench: dict, model: str, variant: str, accuracy: Sequence[float] | None = None,
                     platform=None) -> tuple[Costs, list[int] | None]:
    """(Costs, units per level or None) of one build variant ("continuous", "auto", ...) in the bench."""
    from .cost import load_platform, time_energy
    platform = platform or load_platform()
    try:
        v = next(x for x in bench["models"][model]["variants"] if x["variant"] == variant)
    except (KeyError, StopIteration):
        raise ValueError(f"no variant {variant!r} of model {model!r} in the bench results") from None
    per = sorted(v["per_level"].items(), key=lambda kv: int(kv[0]))
    levels = []
    for lv, d in per:
        te = time_energy(platform, d["cycles"], 0.0, d["fram_bytes_written"])
        levels.append({"energy_uj": te["energy_uj"], "time_us": te["time_us"],
                       "accuracy": float(accuracy[int(lv) - 1]) if accuracy else 0.0})
    costs = make_costs(levels, source=f"make bench-intermittent: {model} {variant}, simulator cycles x "
                                      f"{platform.name} constants")
    units = [int(v["intermittent"]["units"])] * len(levels) if v.get("intermittent") else None
    return costs, units


def compare(continuous: Costs, intermittent: Costs, units: list[int], traces=TRACES, caps_uf=CAPS_UF,
            t_end: float | None = None) -> list[dict]:
    """One row per (trace, capacitor, policy, mode): completed inferences per hour, expected accuracy."""
    L = continuous.n_levels
    rows = []
    for tname in traces:
        trace = shipped_trace(tname) if not Path(tname).suffix else load_trace(tname)
        for uf in caps_uf:
            cap = Capacitor(uf * 1e-6)
            for policy_name, make in (("fixed-densest", lambda: FixedPolicy(L)),
                                      ("fixed-sparsest", lambda: FixedPolicy(1)),
                                      ("energy-aware", lambda: EnergyAwarePolicy())):
                for mode, costs, u in (("continuous", continuous, None), ("intermittent", intermittent, units)):
                    r: HarvestResult = simulate(trace, cap, costs, make(), t_end=t_end, record=False, units=u)
                    rows.append({"trace": trace.name, "capacitor_uf": uf, "policy": policy_name, "mode": mode,
                                 "per_hour": r.total / (r.duration_s / 3600.0), "completed": r.completed,
                                 "expected_accuracy": r.expected_accuracy, "brownouts": r.n_brownouts,
                                 "lost_mj": r.energy_j["lost"] * 1e3, "balance_error_j": r.balance_error_j()})
    return rows


def format_rows(rows: list[dict]) -> str:
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    head = f"{'trace':<9}{'C uF':>6}" + "".join(f"{p + ' cont/int':>30}" for p in policies)
    lines = ["completed inferences per hour (expected accuracy), continuous / intermittent", head]
    keys = list(dict.fromkeys((r["trace"], r["capacitor_uf"]) for r in rows))
    by = {(r["trace"], r["capacitor_uf"], r["policy"], r["mode"]): r for r in rows}
    for t, uf in keys:
        cells = []
        for p in policies:
            c, i = by[(t, uf, p, "continuous")], by[(t, uf, p, "intermittent")]
            cells.append(f"{c['per_hour']:>8.0f} ({c['expected_accuracy']:.3f}) / {i['per_hour']:>6.0f} "
                         f"({i['expected_accuracy']:.3f})")
        lines.append(f"{t:<9}{uf:>6}" + "".join(f"{c:>30}" for c in cells))
    return "\n".join(lines)


def add_arguments(p) -> None:
    from .. import cli_args as arg
    p.add_argument("--bench", default="build/bench/intermittent.json",
                   help="results of `sparsenest bench intermittent`")
    p.add_argument("--model", default="lenet5-small", help="model of the bench results to compare")
    p.add_argument("--bundle", default="build/lenet5-small.nest",
                   help="bundle whose per-level float accuracy weights the counts (optional)")
    p.add_argument("--hours", type=arg.positive_float, default=None, help="cut the traces to this many hours")
    arg.add_output(p, default="build/bench/harvest_intermittent.json", help="JSON results")


def run(a) -> int:
    """Completed inferences per hour, continuous vs intermittent build, on each shipped trace."""
    bench_path = Path(a.bench)
    if not bench_path.exists():
        raise ValueError(f"{bench_path} not found: run `make bench-intermittent` first")
    bench = json.loads(bench_path.read_text())
    acc = None
    if Path(a.bundle).exists():
        from ..bundle import Bundle
        acc = [lv.get("float_accuracy") or 0.0 for lv in Bundle.load(a.bundle).levels]
    cont, _ = costs_from_bench(bench, a.model, "continuous", acc)
    inter, units = costs_from_bench(bench, a.model, "auto", acc)
    rows = compare(cont, inter, units, t_end=None if a.hours is None else a.hours * 3600)
    print(format_rows(rows))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"costs": {"continuous": cont.to_dict(), "intermittent": inter.to_dict()},
                               "units": units, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from ..cli import run_command
    return run_command("harvest-intermittent", argv)


if __name__ == "__main__":
    raise SystemExit(main())
