"""Pareto fronts of (accuracy, energy per inference) points: which levels no other level beats on both,
the hypervolume they dominate, and the front as a markdown table and a plot.

A point is a dict with at least "accuracy" (higher is better) and "energy_uj" (lower is better).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence


def pareto_front(points: Sequence[dict]) -> list[dict]:
    """The non-dominated points, cheapest first (so accuracy rises along the front). A point is dominated
    when another costs no more energy and is at least as accurate, and is strictly better in one."""
    ordered = sorted(points, key=lambda p: (p["energy_uj"], -p["accuracy"]))
    front, best = [], float("-inf")
    for p in ordered:
        if p["accuracy"] > best:
            front.append(p)
            best = p["accuracy"]
    return front


def hypervolume(front: Sequence[dict], ref_energy_uj: float, ref_accuracy: float = 0.0) -> float:
    """Area (µJ x accuracy) dominated by the front and bounded by the reference point (worse than every
    point counted: ref_energy_uj above their energy, ref_accuracy below their accuracy). Larger is better;
    two fronts are comparable only with the same reference point."""
    pts = pareto_front([p for p in front if p["energy_uj"] < ref_energy_uj and p["accuracy"] > ref_accuracy])
    area, prev_acc = 0.0, ref_accuracy
    for p in pts:   # each step adds the strip between the previous accuracy and this one
        area += (ref_energy_uj - p["energy_uj"]) * (p["accuracy"] - prev_acc)
        prev_acc = p["accuracy"]
    return area


def format_table(front: Sequence[dict], *, title: str = "") -> str:
    """Markdown table of front members (trial, level, sparsity, accuracies, energy, time, fit, bundle)."""
    lines = [title, ""] if title else []
    lines += ["| trial | level | sparsity % | Q15 test acc % | float val acc % | energy µJ | time ms | "
              "trial score | config | bundle |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for p in front:
        cfg = p.get("config", {})
        short = ", ".join(f"{k}={cfg[k]}" for k in ("method", "mode", "format", "epochs_dense",
                                                      "epochs_retrain") if k in cfg)
        val = p.get("val_accuracy")
        lines.append(f"| {p['trial']} | {p['level']} | {100 * p['sparsity']:.1f} | {100 * p['accuracy']:.2f} | "
                     f"{'' if val is None else f'{100 * val:.2f}'} | {p['energy_uj']:,.1f}"
                     f"{'*' if p.get('uncalibrated') else ''} | "
                     f"{p['time_us'] / 1e3:,.1f} | {p.get('score', 0):,.1f} | {short} | {p.get('bundle', '')} |")
    if any(p.get("uncalibrated") for p in front):
        lines += ["", "\\* some layers' cycles from the UNCALIBRATED fallback table (no simulator sample of their "
                  "kernel: run `make bench-mcu` or give --samples)"]
    return "\n".join(lines)


def plot(points: Sequence[dict], front: Sequence[dict], path: str | Path, *, title: str = "",
         others: dict[str, Sequence[dict]] | None = None) -> Path:
    """Every level as a grey dot, the front as a step line; `others` adds more fronts (name -> front)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.scatter([p["energy_uj"] for p in points], [100 * p["accuracy"] for p in points], s=12, c="0.7",
               label="all levels")
    fronts = {"front": front} | dict(others or {})
    for name, f in fronts.items():
        if f:
            ax.step([p["energy_uj"] for p in f], [100 * p["accuracy"] for p in f], where="post", marker="o",
                    ms=4, label=name)
    ax.set_xlabel("energy per inference (µJ, cost model)")
    ax.set_ylabel("Q15 test accuracy (%)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
