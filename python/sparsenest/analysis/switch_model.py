"""Time model of a level switch (runtime_c/src/sn_level.c), from a build's segment tables.

A switch to level b when the working copy holds level `held` (>= the committed level):
  b <= held, or a resident build: the selector word only, ``staged.select_cycles``;
  b > held: per segmented array and row the copy of [seg[r][held], seg[r][b]) through the board's
  FRAM write (memcpy), then the selector:
      select_cycles + stage_cycles + arrays x array_cycles + rows x row_cycles
      + copies x copy_cycles + words x word_cycles + odd bytes x byte_cycles
  where a copy is a row with bytes to copy, words the 16-bit words memcpy moves and odd bytes the
  leading/trailing single bytes (codegen aligns master and working copy alike, so a row's bytes start
  at the same parity in both and memcpy moves words after at most one leading byte). A master in
  upper FRAM (codegen_far.place_staged_masters) fills its rows by DMA instead:
      + far copies x far_copy_cycles + DMA transfers x far_transfer_cycles
  (one block per row; word transfers when the row's offset and length are even, else bytes). A working
  copy in upper FRAM too (a matrix streamed from there, codegen_far.place_staged_far) adds per row
  with bytes far_work_copy_cycles (sn_board_far_write's 32-bit address arithmetic and sn_far_copy call).

The constants are the platform's ``staged.*`` (boards/msp430fr5994/board.toml), fitted to our
simulator's cycles of sn_set_level on five-level LeNet-5-small builds by `fit` (`sparsenest bench
switch --fit`); `sparsenest bench switch` prints model vs simulator for every switch pair.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

#: The work terms of a switch, in the order of their platform constants.
TERMS = ("select", "stage", "arrays", "rows", "copies", "words", "odd_bytes", "far_copies", "far_transfers",
         "far_work_copies")
CONSTANTS = {"select": "staged.select_cycles", "stage": "staged.stage_cycles", "arrays": "staged.array_cycles",
             "rows": "staged.row_cycles", "copies": "staged.copy_cycles", "words": "staged.word_cycles",
             "odd_bytes": "staged.byte_cycles", "far_copies": "staged.far_copy_cycles",
             "far_transfers": "staged.far_transfer_cycles", "far_work_copies": "staged.far_work_copy_cycles"}

__all__ = ["TERMS", "CONSTANTS", "switch_work", "predict_staged_switch", "held_after", "switch_pairs", "fit"]


def held_after(held: int, b: int) -> int:
    """The densest level the working copy holds after a switch to b."""
    return max(held, b)


def switch_work(staged_arrays: Sequence[Mapping], held: int, b: int) -> dict[str, int]:
    """What sn_set_level does going to level b with a working copy holding `held`: counts of every
    term of the model, and `bytes` (bytes copied; the selector's 2 bytes not included)."""
    out = dict.fromkeys(TERMS, 0) | {"bytes": 0}
    out["select"] = 1
    if b <= held or not staged_arrays:
        return out
    out["stage"] = 1
    for s in staged_arrays:
        seg = np.asarray(s["segments"], dtype=np.int64)
        lo, hi = seg[:, held], seg[:, b]
        n = hi - lo
        copied = n > 0
        out["arrays"] += 1
        out["rows"] += int(seg.shape[0])
        out["bytes"] += int(n[copied].sum())
        if s.get("far"):
            # a master in upper FRAM: one DMA block per row (sn_far_read), word transfers when the
            # offset and the length are even, else byte transfers
            out["far_copies"] += int(copied.sum())
            if s.get("work_far"):
                out["far_work_copies"] += int(copied.sum())
            even = ((lo | n) & 1) == 0
            out["far_transfers"] += int(np.where(even, n // 2, n)[copied].sum())
            continue
        out["copies"] += int(copied.sum())
        lead = (lo & 1).astype(bool) & copied
        rest = n - lead
        out["words"] += int((rest[copied] // 2).sum())
        out["odd_bytes"] += int(lead.sum() + (rest[copied] % 2).sum())
    return out


def predict_staged_switch(staged_arrays: Sequence[Mapping], held: int, b: int, platform) -> dict:
    """Cycles (and the work behind them) of a switch to b with a copy holding `held`, at the platform's
    clock: {"cycles", "time_us", "bytes", "work"}."""
    w = switch_work(staged_arrays, held, b)
    cycles = float(sum(w[t] * platform[CONSTANTS[t]] for t in TERMS))
    return {"cycles": cycles, "time_us": cycles / platform.mclk_hz * 1e6, "bytes": w["bytes"], "work": w}


def switch_pairs(n_levels: int) -> list[tuple[int, int]]:
    """Every (from, to) pair, from a copy that holds exactly `from` (a freshly loaded image switched up
    to it): the switches that copy the most."""
    return [(a, b) for a in range(1, n_levels + 1) for b in range(1, n_levels + 1) if a != b]


def fit(switches: Sequence[Mapping]) -> dict[str, float]:
    """Platform constants from measured switches ({"work": switch_work(...), "cycles": simulated}):
    select_cycles the mean of the selector-only switches; the other terms by non-negative least
    squares on the copying ones, relative error weighted (each switch counts alike), with the
    per-switch stage term folded into the per-array one (they always occur together)."""
    from scipy.optimize import nnls
    sel = [float(s["cycles"]) for s in switches if not s["work"]["stage"]]
    ups = [s for s in switches if s["work"]["stage"]]
    if not sel or not ups:
        raise ValueError("fit needs selector-only and copying switches")
    select = float(np.mean(sel))
    terms = [t for t in TERMS if t not in ("select", "stage")]
    a = np.array([[s["work"][t] for t in terms] for s in ups], float)
    y = np.array([s["cycles"] - select for s in ups], float)
    w = 1.0 / np.array([s["cycles"] for s in ups], float)
    used = a.any(axis=0)
    coef = np.zeros(len(terms))
    coef[used], _ = nnls(a[:, used] * w[:, None], y * w)
    out = {CONSTANTS["select"]: round(select, 1), CONSTANTS["stage"]: 0.0}
    out.update({CONSTANTS[t]: round(float(c), 2) for t, c in zip(terms, coef)})
    return out
