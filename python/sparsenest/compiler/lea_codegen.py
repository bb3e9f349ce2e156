"""Codegen for the LEA engine (`compile --engine cpu|lea|auto`): which conv/linear steps run on LEA, their
scratch in LEA RAM, their descriptor fields and arrays. Layouts, costs: lea_plan.py; C: runtime_c/
kernels_lea/sn_lea_ops.c; golden: lea_golden.py (through qm.lea_layouts)."""
from __future__ import annotations

import numpy as np

from . import lea_plan
from .lea_plan import ENGINES, LeaError

#: sn_layer fields the LEA ops read (codegen_place.OP_FIELDS rows)
LEA_FIELDS = {"linear": (("op", "relu", "relu_max", "out_fram"), ("in0", "out", "bias", "lea_ram"),
                         ("lea_meta", "lea_idx", "lea_w"), ("in_c", "in_h", "in_w", "out_c", "out_h", "out_w"),
                         ("shift0",)),
              "conv": (("op", "relu", "relu_max", "out_fram"), ("in0", "out", "lea_k", "lea_ram"),
                       ("lea_meta", "lea_idx", "lea_w"), ("in_c", "in_h", "in_w", "out_c", "out_h", "out_w"),
                       ("shift0",))}
C_OPS = {"linear": "SN_OP_LEA_LINEAR", "conv": "SN_OP_LEA_CONV"}


def check_engine(engine) -> None:
    """engine: "cpu" | "lea" | "auto", or per layer {name: "cpu" | "lea"} (compiler/choose.py's choice)."""
    if isinstance(engine, dict):
        bad = {v for v in engine.values() if v not in ("cpu", "lea")}
        if bad:
            raise LeaError(f"per-layer engines must be cpu or lea, not {', '.join(sorted(bad))}")
    elif engine not in ENGINES:
        raise LeaError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")


def uses_lea(engine) -> bool:
    """Whether an engine setting may put a layer on LEA."""
    return any(v == "lea" for v in engine.values()) if isinstance(engine, dict) else engine != "cpu"


def _cpu_macs(lp, level: int) -> int:
    per = lp.meta["nnz"][level - 1]
    return per * (lp.out_chw[1] * lp.out_chw[2] if lp.op == "conv" else 1)


def choose(qm, low, layers, engine: str, *, staged: bool = False, intermittent: bool = False) -> dict:
    """Decide per conv/linear step; LEA steps get their layout (lp.lea), a single "lea" scratch area
    and meta["engine"]; every matmul step gets its predicted cycles per level for both engines.
    Sets qm.lea_layouts (the golden model follows it) and returns it. Intermittent builds run a LEA
    step as one unit of work (compiler/intermittent.py): the op rebuilds its LEA RAM operands from its
    input on every call, so re-running it after a power failure writes the same outputs."""
    del intermittent   # kept for callers: LEA steps need nothing else in intermittent builds
    check_engine(engine)
    L = qm.n_levels
    chosen = {}
    for lp in layers:
        if lp.op not in ("conv", "linear"):
            continue
        cpu = [lea_plan.cpu_layer_cycles(_cpu_macs(lp, lv)) for lv in range(1, L + 1)]
        lp.meta.update(engine="cpu", predicted_cycles={"cpu": cpu})
        want = engine.get(lp.name, "cpu") if isinstance(engine, dict) else engine   # a dict: choose.py decided
        if want == "cpu":
            continue
        st = lp.step
        lay, why = lea_plan.plan_layer(qm, lp.name, st.node, low.shapes[st.inputs[0]], low.shapes[st.output])
        if lay is None:
            lp.meta["lea_unsupported"] = why
            continue
        lea = [lea_plan.lea_layer_cost(lay, lv)["cycles"] for lv in range(1, L + 1)]
        lp.meta["predicted_cycles"]["lea"] = lea
        if want == "auto" and lea[-1] >= cpu[-1]:
            continue
        if staged:
            raise LeaError(f"layer '{lp.name}': the LEA engine supports resident builds only; "
                           "drop --switching staged or use --engine cpu")
        lp.lea, chosen[lp.name] = lay, lay
        lp.direct = None
        st.scratch.clear()
        st.scratch["lea"] = lay.scratch_bytes
        if lp.op == "conv":
            lp.meta["conv"] = "lea"
        lp.meta.update(engine="lea",
                       lea={"layout": lay.kind, "lea_ram_bytes": lay.scratch_bytes,
                            **({"block": [lay.bh, lay.bw]} if lay.kind == "linear" else {"band_rows": lay.band})})
        lp.summary += f"; LEA engine ({lay.kind} layout, {lay.scratch_bytes} bytes of LEA RAM)"
    qm.lea_layouts = chosen
    return chosen


def arrays(lp, q, make_array) -> dict:
    """The layer's LEA arrays through make_array(suffix, values, comment, far=False) -> C name; the descriptor
    values. The weights are read with sn_far_read through their far address (<name>_far), so they may
    live in upper FRAM."""
    lay = lp.lea
    if lay.kind == "linear":
        meta, idx, w = lay.meta_words(), lay.seg_words(), lay.weights
        what = f"{lay.bh}x{lay.bw} groups x segments"
    else:
        meta, idx, w = lay.meta_words(), lay.entry_words(), lay.coeffs.reshape(-1)
        what = "kernel rows as FIR filters"
    w = w if w.size else np.zeros(1, np.int16)
    extra = {}
    if lay.kind == "conv":
        extra["lea_k"] = make_array("lea_k", lea_plan.conv_requant(q.bias_q, q.shift),
                                    f"requantisation constants for shift {q.shift} (lea_plan.conv_requant)")
    return {**extra, "op": C_OPS[lay.kind],
            "lea_meta": make_array("lea_meta", meta, f"LEA layout ({what}): runtime_c/kernels_lea/sn_lea_ops.c"),
            "lea_idx": make_array("lea_idx", idx, "segment starts / kernel rows, level order"),
            "lea_w": "&" + make_array("lea_w", w.astype(np.int16), "weights in LEA order", far=True) + "_far"}


def describe(meta_layers: dict, n_levels: int) -> list[str]:
    """One line per conv/linear layer: engine and predicted cycles per level (compile prints it)."""
    lines = []
    for name, m in meta_layers.items():
        pc = m.get("predicted_cycles")
        if not pc:
            continue
        eng = m.get("engine", "cpu")
        cyc = " / ".join(f"{c:,.0f}" for c in pc[eng])
        other = "lea" if eng == "cpu" else "cpu"
        alt = (f"; {other}: " + " / ".join(f"{c:,.0f}" for c in pc[other])) if other in pc else ""
        why = f" (LEA: {m['lea_unsupported']})" if m.get("lea_unsupported") else ""
        lines.append(f"  {name}: {eng}, predicted cycles per level {cyc}{alt}{why}")
    return lines


def restore(qm, meta: dict) -> dict:
    """qm.lea_layouts of a build from its model_meta.json (the layers it ran on LEA), for a QModel rebuilt
    from the bundle (targets.firmware_model.load_qmodel): the golden model then follows the build."""
    g = qm.graph
    shapes = {g["input"]["name"]: list(g["input"]["shape"])}
    shapes.update({n["name"]: list(n["shape"]) for n in g["nodes"] if "shape" in n})
    chosen = {}
    for n in g["nodes"]:
        if (meta.get("layers", {}).get(n["name"]) or {}).get("engine") != "lea":
            continue
        lay, why = lea_plan.plan_layer(qm, n["name"], n, shapes.get(n["inputs"][0]), shapes.get(n["name"]))
        if lay is None:
            raise LeaError(f"layer '{n['name']}' ran on LEA in this build but cannot now ({why}); recompile")
        chosen[n["name"]] = lay
    qm.lea_layouts = chosen
    return chosen


def prepare(qm, engine: str, *, fmt="auto", format_opts=None, conv: str = "auto") -> dict:
    """The engine choice generate() will make, without writing anything: sets qm.lea_layouts so that an
    evaluation of the golden model before code generation already follows the LEA arithmetic."""
    from .codegen_lower import lower_layers
    if not uses_lea(engine):
        qm.lea_layouts = {}
        return {}
    low, layers = lower_layers(qm, fmt=fmt, format_opts=format_opts, conv=conv, conv_in_place=False)
    return choose(qm, low, layers, engine)
