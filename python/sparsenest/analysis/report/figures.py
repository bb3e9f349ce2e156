"""The report's figures: one function per figure, each drawing from report.json's dict alone and writing
one PNG (matplotlib, Agg)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .breakeven import SEED_CPU_THRESHOLD, SEED_LEA_THRESHOLD


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> Path:
    """Every figure is laid out, written at the same resolution, and closed (no leaked figures)."""
    fig.tight_layout()
    caveat = getattr(fig, "sn_caveat", None)
    if caveat:
        fig.subplots_adjust(bottom=max(fig.subplotpars.bottom, 0.2))
        fig.text(0.01, 0.005, caveat, fontsize=7, color="dimgray", ha="left", va="bottom")
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def fig_accuracy(rep: dict, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sp = [100 * lv["sparsity"]["value"] for lv in rep["levels"]]
    for key, lab, mk, ls in (("float_accuracy", "float", "o", "-"), ("q15_accuracy", "Q15 (C build)", "s", "--")):
        acc = [lv[key]["value"] for lv in rep["levels"]]
        if all(a is not None for a in acc):
            ax.plot(sp, [100 * a for a in acc], marker=mk, ls=ls, ms=8 if mk == "o" else 5, label=lab)
    seed = rep.get("seed_comparison")
    if seed:
        ax.plot([100 * v for v in seed["seed"]["sparsity"]["value"]],
                [100 * v for v in seed["seed"]["accuracy"]["value"]], "k^--",
                label=f"seed report, Table 2 ({seed['seed']['model']})")
        _caveat(fig, seed["caveat"])
    dense = rep["dense_baseline"]["q15_accuracy"]["value"]
    if dense is not None:
        ax.axhline(100 * dense, color="gray", ls=":", lw=1, label="dense Q15 twin")
    for lv, x in zip(rep["levels"], sp):
        ax.annotate(f"L{lv['level']}", (x, 100 * (lv["q15_accuracy"]["value"] or lv["float_accuracy"]["value"] or 0)),
                    textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set_xlabel("sparsity (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{rep['model']['name']}: accuracy vs sparsity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def fig_latency_energy(rep: dict, path: Path) -> Path:
    plt = _plt()
    levels = rep["levels"]
    series = [("CPU, MPY32 (" + ("sim" if levels[0]["simulated"].get("mpy32") else "predicted") + ")",
               lambda lv: lv["cpu"]),
              ("CPU, C-helper multiply (" + ("sim" if levels[0]["simulated"].get("ref") else "predicted") + ")",
               lambda lv: lv["simulated"].get("ref") or lv["predicted"].get("ref")),
              ("LEA back-end estimate", lambda lv: lv["lea_estimate"])]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    x = np.arange(len(levels))
    w = 0.8 / len(series)
    for ax, key, unit in ((axes[0], "latency_ms", "latency per inference (ms)"),
                          (axes[1], "energy_uj", "energy per inference (µJ)")):
        for i, (lab, get) in enumerate(series):
            vals = [(get(lv) or {}).get(key, {}).get("value") for lv in levels]
            if all(v is None for v in vals):
                continue
            bars = ax.bar(x + (i - (len(series) - 1) / 2) * w, [v or 0 for v in vals], w, label=lab)
            for b, v in zip(bars, vals):
                if v:
                    ax.annotate(f"{v:.0f}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                                va="bottom", fontsize=7)
        seed = rep.get("seed_comparison")
        if key == "latency_ms" and seed:
            ax.plot(x, [1000 * v for v in seed["seed"]["latency_s"]["value"]], "k^--",
                    label=f"seed report, Table 2 ({seed['seed']['model']}) latency")
            _caveat(fig, seed["caveat"])
        ax.set_xticks(x, [f"L{lv['level']}\n{100 * lv['sparsity']['value']:.1f} %" for lv in levels])
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{rep['model']['name']} on the MSP430FR5994 @ {rep['platform']['mclk_hz']['value'] / 1e6:g} MHz",
                 fontsize=10)
    return _save(fig, path)


def fig_storage(rep: dict, path: Path) -> Path:
    plt = _plt()
    layers = [ly for ly in rep["layers"] if ly.get("bytes_by_part")]
    names = [ly["name"] for ly in layers]
    fig, ax = plt.subplots(figsize=(max(5.5, 1.1 * len(names) + 2), 4.2))
    bottom = np.zeros(len(layers))
    for part, col in (("values", "tab:blue"), ("indices", "tab:orange"), ("metadata", "tab:green")):
        v = np.array([ly["bytes_by_part"]["value"][part] for ly in layers], float)
        ax.bar(names, v, bottom=bottom, label=part, color=col)
        bottom += v
    for i, ly in enumerate(layers):
        ax.annotate(f"{ly['format']}\n{int(bottom[i]):,} B", (i, bottom[i]), ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0, 1.15 * max(bottom.max(), 1))
    ax.set_ylabel("bytes (all levels stored once)")
    ax.set_title("weight storage per layer: values / indices / metadata")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def fig_switch(rep: dict, path: Path) -> Path:
    plt = _plt()
    modes = [m for m in ("staged", "resident") if rep["switching"].get(m)]
    fig, axes = plt.subplots(1, len(modes), figsize=(5.2 * len(modes), 4.4), squeeze=False)
    vmax = max(max(max(r) for r in rep["switching"][m]["bytes"]["value"]) for m in modes) or 1
    for ax, mode in zip(axes[0], modes):
        s = rep["switching"][mode]
        b = np.array(s["bytes"]["value"], float)
        e = np.array(s["energy_uj"]["value"], float)
        L = len(b)
        im = ax.imshow(b, cmap="viridis", vmin=0, vmax=vmax)
        for i in range(L):
            for j in range(L):
                txt = "–" if i == j else f"{int(b[i, j]):,} B\n{e[i, j]:.3g} µJ"
                ax.text(j, i, txt, ha="center", va="center", fontsize=8,
                        color="white" if b[i, j] < 0.6 * vmax else "black")
        ax.set_xticks(range(L), [f"to L{j + 1}" for j in range(L)])
        ax.set_yticks(range(L), [f"from L{i + 1}" for i in range(L)])
        ax.set_title(f"{mode}: FRAM bytes written (host board)\nand energy (cost model)", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _save(fig, path)


def fig_breakeven(rep: dict, path: Path) -> Path:
    plt = _plt()
    curves = rep["breakeven"]["curves"]
    fmts = list(curves["formats"])
    fig, axes = plt.subplots(1, len(fmts), figsize=(6.2 * len(fmts), 4.6), squeeze=False)
    n = curves["row_len"]
    for ax, fmt in zip(axes[0], fmts):
        for tname, d in curves["formats"][fmt].items():
            cpu = [None if v is None else 100 * v for v in d["cpu"]]
            ax.plot(n, [np.nan if v is None else v for v in cpu], marker=".", label=f"CPU vs dense CPU: {tname}")
        lea_t = next((t for t in ("mpy32_calibrated", "mpy32_fallback") if t in curves["formats"][fmt]), None)
        if lea_t:
            lea = curves["formats"][fmt][lea_t]["lea"]
            ax.plot(n, [np.nan if v is None else 100 * v for v in lea], "k--", label=f"CPU vs dense on LEA: {lea_t}")
        if rep["breakeven"]["seed_claims"]:     # the seed's LeNet-5 thresholds, for LeNet-5-comparable models
            ax.axhline(100 * SEED_CPU_THRESHOLD, color="red", ls=":", lw=1)
            ax.text(n[0], 100 * SEED_CPU_THRESHOLD, " seed: 4 % (CPU)", color="red", fontsize=7, va="bottom")
            ax.axhline(100 * SEED_LEA_THRESHOLD, color="purple", ls=":", lw=1)
            ax.text(n[0], 100 * SEED_LEA_THRESHOLD, " seed: 20 % (with LEA)", color="purple", fontsize=7,
                    va="bottom")
        for ly in rep["layers"]:
            if ly.get("cols"):
                ax.axvline(ly["cols"], color="gray", lw=0.5, alpha=0.6)
                ax.text(ly["cols"], 97, ly["name"], rotation=90, fontsize=7, color="gray", va="top")
        ax.set_xscale("log")
        ax.set_ylim(0, 100)
        ax.set_xlabel("row length (vector length per output)")
        ax.set_ylabel("break-even sparsity (%) [cycles]")
        ax.set_title(f"{fmt}: sparsity above which the sparse CPU kernel is faster", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return _save(fig, path)


def fig_policies(rep: dict, path: Path) -> Path:
    plt = _plt()
    pol = rep["harvest"]["policies"]
    names = list(pol)
    L = len(rep["levels"])
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    bottom = np.zeros(len(names))
    for k in range(L):
        v = np.array([pol[p]["completed"][k] for p in names], float)
        ax.bar(names, v, bottom=bottom, label=f"L{k + 1}")
        bottom += v
    for i, p in enumerate(names):
        ax.annotate(f"{int(bottom[i]):,}\nE[acc] {100 * pol[p]['expected_accuracy']:.2f} %", (i, bottom[i]),
                    ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("inferences completed")
    ax.set_title(f"harvesting policies on trace '{rep['harvest']['trace']}'", fontsize=10)
    ax.legend(fontsize=8)
    ax.set_ylim(0, 1.2 * max(bottom.max(), 1))
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def _caveat(fig, text: str) -> None:
    """A line under a figure that puts our model beside published numbers: our training budget (_save
    draws it after the layout)."""
    fig.sn_caveat = text


def _level_energy(lv: dict) -> float | None:
    return lv["cpu"]["energy_uj"]["value"]


def fig_accuracy_energy(rep: dict, path: Path) -> Path:
    """The trade-off a harvesting device makes: Q15 accuracy against CPU energy per inference, every level,
    the LEA back-end estimate and the dense Q15 twin."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    lv = rep["levels"]
    acc = [100 * (x["q15_accuracy"]["value"] if x["q15_accuracy"]["value"] is not None
                  else (x["float_accuracy"]["value"] or 0)) for x in lv]
    ax.plot([_level_energy(x) for x in lv], acc, "o-", label="levels, CPU (MPY32)")
    for x, a in zip(lv, acc):
        ax.annotate(f"L{x['level']} ({100 * x['sparsity']['value']:.0f} %)", (_level_energy(x), a),
                    textcoords="offset points", xytext=(5, -10), fontsize=8)
    ax.plot([x["lea_estimate"]["energy_uj"]["value"] for x in lv], acc, "s--", mfc="none", alpha=0.7,
            label="levels, LEA back-end estimate")
    d = rep["dense_baseline"]
    if d["q15_accuracy"]["value"] is not None and d["energy_uj"]["value"]:
        ax.plot([d["energy_uj"]["value"]], [100 * d["q15_accuracy"]["value"]], "k*", ms=12, label="dense Q15 twin")
    ax.set_xlabel("energy per inference (µJ)")
    ax.set_ylabel("test accuracy, Q15 (%)")
    ax.set_title(f"{rep['model']['name']}: accuracy vs energy per inference", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def fig_layer_latency(rep: dict, path: Path) -> Path:
    """Per-layer latency at every level (simulated cycles where the model ran in the simulator, else the
    cost model's prediction), at the platform clock."""
    plt = _plt()
    mhz = rep["platform"]["mclk_hz"]["value"] / 1e6
    layers = [ly for ly in rep["layers"] if any(c["predicted_cycles"]["value"] for c in ly["cycles_per_level"])]
    L = rep["model"]["n_levels"]
    fig, ax = plt.subplots(figsize=(max(6.4, 0.9 * len(layers) + 2.5), 4.4))
    x = np.arange(len(layers))
    w = 0.8 / L
    kinds = set()
    for k in range(L):
        vals = []
        for ly in layers:
            c = ly["cycles_per_level"][k]
            sim = c["simulated_cycles"]["value"]
            kinds.add("simulated" if sim is not None else "predicted")
            vals.append((sim if sim is not None else c["predicted_cycles"]["value"]) / mhz / 1e3)
        ax.bar(x + (k - (L - 1) / 2) * w, vals, w, label=f"L{k + 1}")
    ax.set_xticks(x, [ly["name"] for ly in layers], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("latency (ms), core cycles at %g MHz" % mhz)
    ax.set_yscale("log")
    ax.set_title(f"per-layer latency ({' / '.join(sorted(kinds))}, MPY32 kernels)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _save(fig, path)


def fig_memory_map(rep: dict, path: Path) -> Path:
    """The MSP430FR5994's memory regions and what the build places in each (planner bytes)."""
    plt = _plt()
    mm = rep["memory_map"]
    regions = mm["regions"]
    fig, ax = plt.subplots(figsize=(9, 0.8 * len(regions) + 1.6))
    colours = iter(plt.get_cmap("tab10").colors)
    seen: dict[str, tuple] = {}
    for i, r in enumerate(regions):
        left = 0.0
        for part, nbytes in r["used"].items():
            if not nbytes:
                continue
            col = seen.setdefault(part, next(colours))
            frac = 100 * nbytes / r["bytes"]
            ax.barh(i, frac, left=left, color=col)
            left += frac
        ax.barh(i, 100 - min(left, 100), left=min(left, 100), color="whitesmoke", edgecolor="lightgray")
        ax.text(101, i, f"{r['used_total']:,} / {r['bytes']:,} B", va="center", fontsize=8)
    handles = {p: plt.Rectangle((0, 0), 1, 1, color=c) for p, c in seen.items()}
    ax.legend(handles.values(), handles.keys(), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18),
              ncol=min(4, max(1, len(handles))))
    ax.set_yticks(range(len(regions)), [f"{r['name']}\n0x{r['base']:05X}" for r in regions], fontsize=8)
    ax.set_xlim(0, 125)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.set_xlabel("% of the region (compiler's planner; firmware code, data and stack not counted)")
    ax.invert_yaxis()
    ax.set_title("MSP430FR5994 memory map: what the model uses", fontsize=10)
    return _save(fig, path)
