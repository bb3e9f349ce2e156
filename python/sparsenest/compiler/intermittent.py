"""Intermittent builds (compile --intermittent): how each step is cut into units of work, and what
keeping the inference's progress in FRAM costs.

The runtime (runtime_c/src/sn_intermittent.c) commits one 16-bit unit counter after each unit, so
after a power failure it re-runs at most the unit that was interrupted. A unit is a whole layer, or
for a convolution whose recomputation would be long ("row"), a block of output positions of one
group: one output row of a 2-D convolution; for a 1-D one (a single row) the positions of one
direct-kernel call (or ROW_POSITIONS_1D for im2col).

Granularity per layer (`checkpoint`): "layer" everywhere, "row" for every convolution, or "auto":
rows for convolutions whose densest level takes at least AUTO_ROW_MACS multiply-accumulates, the
rest per layer. A layer on the LEA engine (op "lea") is always one unit: its op rebuilds the LEA RAM
operands (SRAM, lost at a power failure) from its input on every call. A unit commit costs one hook call and 2 FRAM bytes, so rows cost little, but the
interrupted unit is the work a failure wastes: ~10k MACs is about 0.2 M MSP430 cycles on the
reference kernels (~12 ms at 16 MHz), a small part of what a 100 uF capacitor runs.
"""
from __future__ import annotations

CHECKPOINTS = ("auto", "layer", "row")
AUTO_ROW_MACS = 10_000
ROW_POSITIONS_1D = 16
PROGRESS_BYTES = 4          # state word + units-committed word (SN_PERSISTENT)
MAX_UNITS = 0xFFFF


def conv_row_positions(out_shape3: tuple[int, int, int], chunk: int) -> int:
    """Output positions per row unit: a 2-D output row, or for 1-D one direct call's chunk."""
    _, out_h, out_w = out_shape3
    if out_h > 1:
        return out_w
    return max(1, min(out_w, chunk or ROW_POSITIONS_1D))


def unit_plan(steps: list[dict], checkpoint: str) -> list[dict]:
    """steps: per executed step {"name", "op" ("conv", "lea", ...), "groups", "positions" (out_h * out_w), "row_positions",
    "macs" (densest level, all positions)}. Returns per step {"granularity", "unit_pos", "units"}
    (unit_pos 0: the whole layer is one unit)."""
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, not {checkpoint!r}")
    out = []
    for st in steps:
        rows = st["op"] == "conv" and st["positions"] > st["row_positions"] and (
            checkpoint == "row" or (checkpoint == "auto" and st["macs"] >= AUTO_ROW_MACS))
        if rows:
            per = st["row_positions"]
            units = st["groups"] * -(-st["positions"] // per)
            out.append({"granularity": "row", "unit_pos": per, "units": units})
        else:
            out.append({"granularity": "layer", "unit_pos": 0, "units": 1})
    total = sum(u["units"] for u in out)
    if total > MAX_UNITS:
        raise ValueError(f"{total} units of work do not fit the 16-bit progress counter; "
                         f"use --checkpoint layer")
    return out


def unit_base(units: list[dict]) -> list[int]:
    base = [0]
    for u in units:
        base.append(base[-1] + u["units"])
    return base


def table_bytes(n_steps: int) -> int:
    """FRAM of the unit tables (unit_base [n+1], unit_pos [n], uint16) and the progress record."""
    return 2 * (2 * n_steps + 1) + PROGRESS_BYTES
