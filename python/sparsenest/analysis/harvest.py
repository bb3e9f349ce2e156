"""Energy-harvesting simulation: a battery-free device that runs nested-sparse inferences from a capacitor.

Model
-----
* **Harvested power** ``P_h(t)``: a CSV trace ``time_s,power_w`` with linear interpolation between rows
  (a repeated time gives a step). It is the power delivered *into the store* (harvester efficiency
  folded in). Shipped traces: `traces/` (see its README; ``sparsenest harvest --make-traces``
  regenerates them bit for bit).
* **Store**: a capacitor C with stored energy E = ½CV², clamped at V_max (harvested power beyond that is
  *spilled*). The device turns on when V reaches V_on (after paying the boot energy) and browns out when
  V falls to V_off.
* **Load**: per-level inference costs (energy drawn from the store and duration; drawn at a constant
  rate while the inference runs, so a converter between store and MCU is assumed and its efficiency is
  folded into the costs), a from->to switch-cost matrix, LPM sleep power and boot energy
  (`Costs`; JSON schema in `COSTS_SCHEMA`).
* **Policy**: at every decision point (power-up, end of an inference, end of a sleep) the policy returns a
  level to run, or sleep (LPM) until the voltage reaches a wake threshold (a comparator interrupt).
  `FixedPolicy(k)` always runs level k (optionally with a guard that sleeps instead of starting an
  inference the store cannot finish); `EnergyAwarePolicy` picks the level from voltage thresholds with
  hysteresis and never starts an inference it cannot finish; `ResumingEnergyPolicy` (intermittent builds)
  runs the sparsest level instead of sleeping. Modules: harvest_costs, harvest_policy, harvest_sim,
  harvest_traces; costs measured in our FR5994 simulator: harvest_measure.
* **Brown-out** mid-inference: that inference's energy so far counts as *lost*, the device turns off.
  For an intermittent build (compile --intermittent; costs with `units`) only the interrupted unit's
  energy is lost: after the next boot the inference resumes at its own level (`--no-resume`: lost).
  A switch interrupted by a brown-out is lost too and the level stays the old one (the runtime's commit
  is atomic); the active level persists in FRAM across power loss.

The simulation is event-driven and exact for piecewise-linear traces: within a trace segment the net
power is linear in time, so E(t) is quadratic and brown-out / turn-on / saturation instants are roots
of a quadratic. A 24 h trace with tens of thousands of inferences runs in about a second.

Energy bookkeeping (all in joules, checked by the tests):
``harvested = inference + switch + sleep + boot + lost + unfinished + spilled + (E_end - E_start)``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from ..energy_store import TRACE_DIR, Capacitor, Trace, load_trace, shipped_trace
from .harvest_costs import (COSTS_SCHEMA, Costs, LevelCost, _example_costs, costs_from_predictions, load_costs,
                            make_costs)
from .harvest_policy import (SLEEP, EnergyAwarePolicy, FixedPolicy, ResumingEnergyPolicy, default_policies,
                             parse_policy)
from .harvest_sim import OFF, SLEEPING, HarvestResult, compare_policies, format_comparison, simulate, unit_bounds
from .harvest_traces import TRACE_PARAMS, make_traces

__all__ = [
    "Trace", "load_trace", "Capacitor", "LevelCost", "Costs", "make_costs", "load_costs",
    "costs_from_predictions", "COSTS_SCHEMA", "FixedPolicy", "EnergyAwarePolicy", "parse_policy",
    "HarvestResult", "simulate", "compare_policies", "format_comparison", "plot", "make_traces",
    "TRACE_DIR", "shipped_trace", "main", "SLEEP", "default_policies", "TRACE_PARAMS", "ResumingEnergyPolicy",
    "unit_bounds",
]

# ================================================================================================ plot

def plot(result: HarvestResult, path: str | Path, trace: Trace | None = None) -> Path:
    """Harvested power (if the trace is given), store voltage with V_on / V_off, and the active level
    (blank while off, thin while sleeping) over time. Hours on the x axis for traces over 2 h."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = result.duration_s > 7200
    scale, unit = (1 / 3600, "h") if hours else (1.0, "s")
    n = 3 if trace is not None else 2
    fig, axes = plt.subplots(n, 1, figsize=(11, 2.4 * n + 0.6), sharex=True,
                             gridspec_kw={"height_ratios": [1] * (n - 2) + [1.4, 1]})
    ax_i = 0
    if trace is not None:
        ax = axes[0]
        ax.plot(trace.time_s * scale, trace.power_w * 1e3, color="tab:orange", lw=0.8)
        ax.set_ylabel("harvested\npower (mW)")
        ax.grid(alpha=0.3)
        ax_i = 1
    t = result.series_t * scale
    ax = axes[ax_i]
    ax.plot(t, result.series_v, color="tab:blue", lw=0.6, drawstyle="default", rasterized=len(t) > 20000)
    cap = result.capacitor
    for v, lab, c in ((cap.v_on, "V_on", "green"), (cap.v_off, "V_off", "red"), (cap.v_max, "V_max", "gray")):
        ax.axhline(v, color=c, ls="--", lw=0.8)
        ax.text(t[0] if len(t) else 0, v, f" {lab}", color=c, va="bottom", fontsize=8)
    ax.set_ylabel("store voltage (V)")
    ax.grid(alpha=0.3)
    ax = axes[ax_i + 1]
    lvl = result.series_level.astype(float)
    on = result.series_state != OFF
    run = np.where(on, lvl, np.nan)
    ax.step(t, run, where="post", color="tab:purple", lw=1.0, label="active level")
    sl = np.where(result.series_state == SLEEPING, 0.5, np.nan)
    ax.step(t, sl, where="post", color="tab:gray", lw=2.0, label="sleep (LPM)")
    ax.set_yticks(range(1, len(result.completed) + 1))
    ax.set_ylim(0.2, len(result.completed) + 0.4)
    ax.set_ylabel("level\n(blank = off)")
    ax.set_xlabel(f"time ({unit})")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.suptitle(f"{result.policy}: {result.total} inferences "
                 f"({', '.join(f'L{k + 1} {c}' for k, c in enumerate(result.completed))}), "
                 f"E[acc] {result.expected_accuracy:.4f}, lost {result.lost_inferences}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ================================================================================================= CLI

def _plot_name(base: Path, policy: str) -> Path:
    return base.with_name(f"{base.stem}_{policy.replace(':', '_').replace(',', '_').replace('+', '_')}{base.suffix}")


def _output_paths(a, policies: list[str]) -> dict[str, Path]:
    """{policy: plot path} for the run, after checking that neither the plots nor --json overwrite an
    input (costs, trace) or an existing file without --force (safe_output.check_output_file)."""
    from ..safe_output import check_output_file
    inputs = [a.costs, a.trace if Path(a.trace).suffix else None]
    if a.json:
        check_output_file(a.json, inputs=inputs, force=a.force)
    base = a.plot if a.plot is not None else (str(Path(a.json).with_suffix(".png")) if a.json else "")
    if not base:
        return {}
    paths = {p: Path(base) if len(policies) == 1 else _plot_name(Path(base), p) for p in policies}
    for p in paths.values():
        check_output_file(p, inputs=inputs + [a.json], force=a.force)
    return paths


def add_arguments(ap) -> None:
    """`sparsenest harvest`'s options (the command runs run())."""
    from sparsenest import cli_args as arg
    ap.epilog = COSTS_SCHEMA
    ap.add_argument("--make-traces", action="store_true", help="regenerate the shipped traces and exit")
    arg.add_output(ap, help="with --make-traces: output folder (default: the package's)")
    ap.add_argument("--trace", default="solar", help="CSV time_s,power_w, or a shipped name: constant, onoff, solar")
    ap.add_argument("--capacitor", type=arg.positive_float, default=0.047, help="storage capacitor in farads")
    ap.add_argument("--v-on", type=arg.positive_float, default=3.3, help="supply turns on at this capacitor voltage")
    ap.add_argument("--v-off", type=arg.positive_float, default=1.9, help="supply turns off below this voltage")
    ap.add_argument("--v-max", type=arg.positive_float, default=3.6, help="capacitor voltage limit")
    ap.add_argument("--v-init", type=arg.nonneg_float, default=0.0, help="capacitor voltage at the start")
    ap.add_argument("--policy", default="energy",
                    help="fixed:K | fixed:K+guard | energy | energy:V1,...,VL | energy+resume[:V1,...] "
                         "(intermittent builds) | compare (default energy)")
    ap.add_argument("--hysteresis", type=arg.nonneg_float, default=0.05, help="volts")
    ap.add_argument("--margin", type=arg.positive_float, default=1.1,
                    help="energy-aware guard: stored energy >= margin x cost")
    ap.add_argument("--costs", type=arg.input_file, default=None, help="per-level costs JSON (schema below)")
    ap.add_argument("--demo", action="store_true", help="use illustrative LeNet-like costs instead of --costs")
    ap.add_argument("--no-resume", action="store_true",
                    help="costs of an intermittent build (with 'units'): a brown-out loses the inference anyway")
    ap.add_argument("--duration", type=arg.positive_float, default=None, help="simulate only the first N seconds")
    ap.add_argument("--plot", default=None,
                    help="plot path (default: beside --json, same name with .png; none without --json; '' for "
                         "none); compare: one per policy, named <plot>_<policy>.png")
    ap.add_argument("--json", default=None, help="write the result(s) as JSON")
    ap.add_argument("--force", action="store_true", help="replace existing --json / --plot files")


def run(a) -> int:
    """`sparsenest harvest`: simulate a policy (or compare policies) on a harvested-power trace."""
    if a.make_traces:
        for p in make_traces(a.out or TRACE_DIR):
            print(p)
        return 0
    if a.costs:
        costs = load_costs(a.costs)
    elif a.demo:
        costs = _example_costs()
    else:
        raise ValueError("--costs FILE is required (per-level costs JSON, see --help), or --demo for "
                         "illustrative numbers")
    if a.policy == "compare":
        policies = default_policies(costs.n_levels, resume=costs.units is not None and not a.no_resume,
                                    hysteresis_v=a.hysteresis, margin=a.margin)
    else:
        policies = [parse_policy(a.policy, hysteresis_v=a.hysteresis, margin=a.margin)]
    outputs = _output_paths(a, [p.name for p in policies])   # checked before the simulation runs
    trace = load_trace(a.trace)
    cap = Capacitor(a.capacitor, a.v_on, a.v_off, a.v_max, a.v_init)
    if a.policy == "compare":
        res = compare_policies(trace, cap, costs, policies, t_end=a.duration, resume=not a.no_resume)
    else:
        r = simulate(trace, cap, costs, policies[0], t_end=a.duration, resume=not a.no_resume)
        print(r.summary())
        res = {r.policy: r}
    if costs.source:
        print(f"costs: {costs.source}")
    if costs.units:
        print(f"intermittent build, {'/'.join(map(str, costs.units))} units of work per inference: "
              + ("a brown-out loses the inference (--no-resume)" if a.no_resume else
                 "an inference resumes after a brown-out, across power cycles"))
    for name, r in res.items():
        if name in outputs:
            print(f"plot: {plot(r, outputs[name], trace)}")
    if a.json:
        Path(a.json).write_text(json.dumps({k: r.to_dict() for k, r in res.items()}, indent=1) + "\n")
        print(f"json: {a.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from sparsenest.cli import run_command
    return run_command("harvest", argv)


if __name__ == "__main__":
    sys.exit(main())
