"""Codegen, placement of weights in far memory: matrices streamed tile by tile from upper FRAM.

A far matrix's arrays live in upper FRAM (SN_FRAM_FAR); the generated code copies one tile of
consecutive rows at a time into an SRAM buffer with sn_far_read (DMA on the MSP430FR5994) and runs the
format kernel on it. `place_far` picks the matrices: "auto" moves the heaviest-per-call matrices out
until lower FRAM fits, a list names them, "none" keeps all in lower FRAM.

Staged builds (far "auto"): first the masters of staged arrays (`place_staged_masters`: read only by
switches), then, while lower FRAM still overflows, whole staged matrices (`place_staged_far`): the tiles
stream the working copy, which lives in upper FRAM too and which switches fill by DMA to its far address.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import formats
from .codegen_lower import CodegenError
from .planner import PlanError, Target

FAR_TILE_BYTES = 1024     # default SRAM tile for weights streamed from far memory
# Lower-FRAM code generated per streamed matrix (its tile loop in sn_model_spmv), beyond the planner's
# fixed CODE_RESERVE_BYTES (runtime, kernels, board: 11.2-11.6 KB linked for LeNet-5-small, HAR-Net
# and SqueezeNext-CIFAR). Measured in the chip image's link map: sn_model_spmv is 2,684 bytes with
# SqueezeNext-CIFAR's 9 far matrices (60 bytes with none), about 290 bytes each; rounded up.
FAR_MATRIX_CODE_BYTES = 320


@dataclass
class FarTile:
    r0: int                   # first matrix row of the tile (acc offset)
    rows: int                 # matrix rows in the tile
    pieces: list[tuple[int, int, int]]   # per streamed array: (byte offset in the array, bytes, tile offset)


@dataclass
class FarPlan:
    arrays: list[str]         # streamed arrays (format array names), in tile-piece order
    tiles: list[FarTile]
    tile_bytes: int           # largest tile

    @property
    def bytes(self) -> int:
        return sum(p[1] for t in self.tiles for p in t.pieces)

    @property
    def table_bytes(self) -> int:
        """Lower FRAM of its tile table (model.c.j2 `<m>_tile_t`: r0, rows, then per array a 32-bit
        offset and 16-bit length and destination): 3.3 KB for full LeNet-5's fc1 in 1 KB tiles."""
        return len(self.tiles) * (4 + 8 * len(self.arrays))


def far_rows(enc: formats.EncodedLayer) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """Per array, the byte range [start[r], end[r]) of each segment row, for the arrays a row tile
    must carry; arrays absent from the result are global (read whole by every row: pattern tables).
    None when the format cannot be cut into row tiles (rows, cols: one segment row)."""
    if not enc.segments:
        return None
    L = enc.n_levels
    seg_rows = next(iter(enc.segments.values())).shape[0]
    if seg_rows < 2:
        return None
    out = {}
    idx = np.arange(seg_rows, dtype=np.int64)
    for name, a in enc.arrays.items():
        isz = a.dtype.itemsize
        if name in enc.segments:
            sg = enc.segments[name]
            start, end = sg[:, 0].astype(np.int64), sg[:, L].astype(np.int64)
        elif a.size == seg_rows * L:
            start, end = idx * L * isz, (idx + 1) * L * isz
        elif a.size == seg_rows:
            start, end = idx * isz, (idx + 1) * isz
        else:
            continue
        if start[0] != 0 or end[-1] != a.nbytes or np.any(start[1:] != end[:-1]):
            return None
        out[name] = (start, end)
    return out


def far_tiles(enc: formats.EncodedLayer, tile_bytes: int) -> FarPlan | None:
    """Cut a matrix into tiles of consecutive segment rows whose streamed bytes (each array's piece
    2-aligned in the tile buffer) fit tile_bytes; a single row larger than that gets a tile of its own
    (the plan's tile_bytes says how large the buffer must be)."""
    rows = far_rows(enc)
    if rows is None:
        return None
    names = list(rows)
    seg_rows = len(next(iter(rows.values()))[0])
    br = int(dict(enc.c_fields).get("block_rows", 1)) if enc.format == "block" else 1

    def size(s0: int, s1: int) -> int:  # tile bytes of segment rows [s0, s1)
        return sum((int(rows[n][1][s1 - 1] - rows[n][0][s0]) + 1) // 2 * 2 for n in names)

    tiles, s0, biggest = [], 0, 0
    while s0 < seg_rows:
        s1 = s0 + 1
        while s1 < seg_rows and size(s0, s1 + 1) <= tile_bytes:
            s1 += 1
        pieces, off = [], 0
        for n in names:
            a, b = int(rows[n][0][s0]), int(rows[n][1][s1 - 1])
            pieces.append((a, b - a, off))
            off += (b - a + 1) // 2 * 2
        r0 = s0 * br
        tiles.append(FarTile(r0, min(enc.rows, s1 * br) - r0, pieces))
        biggest = max(biggest, off)
        s0 = s1
    return FarPlan(names, tiles, biggest)


def place_far(target: Target, far, tile_bytes: int, matrices: list,
               layer_fram: list[tuple[str, int]], fixed: int, fram_arena: int) -> dict[int, FarPlan]:
    """Matrix id -> tile plan for the matrices placed in far memory (see generate's `far`)."""
    if far is None:
        far = "auto" if target.upper_fram_bytes > 0 else "none"
    plans: dict[int, FarPlan] = {}
    if isinstance(far, str) and far == "none":
        return plans
    if isinstance(far, str) and far == "auto":
        total = fixed + sum(b for _, b in layer_fram) + fram_arena
        if total <= target.fram_bytes:
            return plans
        # staged matrices move only after their masters (place_staged_far): their working copies are
        # what a level computes with
        _move_until_fits(target, [m for m in matrices if not m.staged], tile_bytes, total, plans)
    elif isinstance(far, (list, tuple, set)):
        known = {m.layer for m in matrices}
        for name in far:
            if name not in known:
                raise CodegenError(f"far: no conv/linear layer named {name!r} (layers: {', '.join(sorted(known))})")
        for m in matrices:
            if m.layer in far:
                p = far_tiles(m.enc, tile_bytes)
                if p is None:
                    raise CodegenError("cannot place in far memory: " + _no_tiles(m))
                plans[m.mid] = p
    else:
        raise CodegenError(f"far must be 'auto', 'none' or a list of layer names, not {far!r}")
    return plans


def _no_tiles(m) -> str:
    return (f"layer '{m.layer}': format {m.enc.format} has no row tiles (one list for the whole "
            f"matrix); choose a row format (csr16, rel8, rel4, bitmap, block, pattern, dense)")


def _near_bytes(m, p: FarPlan) -> int:
    """Lower-FRAM bytes a matrix frees when it streams: its arrays (and staged working copies) not
    already in upper FRAM."""
    arrs = [m.arrays[a] for a in p.arrays] + [m.work[a] for a in p.arrays if a in getattr(m, "work", {})]
    return sum(a.nbytes for a in arrs if a.section != "SN_FRAM_FAR")


def _move_until_fits(target: Target, matrices: list, tile_bytes: int, total: int, plans: dict,
                     tables: bool = False) -> int:
    """Stream matrices from far memory, the most bytes per tile-streaming call first (fully connected
    layers before convolutions), until lower FRAM fits; a move pays only when it frees more than the
    tile code (and, with `tables`, the tile table) it adds. Returns the new lower-FRAM total."""
    def cost(p: FarPlan) -> int:
        return FAR_MATRIX_CODE_BYTES + (p.table_bytes if tables else 0)

    cands = [(m, p) for m in matrices if (p := far_tiles(m.enc, tile_bytes)) is not None
             and _near_bytes(m, p) > cost(p)]
    cands.sort(key=lambda mp: (-_near_bytes(*mp) / mp[0].positions, mp[0].mid))
    for m, p in cands:
        if total <= target.fram_bytes:
            break
        plans[m.mid] = p
        total -= _near_bytes(m, p) - cost(p)
    return total


def check_upper(target: Target, used: int) -> None:
    """Everything placed in upper FRAM (streamed weights, staged masters and working copies) fits it."""
    if target.upper_fram_bytes and used > target.upper_fram_bytes:
        raise PlanError(f"model does not fit the {target.name} upper FRAM either: {used} bytes of weights "
                        f"placed there, {used - target.upper_fram_bytes} bytes over its "
                        f"{target.upper_fram_bytes} bytes")


def place_staged_far(target: Target, far, tile_bytes: int, matrices: list, layer_fram: list[tuple[str, int]],
                     fixed: int, fram_arena: int) -> dict[int, FarPlan]:
    """Staged builds whose working copies do not fit lower FRAM after their masters moved out
    (place_staged_masters): whole staged matrices stream from upper FRAM, working copy included (the
    tiles read the copy; switches fill it by DMA to its far address). Only with far "auto" (or unset)
    on a target with upper FRAM. Matrix id -> tile plan. `fixed` counts the tile tables of matrices
    already streamed, and each move here pays for its own (see FarPlan.table_bytes)."""
    if far is None:
        far = "auto" if target.upper_fram_bytes > 0 else "none"
    plans: dict[int, FarPlan] = {}
    if not (isinstance(far, str) and far == "auto") or not target.upper_fram_bytes:
        return plans
    total = fixed + sum(b for _, b in layer_fram) + fram_arena
    if total > target.fram_bytes:
        _move_until_fits(target, [m for m in matrices if m.staged and m.far is None], tile_bytes, total, plans,
                         tables=True)
    return plans


def place_staged_masters(target: Target, far, arrays: list, staged_list: list[dict],
                         layer_fram: list[tuple[str, int]], fixed: int, fram_arena: int) -> dict[str, int]:
    """Staged builds that overflow lower FRAM: move the masters of staged arrays (read only by level
    switches, which fill the near working copy from them by DMA) to far memory, the largest first,
    until lower FRAM fits. Marks each moved array (section, staged entry "far") and returns the bytes
    moved per layer. Only with far "auto" (or unset) on a target with upper FRAM."""
    if far is None:
        far = "auto" if target.upper_fram_bytes > 0 else "none"
    if not (isinstance(far, str) and far == "auto") or not target.upper_fram_bytes or not staged_list:
        return {}
    total = fixed + sum(b for _, b in layer_fram) + fram_arena
    by_name = {a.cname: a for a in arrays}
    moved: dict[str, int] = {}
    for s in sorted(staged_list, key=lambda s: (-by_name[s["master"]].nbytes, s["master"])):
        if total <= target.fram_bytes:
            break
        a = by_name[s["master"]]
        a.section = "SN_FRAM_FAR"
        a.comment += ", upper FRAM (read by level switches only, DMA into the working copy)"
        s["far"] = 1
        moved[a.layer] = moved.get(a.layer, 0) + a.nbytes
        total -= a.nbytes
    return moved
