"""C code generation: a quantized model -> model.c / model.h / model_meta.json (jinja2 templates).

The generated C is a table the runtime (runtime_c/src) executes: per layer a descriptor with fixed
buffer addresses (planner.py), the weights in the layer's nested sparse format (formats.py) in FRAM,
and one dispatch function that calls each matrix's format kernel by name. Output is deterministic:
the same quantized model and options give byte-identical files.

Convolutions (conv="auto"): a conv layer whose matrices are csr16 runs direct (no im2col): its column
indices are emitted as offsets into the layer's input (zero-padded once per call into a scratch copy
when the layer pads), and the runtime calls sn_conv_csr16 on up to `chunk` output positions at a
time. Same bytes as the im2col build (uint16 either way). conv="im2col" keeps the per-position patch.

Switching modes:
  resident  kernels read the master arrays; a switch writes the level selector word only.
  staged    every segmented array whose bytes differ between levels gets a working copy in
            SN_PERSISTENT memory with the master's layout; kernels read the working copy. The image
            holds the initial level's bytes in it (zeros beyond), and the runtime copies level deltas
            [seg[r][a], seg[r][b]) from the master when going denser. Arrays whose bytes all belong to
            level 1 (dense, metadata) are read from the master directly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from ..paths import TEMPLATES_DIR
from . import formats
from .c_text import c_comment, c_ident, c_string
from . import intermittent as imt
from .planner import LAYER_DESCRIPTOR_BYTES, Lowered, Plan, PlanError, Target, check_fram, lower, plan_memory
from .quantize import MATMUL_OPS, QModel, add_shift, avg_params

GENERATOR = "sparsenest.compiler.codegen v1"
FAR_TILE_BYTES = 1024     # default SRAM tile for weights streamed from far memory
DIRECT_ACC_BYTES = 1024   # a direct conv's accumulator: rows x chunk int32 (chunk >= 1 position)
DIRECT_FORMATS = ("csr16",)  # formats with a direct conv kernel (absolute indices: sn_conv_<format>)
CONV_MODES = ("auto", "im2col")
C_TYPES = {np.dtype(np.int16): "int16_t", np.dtype(np.uint16): "uint16_t", np.dtype(np.uint8): "uint8_t",
           np.dtype(np.int32): "int32_t", np.dtype(np.uint32): "uint32_t", np.dtype(np.int8): "int8_t"}
C_OP = {"conv": "SN_OP_CONV", "linear": "SN_OP_LINEAR", "maxpool": "SN_OP_MAXPOOL",
        "avgpool": "SN_OP_AVGPOOL", "gavgpool": "SN_OP_GAVGPOOL", "add": "SN_OP_ADD", "relu": "SN_OP_RELU"}
SWITCHING = ("resident", "staged")


class CodegenError(ValueError):
    """Options the code generator cannot honour (e.g. a format that cannot represent a layer)."""


@dataclass
class CArray:
    cname: str
    values: np.ndarray
    section: str              # SN_FRAM | SN_PERSISTENT
    const: bool
    layer: str
    kind: str                 # format | work | bias | segments
    part: str = ""            # values | indices | metadata (format arrays)
    comment: str = ""

    @property
    def ctype(self) -> str:
        return C_TYPES[self.values.dtype]

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)

    @property
    def asm_dir(self) -> str:
        """Assembler data directive of one element (far arrays are emitted as assembly data)."""
        return {1: ".byte", 2: ".short", 4: ".long"}[self.values.dtype.itemsize]

    @property
    def length(self) -> int:
        return max(int(self.values.size), 1)   # C has no empty arrays: an empty one is emitted as [1]

    def body(self) -> str:
        v = self.values.ravel()
        if v.size == 0:
            return "    0 /* empty */"
        per = 16 if v.dtype.itemsize >= 2 else 24
        return ",\n".join("    " + ", ".join(str(int(x)) for x in v[i:i + per])
                          for i in range(0, v.size, per))


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


@dataclass
class Matrix:
    mid: int
    cname: str                # struct variable
    enc: formats.EncodedLayer
    layer: str
    group: int
    fields: list[tuple[str, str]] = field(default_factory=list)   # (field, C expression)
    arrays: dict[str, CArray] = field(default_factory=dict)      # format array -> master CArray
    staged: bool = False      # some array has a staged working copy
    positions: int = 1        # kernel calls per inference (conv: output positions; direct: chunks)
    direct: bool = False      # direct conv: col_idx holds input offsets, dispatched by sn_model_conv
    far: FarPlan | None = None
    far_fields: list[tuple[str, int]] = field(default_factory=list)  # struct field -> streamed array index
    near_fields: list[tuple[str, str]] = field(default_factory=list) # the other fields (far matrices)

    @property
    def prefix(self) -> str:
        return self.cname[: -len("_matrix")]


def layer_format(fmt, name: str) -> str:
    if isinstance(fmt, str):
        return fmt
    return fmt.get(name, fmt.get("*", "auto"))


def encode_layer(qm: QModel, name: str, fmt, format_opts: dict | None = None) -> list[formats.EncodedLayer]:
    """The layer's weight as one EncodedLayer per group (rows of a group form one matrix)."""
    node, q = qm.node(name), qm.layers[name]
    groups = int(node.get("groups", 1) or 1)
    f = layer_format(fmt, name)
    opts = dict((format_opts or {}).get(name, {}))
    if node["op"] in ("conv1d", "conv2d") and (f in ("auto", "pattern")) and "kernel_size" not in opts:
        k = node["kernel"]
        opts["kernel_size"] = (1, k[0]) if len(k) == 1 else tuple(k)
    w, it = q.matrix()
    rows_g = q.rows // groups
    out = []
    for g in range(groups):
        sl = slice(g * rows_g, (g + 1) * rows_g)
        try:
            out.append(formats.encode(f, w[sl], it[sl], qm.n_levels, **opts))
        except formats.FormatError as e:
            raise formats.FormatError(f"layer '{name}'" + (f" group {g}" if groups > 1 else "") +
                                      f": {e}") from e
    return out


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


def _place_far(target: Target, far, tile_bytes: int, matrices: list[Matrix],
               layer_fram: list[tuple[str, int]], fixed: int, fram_arena: int) -> dict[int, FarPlan]:
    """Matrix id -> tile plan for the matrices placed in far memory (see generate's `far`)."""
    if far is None:
        far = "auto" if target.upper_fram_bytes > 0 else "none"
    plans: dict[int, FarPlan] = {}

    def plan_for(m: Matrix, why: list | None = None) -> FarPlan | None:
        if m.staged:
            if why is not None:
                why.append(f"layer '{m.layer}' has staged working copies (staged switching keeps weights "
                           f"in lower FRAM; use resident switching to stream weights from upper FRAM)")
            return None
        p = far_tiles(m.enc, tile_bytes)
        if p is None and why is not None:
            why.append(f"layer '{m.layer}': format {m.enc.format} has no row tiles (one list for the whole "
                       f"matrix); choose a row format (csr16, rel8, rel4, bitmap, block, pattern, dense)")
        return p

    def nbytes(m: Matrix, p: FarPlan) -> int:
        return sum(m.arrays[a].nbytes for a in p.arrays)

    if isinstance(far, str) and far == "none":
        return plans
    if isinstance(far, str) and far == "auto":
        total = fixed + sum(b for _, b in layer_fram) + fram_arena
        if total <= target.fram_bytes:
            return plans
        cands = [(m, p) for m in matrices if (p := plan_for(m)) is not None]
        # most bytes moved per tile-streaming call first (fully connected layers before convolutions)
        cands.sort(key=lambda mp: (-nbytes(*mp) / mp[0].positions, mp[0].mid))
        for m, p in cands:
            if total <= target.fram_bytes:
                break
            plans[m.mid] = p
            total -= nbytes(m, p)
    elif isinstance(far, (list, tuple, set)):
        known = {m.layer for m in matrices}
        for name in far:
            if name not in known:
                raise CodegenError(f"far: no conv/linear layer named {name!r} (layers: {', '.join(sorted(known))})")
        for m in matrices:
            if m.layer in far:
                why: list = []
                p = plan_for(m, why)
                if p is None:
                    raise CodegenError("cannot place in far memory: " + why[0])
                plans[m.mid] = p
    else:
        raise CodegenError(f"far must be 'auto', 'none' or a list of layer names, not {far!r}")
    used = sum(nbytes(m, plans[m.mid]) for m in matrices if m.mid in plans)
    if target.upper_fram_bytes and used > target.upper_fram_bytes:
        raise PlanError(f"model does not fit the {target.name} upper FRAM either: {used} bytes of weights "
                        f"streamed from it, {used - target.upper_fram_bytes} bytes over its "
                        f"{target.upper_fram_bytes} bytes")
    return plans


def _level_varying(seg: np.ndarray) -> bool:
    """True when some bytes of the array belong to a level above 1 (a staged switch copies them)."""
    return bool(np.any(seg[:, 1:] != seg[:, 1:2]))


def _work_initial(master: np.ndarray, seg: np.ndarray, level: int) -> np.ndarray:
    raw = master.view(np.uint8).copy()
    keep = np.zeros(raw.size, bool)
    for r in range(seg.shape[0]):
        keep[seg[r, 0]:seg[r, level]] = True
    raw[~keep] = 0
    return raw.view(master.dtype)


def _shape3(shape: list[int]) -> tuple[int, int, int]:
    if len(shape) == 1:
        return shape[0], 1, 1
    if len(shape) == 2:
        return shape[0], 1, shape[1]
    return shape[0], shape[1], shape[2]


def _spatial(node: dict, key: str, default: int) -> tuple[int, int]:
    v = node.get(key)
    if v is None:
        return default, default
    return (default if key != "kernel" else 1, v[0]) if len(v) == 1 else (v[0], v[1])


def _window(node: dict) -> dict:
    """k/s/p/d (h, w) of a conv or pool node; 1-D ops have h = 1 and no padding or dilation in h."""
    kh, kw = _spatial(node, "kernel", 1)
    sh, sw = _spatial(node, "stride", 1)
    ph, pw = _spatial(node, "padding", 0)
    dh, dw = _spatial(node, "dilation", 1) if node["op"].startswith("conv") else (1, 1)
    if node["op"].endswith("1d"):
        kh = sh = dh = 1
        ph = 0
    return dict(k_h=kh, k_w=kw, s_h=sh, s_w=sw, p_h=ph, p_w=pw, d_h=dh, d_w=dw)


def direct_conv(node: dict, encs: list, in_shape: list[int], out_shape: list[int]) -> dict | None:
    """How a conv layer runs direct, or None (im2col): `offsets` (column -> element offset of the
    input sample in the window read, uint16), `chunk` (output positions per kernel call) and
    `pad_bytes` (the zero-padded copy of one group's input; 0 when the layer does not pad)."""
    if not node["op"].startswith("conv") or any(e.format not in DIRECT_FORMATS for e in encs):
        return None
    w = _window(node)
    groups = int(node.get("groups", 1) or 1)
    in_c, in_h, in_w = _shape3(in_shape)
    cg = in_c // groups
    padded = bool(w["p_h"] or w["p_w"])
    xh, xw = in_h + 2 * w["p_h"], in_w + 2 * w["p_w"]
    c, ky, kx = np.unravel_index(np.arange(cg * w["k_h"] * w["k_w"]), (cg, w["k_h"], w["k_w"]))
    offsets = c * xh * xw + ky * w["d_h"] * xw + kx * w["d_w"]
    if int(offsets.max()) > 0xFFFF or cg * xh * xw > 0x7FFF:
        return None  # offsets must be uint16 and the window's input addressable with 16-bit pointers
    rows, out_w = out_shape[0] // groups, _shape3(out_shape)[2]
    chunk = max(1, min(out_w, DIRECT_ACC_BYTES // (4 * rows)))
    return {"offsets": offsets.astype(np.uint16), "chunk": chunk,
            "pad_bytes": 2 * cg * xh * xw if padded else 0}


def _direct_scratch(low: Lowered, directs: dict) -> None:
    """Direct convolutions need no patch, an accumulator per chunk of positions, and maybe a padded copy."""
    for st in low.steps:
        dc = directs.get(st.name)
        if dc is not None:
            st.scratch.pop("patch", None)
            st.scratch["acc"] *= dc["chunk"]
            if dc["pad_bytes"]:
                st.scratch["pad"] = dc["pad_bytes"]


def generate(qm: QModel, out_dir: str | Path, *, target: Target, fmt="auto", format_opts=None,
             switching: str = "resident", initial_level: int | None = None, name: str = "model",
             extra_meta: dict | None = None, far=None, far_tile_bytes: int = FAR_TILE_BYTES,
             conv: str = "auto", intermittent: bool = False, checkpoint: str = "auto") -> dict:
    """Write model.c, model.h and model_meta.json into out_dir; return the meta dict.

    intermittent: keep the input and all activations in FRAM, no in-place steps, and a progress
    record committed per unit of work (compiler/intermittent.py; checkpoint: "auto" | "layer" | "row").

    far: which matrices live in far memory (upper FRAM) and are streamed into an SRAM tile by
    sn_far_read: "auto" (default when target.upper_fram_bytes > 0: the fewest bytes-per-call-heavy
    matrices that make lower FRAM fit), "none" (default otherwise), or a list of layer names (also on
    the host target, where far reads are emulated). far_tile_bytes: the tile budget. conv: "auto" (direct
    where the format has a direct kernel) or "im2col" (see the module docstring)."""
    if switching not in SWITCHING:
        raise CodegenError(f"switching must be one of {SWITCHING}, not {switching!r}")
    if conv not in CONV_MODES:
        raise CodegenError(f"conv must be one of {CONV_MODES}, not {conv!r}")
    if checkpoint not in imt.CHECKPOINTS:
        raise CodegenError(f"checkpoint must be one of {imt.CHECKPOINTS}, not {checkpoint!r}")
    L = qm.n_levels
    if initial_level is None:
        initial_level = 1 if switching == "staged" else L
    if not 1 <= initial_level <= L:
        raise CodegenError(f"initial_level must be in 1..{L}")
    staged = switching == "staged"
    low: Lowered = lower(qm, in_place=not intermittent)
    encoded = {st.name: encode_layer(qm, st.name, fmt, format_opts) for st in low.steps
               if st.op in ("conv", "linear")}
    directs = {}
    for st in low.steps:
        dc = None if st.op != "conv" or conv == "im2col" else \
            direct_conv(st.node, encoded[st.name], low.shapes[st.inputs[0]], low.shapes[st.output])
        if dc is not None:
            directs[st.name] = dc
    _direct_scratch(low, directs)
    plan: Plan = plan_memory(low, target, tensors_in_fram=intermittent)

    arrays: list[CArray] = []
    matrices: list[Matrix] = []
    staged_list: list[dict] = []
    layers_meta: dict[str, dict] = {}
    layer_fram: list[tuple[str, int]] = []
    level_nnz = np.zeros(L, np.int64)
    layer_blocks = []     # per step: dict for the template (arrays of that layer + matrices)

    def buf(t: str) -> str:
        return _buf_expr(plan.tensors[t].tier, plan.tensors[t].offset)

    def _buf_expr(tier: str, off: int, ctype: str = "int16_t") -> str:
        arena = "sn_arena_sram" if tier == "sram" else "sn_arena_fram"
        return f"SN_AT({ctype}, {arena}, {off})"

    # FRAM outputs go through the board's write hook (sn_put batches) where something needs to see every
    # byte: the host board's write log and power-loss injection, and intermittent builds (a failed write
    # stops the unit). A continuous chip build stores them directly: the hook costs ~28 cycles a byte.
    hook_fram_outputs = target.name == "host" or intermittent
    descriptors = []
    taken_idents: set[str] = set()   # a layer name never becomes a runtime name (sn_*): l_ prefix
    for i, st in enumerate(low.steps, 1):
        node = st.node
        ident = c_ident(st.name, taken_idents)
        if ident.lower().startswith("sn_"):
            ident = c_ident("l_" + ident, taken_idents)
        block_arrays: list[CArray] = []
        block_mats: list[Matrix] = []
        fram_bytes = LAYER_DESCRIPTOR_BYTES
        pad_p = plan.scratch.get((i, "pad"))
        d = {"op": C_OP[st.op], "relu": int(st.relu),   # out_fram: SN_OUT_FRAM | SN_PAD_FRAM flags
             "out_fram": hook_fram_outputs * (int(plan.tensors[st.output].tier == "fram")
                                              | (2 if pad_p and pad_p.tier == "fram" else 0)),
             "groups": 1, "matrix": 0, "in0": buf(st.inputs[0]),
             "in1": buf(st.inputs[1]) if len(st.inputs) > 1 else "0", "out": buf(st.output),
             "shift0": 0, "shift1": 0, "mul": 1, "bias": "0", "patch": "0", "acc": "0", "chunk": 0,
             "pad": "0"}
        in_c, in_h, in_w = _shape3(low.shapes[st.inputs[0]])
        out_c, out_h, out_w = _shape3(low.shapes[st.output])
        d.update(in_c=in_c, in_h=in_h, in_w=in_w, out_c=out_c, out_h=out_h, out_w=out_w)
        comment = f"{st.name}: {node['op']}"
        win = dict(k_h=1, k_w=1, s_h=1, s_w=1, p_h=0, p_w=0, d_h=1, d_w=1)
        if st.op in ("conv", "maxpool", "avgpool"):
            win = _window(node)
            comment += (f" k{win['k_h']}x{win['k_w']} s{win['s_h']}x{win['s_w']} p{win['p_h']}x{win['p_w']}"
                        + (f" d{win['d_h']}x{win['d_w']}" if (win["d_h"], win["d_w"]) != (1, 1) else ""))
        d.update(win)
        dc = directs.get(st.name)
        if dc is not None:
            d["chunk"] = dc["chunk"]
            if dc["pad_bytes"]:
                pp = plan.scratch[(i, "pad")]
                d["pad"] = _buf_expr(pp.tier, pp.offset)
            comment += f", direct ({dc['chunk']} positions per call" + \
                (f", padded copy in {plan.scratch[(i, 'pad')].tier.upper()})" if dc["pad_bytes"] else ")")
        comment += f", {low.shapes[st.inputs[0]]} -> {low.shapes[st.output]}"
        if st.relu:
            comment += " + relu (fused: " + ", ".join(st.fused) + ")"
        lm = {"step": i, "op": st.op, "graph_op": node["op"], "inputs": st.inputs, "output": st.output,
              "fused": st.fused, "output_exp": qm.exps[st.name]}
        if st.op in ("conv", "linear"):
            q = qm.layers[st.name]
            groups = int(node.get("groups", 1) or 1)
            encs = encoded[st.name]
            d.update(groups=groups, matrix=len(matrices), shift0=q.shift)
            bias = CArray(f"{ident}_bias", q.bias_q.astype(np.int32), "SN_FRAM", True, st.name, "bias",
                          comment=f"int32, exponent e_w + e_x = {q.e_w + qm.exps[node['inputs'][0]]}")
            block_arrays.append(bias)
            fram_bytes += bias.nbytes
            d["bias"] = bias.cname
            d["acc"] = _buf_expr("sram", plan.scratch[(i, "acc")].offset, "int32_t")
            if "patch" in st.scratch:
                d["patch"] = _buf_expr("sram", plan.scratch[(i, "patch")].offset)
            by_part = {"values": 0, "indices": 0, "metadata": 0}
            nnz = [0] * L
            for g, enc in enumerate(encs):
                prefix = ident if groups == 1 else f"{ident}_g{g}"
                positions = out_h * out_w if st.op == "conv" else 1
                if dc is not None:
                    positions = out_h * -(-out_w // dc["chunk"])
                mat = Matrix(len(matrices), f"{prefix}_matrix", enc, st.name, g, positions=positions,
                             direct=dc is not None)
                names = {}
                for an, a in enc.arrays.items():
                    if dc is not None and an == "col_idx":
                        a = dc["offsets"][a]  # columns -> input offsets (monotone: entry order kept)
                    master = CArray(f"{prefix}_{an}", a, "SN_FRAM", True, st.name, "format", enc.parts[an],
                                    comment=f"{enc.parts[an]}, {a.nbytes} bytes")
                    block_arrays.append(master)
                    fram_bytes += master.nbytes
                    names[an] = master.cname
                    mat.arrays[an] = master
                    seg = enc.segments.get(an)
                    if staged and seg is not None and _level_varying(seg):
                        work = CArray(f"{prefix}_{an}_work", _work_initial(a, seg, initial_level),
                                      "SN_PERSISTENT", False, st.name, "work", enc.parts[an],
                                      comment=f"staged working copy of {master.cname} (level "
                                              f"{initial_level} bytes at load)")
                        segdt = np.uint16 if seg.max() <= 0xFFFF else np.uint32
                        segarr = CArray(f"{prefix}_{an}_seg", seg.astype(segdt).ravel(), "SN_FRAM", True,
                                        st.name, "segments",
                                        comment=f"[{seg.shape[0]}][{L + 1}] byte offsets per row and level")
                        block_arrays += [work, segarr]
                        fram_bytes += work.nbytes + segarr.nbytes
                        names[an] = work.cname
                        mat.staged = True
                        staged_list.append({"master": master.cname, "work": work.cname,
                                            "seg": segarr.cname, "seg_u32": int(segdt == np.uint32),
                                            "rows": int(seg.shape[0]), "layer": st.name,
                                            "array": an, "segments": seg.tolist()})
                for fname, v in enc.c_fields:
                    mat.fields.append((fname, f"(const void *){names[v]}" if isinstance(v, str)
                                       else str(int(v))))
                matrices.append(mat)
                block_mats.append(mat)
                for k, b in enc.bytes_by_part.items():
                    by_part[k] += b
                for lv in range(1, L + 1):
                    nnz[lv - 1] += enc.nnz(lv)
            level_nnz += np.array(nnz)
            fmts = sorted({e.format for e in encs})
            comment += (f"; weights {q.rows}x{q.cols}" + (f" in {groups} groups" if groups > 1 else "") +
                        f", format {'/'.join(fmts)}, nnz per level " +
                        " / ".join(f"L{k + 1} {n}" for k, n in enumerate(nnz)) +
                        f" of {q.rows * q.cols}; bytes values {by_part['values']}, indices "
                        f"{by_part['indices']}, metadata {by_part['metadata']}; e_w {q.e_w}, shift {q.shift}")
            if st.op == "conv":
                lm.update(conv="direct" if dc else "im2col", chunk=dc["chunk"] if dc else 0)
            lm.update(format=fmts[0] if len(fmts) == 1 else fmts, groups=groups, rows=q.rows, cols=q.cols,
                      nnz=nnz, bytes_by_part=by_part, weight_bytes=sum(by_part.values()),
                      bias_bytes=bias.nbytes, e_w=q.e_w, shift=q.shift,
                      candidates=encs[0].candidates if groups == 1 else {},
                      kernel_counts={str(lv): {k: sum(e.kernel_counts(lv)[k] for e in encs)
                                               for k in ("macs", "weight_bytes_read")}
                                     for lv in range(1, L + 1)})
        elif st.op in ("avgpool", "gavgpool"):
            n = win["k_h"] * win["k_w"] if st.op == "avgpool" else in_h * in_w
            mul, sh_ = avg_params(int(n))
            d.update(mul=mul, shift0=sh_)
            comment += f"; window {n}: (sum * {mul}) >> {sh_}"
        elif st.op == "add":
            e_y = qm.exps[st.name]
            s0 = add_shift(qm.exps[node["inputs"][0]], e_y)
            s1 = add_shift(qm.exps[node["inputs"][1]], e_y)
            d.update(shift0=s0, shift1=s1)
            comment += f"; align shifts {s0}, {s1}"
        comment += f"; out exponent {qm.exps[st.name]}; output in {plan.tensors[st.output].tier.upper()}"
        d["comment"] = comment
        descriptors.append(d)
        arrays += block_arrays
        layer_blocks.append({"comment": comment, "arrays": block_arrays, "matrices": block_mats})
        layer_fram.append((st.name, fram_bytes))
        layers_meta[st.name] = lm

    # persistent selector + small tables
    fixed = 2 + 4 * L + 64 + 8 * len(staged_list)
    units = _intermittent_units(low, descriptors, layers_meta, checkpoint) if intermittent else None
    if units is not None:
        fixed += imt.table_bytes(len(low.steps))
    far_plans = _place_far(target, far, far_tile_bytes, matrices, layer_fram, fixed, plan.fram_bytes)
    far_bytes: dict[str, int] = {}
    for m in matrices:
        m.far = far_plans.get(m.mid)
        if m.far is None:
            continue
        for an in m.far.arrays:
            m.arrays[an].section = "SN_FRAM_FAR"
            m.arrays[an].comment += ", upper FRAM (streamed in tiles)"
            far_bytes[m.layer] = far_bytes.get(m.layer, 0) + m.arrays[an].nbytes
        fmap = dict(m.enc.c_fields)
        m.far_fields = [(f, m.far.arrays.index(v)) for f, v in m.enc.c_fields
                        if isinstance(v, str) and v in m.far.arrays]
        m.near_fields = [(f, e) for f, e in m.fields if not (isinstance(fmap[f], str) and fmap[f] in m.far.arrays)]
    layer_fram = [(n, b - far_bytes.get(n, 0)) for n, b in layer_fram]
    try:
        total_fram = check_fram(target, layer_fram, plan.fram_bytes, fixed,
                                spilled={t: p for t, p in plan.tensors.items() if p.tier == "fram"})
    except PlanError as e:
        if target.upper_fram_bytes and staged:
            raise PlanError(f"{e} Staged switching keeps every weight in lower FRAM (the working copies); "
                            f"resident switching can stream weights from upper FRAM.") from None
        raise
    upper_bytes = sum(far_bytes.values())
    tile_buffer = max((m.far.tile_bytes for m in matrices if m.far), default=0)

    const_bytes = sum(a.nbytes for a in arrays if a.const) + LAYER_DESCRIPTOR_BYTES * len(low.steps) + 4 * L
    work_bytes = sum(a.nbytes for a in arrays if a.kind == "work")
    kernels = sorted({m.enc.format for m in matrices})
    in_len = int(np.prod(qm.graph["input"]["shape"]))
    out_len = low.tensors[low.output]
    input_p, output_p = plan.tensors[low.input], plan.tensors[low.output]
    ctx = {
        "generator": GENERATOR, "name": name, "n_levels": L, "switching": switching,
        "initial_level": initial_level, "staged": staged, "layers": layer_blocks, "matrices": matrices,
        "descriptors": descriptors, "staged_arrays": staged_list, "level_nnz": [int(v) for v in level_nnz],
        "input_exp": qm.input_exp, "output_exp": qm.output_exp, "input_len": in_len, "output_len": out_len,
        "input_shape": [int(v) for v in qm.graph["input"]["shape"]],
        "input_buf": _buf_expr(input_p.tier, input_p.offset),
        "output_buf": _buf_expr(output_p.tier, output_p.offset),
        "sram_bytes": plan.sram_bytes, "fram_arena_bytes": plan.fram_bytes,
        "const_bytes": const_bytes, "work_bytes": work_bytes, "kernels": kernels, "target": target.name,
        "arrays": arrays, "level_word": f"0x{(initial_level | ((~initial_level & 0xFF) << 8)):04x}",
        "far_tile_bytes": tile_buffer, "upper_bytes": upper_bytes,
        "direct_convs": len(directs),
        "input_fram": int(input_p.tier == "fram"), "intermittent": units is not None,
        "unit_base": imt.unit_base(units) if units else [], "unit_pos": [u["unit_pos"] for u in units or []],
        "im2col_convs": sum(st.op == "conv" and st.name not in directs for st in low.steps),
    }
    symbols = [a.cname for a in arrays] + [m.cname for m in matrices]
    clash = sorted({c for c in symbols if symbols.count(c) > 1})
    if clash:
        raise CodegenError(f"layer names give the same C symbol {clash[0]!r}; rename the layers in the model "
                           "so that their names differ in more than punctuation")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    # Names from the bundle reach the C only through these (compiler/c_text.py): never as code.
    env.filters.update(c_comment=c_comment, c_string=c_string)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.h").write_text(env.get_template("model.h.j2").render(**ctx))
    (out_dir / "model.c").write_text(env.get_template("model.c.j2").render(**ctx))
    meta = {
        "format": "sparsenest-build", "version": 1, "generator": GENERATOR, "name": name,
        "target": target.name, "switching": switching, "initial_level": initial_level, "n_levels": L,
        "kernels": kernels, "input_shape": qm.graph["input"]["shape"], "input_len": in_len,
        "output_len": out_len, "n_steps": len(low.steps), "steps": [s.name for s in low.steps],
        "quantization": qm.summary(), "layers": layers_meta,
        "level_nnz": [int(v) for v in level_nnz],
        "arrays": {a.cname: {"layer": a.layer, "kind": a.kind, "part": a.part, "bytes": a.nbytes,
                             "ctype": a.ctype, "section": a.section} for a in arrays},
        "staged_arrays": staged_list,
        "memory": {"const_bytes": const_bytes, "work_bytes": work_bytes, "fram_total_estimate": total_fram,
                   "fram_budget": target.fram_bytes, "upper_fram_bytes": upper_bytes,
                   "far_tile_bytes": tile_buffer, **plan.summary()},
    }
    if upper_bytes:
        meta["far"] = {m.cname: {"layer": m.layer, "format": m.enc.format, "arrays": m.far.arrays,
                                 "tiles": len(m.far.tiles), "tile_bytes": m.far.tile_bytes,
                                 "bytes_per_call": m.far.bytes, "calls_per_inference": m.positions}
                       for m in matrices if m.far}
    if units is not None:
        meta["intermittent"] = _intermittent_meta(qm, target, units, plan, low, directs, checkpoint)
    if extra_meta:
        meta.update(extra_meta)
    (out_dir / "model_meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return meta


def _intermittent_units(low: Lowered, descriptors: list[dict], layers_meta: dict, checkpoint: str) -> list[dict]:
    """Units of work per step (compiler/intermittent.py), recorded in each layer's meta."""
    steps = []
    for st, d in zip(low.steps, descriptors):
        lm = layers_meta[st.name]
        positions = d["out_h"] * d["out_w"]
        macs = max(lm.get("nnz", [0]) or [0]) * (positions if st.op == "conv" else 1)
        steps.append({"name": st.name, "op": st.op, "groups": d["groups"], "positions": positions,
                      "row_positions": imt.conv_row_positions((d["out_c"], d["out_h"], d["out_w"]),
                                                              d["chunk"]), "macs": macs})
    try:
        units = imt.unit_plan(steps, checkpoint)
    except ValueError as e:
        raise CodegenError(str(e)) from None
    for st, u in zip(low.steps, units):
        layers_meta[st.name]["units"] = u
    return units


def _intermittent_meta(qm: QModel, target: Target, units: list[dict], plan: Plan, low: Lowered,
                       directs: dict, checkpoint: str) -> dict:
    """What intermittent execution costs in memory: the FRAM arena against the continuous plan's."""
    low_cont = lower(qm)
    _direct_scratch(low_cont, directs)
    cont = plan_memory(low_cont, target)
    extra = plan.fram_bytes - cont.fram_bytes + imt.table_bytes(len(low.steps))
    return {"checkpoint": checkpoint, "units": sum(u["units"] for u in units),
            "row_layers": [st.name for st, u in zip(low.steps, units) if u["granularity"] == "row"],
            "progress_bytes": imt.PROGRESS_BYTES, "table_bytes": imt.table_bytes(len(low.steps)),
            "fram_arena_bytes": plan.fram_bytes, "continuous_fram_arena_bytes": cont.fram_bytes,
            "continuous_sram_arena_bytes": cont.sram_bytes, "sram_arena_bytes": plan.sram_bytes,
            "extra_fram_bytes": extra}
