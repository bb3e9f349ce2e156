"""Completed inferences per hour and expected accuracy on harvested energy, with and without
intermittent execution: a table and a plot over traces, capacitors and policies.

Costs: two costs files of one model, the continuous build and the intermittent build (compile
--intermittent), each measured in our FR5994 simulator (analysis.harvest_measure; `make bench-harvest`
writes both). The harvest model (analysis.harvest_sim) runs each on the shipped traces for capacitors of
47 uF .. 1 mF and three policies: fixed-densest, fixed-sparsest and energy-aware. Intermittent mode: a
brown-out keeps the committed units and the inference resumes after the next boot (paying the boot and
the interrupted unit again), and energy-aware is ResumingEnergyPolicy (it never sleeps: a sparsest
inference spans power cycles); continuous mode: a brown-out loses the inference and energy-aware is
EnergyAwarePolicy (sleeps until the store can finish one).

    sparsenest harvest-intermittent --continuous C.json --intermittent I.json
        [--hours H] [-o build/bench/harvest]
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ..energy_store import Capacitor, load_trace, shipped_trace
from .harvest_costs import Costs, load_costs
from .harvest_policy import EnergyAwarePolicy, FixedPolicy, ResumingEnergyPolicy
from .harvest_sim import HarvestResult, simulate

CAPS_UF = (47, 100, 220, 470, 1000)
TRACES = ("solar", "onoff", "constant")
POLICIES = ("fixed-densest", "fixed-sparsest", "energy-aware")
MODES = ("continuous", "intermittent")


def make_policy(name: str, mode: str, n_levels: int):
    if name == "fixed-densest":
        return FixedPolicy(n_levels)
    if name == "fixed-sparsest":
        return FixedPolicy(1)
    return ResumingEnergyPolicy() if mode == "intermittent" else EnergyAwarePolicy()


def compare(continuous: Costs, intermittent: Costs, traces=TRACES, caps_uf=CAPS_UF,
            t_end: float | None = None) -> list[dict]:
    """One row per (trace, capacitor, policy, mode): completed inferences per hour, expected accuracy."""
    if intermittent.units is None or continuous.units is not None:
        raise ValueError("give the continuous build's costs (no units) and the intermittent build's (with units)")
    if continuous.n_levels != intermittent.n_levels:
        raise ValueError("the two builds have different numbers of levels")
    rows = []
    for tname in traces:
        trace = shipped_trace(tname) if not Path(tname).suffix else load_trace(tname)
        for uf in caps_uf:
            cap = Capacitor(uf * 1e-6)
            for policy in POLICIES:
                for mode, costs in (("continuous", continuous), ("intermittent", intermittent)):
                    r: HarvestResult = simulate(trace, cap, costs, make_policy(policy, mode, costs.n_levels),
                                                t_end=t_end, record=False)
                    rows.append({"trace": trace.name, "capacitor_uf": uf, "policy": policy, "mode": mode,
                                 "per_hour": r.total / (r.duration_s / 3600.0), "completed": r.completed,
                                 "expected_accuracy": r.expected_accuracy, "brownouts": r.n_brownouts,
                                 "lost_mj": r.energy_j["lost"] * 1e3, "balance_error_j": r.balance_error_j()})
    return rows


def _by(rows):
    return {(r["trace"], r["capacitor_uf"], r["policy"], r["mode"]): r for r in rows}


def format_rows(rows: list[dict]) -> str:
    """Markdown: one row per trace and capacitor, per policy `continuous -> intermittent` per hour
    (expected accuracy)."""
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    by = _by(rows)
    lines = ["completed inferences per hour (expected accuracy), continuous → intermittent", "",
             "| trace | C µF | " + " | ".join(policies) + " |", "|---|---:|" + "---|" * len(policies)]
    for t, uf in dict.fromkeys((r["trace"], r["capacitor_uf"]) for r in rows):
        cells = []
        for p in policies:
            c, i = by[(t, uf, p, "continuous")], by[(t, uf, p, "intermittent")]
            cells.append(f"{c['per_hour']:,.0f} ({c['expected_accuracy']:.3f}) → {i['per_hour']:,.0f} "
                         f"({i['expected_accuracy']:.3f})")
        lines.append(f"| {t} | {uf} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: str | Path) -> Path:
    """Per trace (columns): inferences per hour (top) and expected accuracy (bottom) against the
    capacitor; one colour per policy, solid intermittent, dashed continuous."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    traces = list(dict.fromkeys(r["trace"] for r in rows))
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    by = _by(rows)
    fig, axes = plt.subplots(2, len(traces), figsize=(4.2 * len(traces), 6.4), squeeze=False, sharex=True)
    colours = dict(zip(policies, ("tab:red", "tab:blue", "tab:green", "tab:purple")))
    for j, t in enumerate(traces):
        caps = sorted({r["capacitor_uf"] for r in rows if r["trace"] == t})
        for p in policies:
            for mode, style in (("continuous", "--"), ("intermittent", "-")):
                rs = [by[(t, c, p, mode)] for c in caps]
                kw = {"color": colours[p], "ls": style, "marker": "o", "ms": 3, "label": f"{p}, {mode}"}
                axes[0][j].plot(caps, [r["per_hour"] for r in rs], **kw)
                acc = [r["expected_accuracy"] if r["per_hour"] > 0 else float("nan") for r in rs]
                axes[1][j].plot(caps, acc, **kw)
        axes[0][j].set_title(f"trace {t}")
        axes[1][j].set_xscale("log")
        axes[1][j].set_xlabel("capacitor (µF)")
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("completed inferences / h")
    axes[1][0].set_ylabel("expected accuracy")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(rows: list[dict], continuous: Costs, intermittent: Costs, out: Path) -> dict[str, Path]:
    """harvest_intermittent.json / .md / .png in out."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "harvest_intermittent.json", "md": out / "harvest_intermittent.md",
             "png": out / "harvest_intermittent.png"}
    paths["json"].write_text(json.dumps({"costs": {"continuous": continuous.to_dict(),
                                                   "intermittent": intermittent.to_dict()}, "rows": rows},
                                        indent=1) + "\n")
    paths["md"].write_text(format_rows(rows) + f"\n\ncosts: {continuous.source}; {intermittent.source}\n")
    plot(rows, paths["png"])
    return paths


def add_arguments(p) -> None:
    from .. import cli_args as arg
    p.add_argument("--continuous", required=True, help="costs JSON of the continuous build")
    p.add_argument("--intermittent", required=True, help="costs JSON of the intermittent build (with units)")
    p.add_argument("--hours", type=arg.positive_float, default=None, help="cut the traces to this many hours")
    arg.add_output(p, default="build/bench/harvest", help="output folder")


def run(a) -> int:
    """Completed inferences per hour and expected accuracy, continuous vs intermittent build."""
    cont, inter = load_costs(a.continuous), load_costs(a.intermittent)
    rows = compare(cont, inter, t_end=None if a.hours is None else a.hours * 3600)
    print(format_rows(rows))
    for path in write(rows, cont, inter, Path(a.out)).values():
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from ..cli import run_command
    return run_command("harvest-intermittent", argv)


if __name__ == "__main__":
    raise SystemExit(main())
