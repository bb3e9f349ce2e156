"""Codegen step 2, place: LayerPlans + the planner's arena offsets -> named buffers, C arrays, layer
descriptors and the far/FRAM placement of the weights.

Every activation and scratch area gets a name (`act_<tensor>`, `acc_<layer>`, `patch_<layer>`,
`pad_<layer>`) bound to its place in an arena (compiler/planner.py: buffers not live at the same step
share bytes). A layer descriptor lists, by name, the fields its op reads (OP_FIELDS); the runtime sees
zero in the others. Staged switching adds a working copy and a segment table per level-varying array.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import formats
from . import intermittent as imt
from . import lea_codegen
from .c_text import c_ident
from .codegen_far import FAR_MATRIX_CODE_BYTES, FarPlan, check_upper, place_far, place_staged_far, place_staged_masters
from .codegen_lower import CodegenError, LayerPlan, acc_only, direct_scratch
from .inplace import conv_in_place
from .planner import LAYER_DESCRIPTOR_BYTES, Lowered, Plan, PlanError, Target, check_fram, lower, plan_memory
from .quantize import QModel

C_TYPES = {np.dtype(np.int16): "int16_t", np.dtype(np.uint16): "uint16_t", np.dtype(np.uint8): "uint8_t",
           np.dtype(np.int32): "int32_t", np.dtype(np.uint32): "uint32_t", np.dtype(np.int8): "int8_t"}
C_OP = {"conv": "SN_OP_CONV", "linear": "SN_OP_LINEAR", "maxpool": "SN_OP_MAXPOOL",
        "avgpool": "SN_OP_AVGPOOL", "gavgpool": "SN_OP_GAVGPOOL", "add": "SN_OP_ADD", "relu": "SN_OP_RELU"}
ARENAS = {"sram": "sn_arena_sram", "fram": "sn_arena_fram"}
SHAPE_FIELDS = ("in_c", "in_h", "in_w", "out_c", "out_h", "out_w")
POOL_WINDOW = ("k_h", "k_w", "s_h", "s_w", "p_h", "p_w")
# The sn_layer fields each op reads (runtime_c/src/sn_op_*.c), one tuple per line of the descriptor.
OP_FIELDS = {
    "conv": (("op", "relu", "relu_max", "groups", "matrix", "out_fram"), ("in0", "out", "bias", "acc", "patch", "pad"),
             SHAPE_FIELDS, POOL_WINDOW + ("d_h", "d_w"), ("shift0", "chunk")),
    "linear": (("op", "relu", "relu_max", "matrix", "out_fram"), ("in0", "out", "bias", "acc"), SHAPE_FIELDS, ("shift0",)),
    "maxpool": (("op", "out_fram"), ("in0", "out"), SHAPE_FIELDS, POOL_WINDOW),
    "avgpool": (("op", "out_fram"), ("in0", "out"), SHAPE_FIELDS, POOL_WINDOW, ("mul", "shift0")),
    "gavgpool": (("op", "out_fram"), ("in0", "out"), SHAPE_FIELDS, ("mul", "shift0")),
    "add": (("op", "out_fram"), ("in0", "in1", "out"), SHAPE_FIELDS, ("shift0", "shift1")),
    "relu": (("op", "relu", "relu_max", "out_fram"), ("in0", "out"), SHAPE_FIELDS),
}
OPTIONAL_FIELDS = ("out_fram", "patch", "pad", "chunk", "relu_max")   # left out (zero) where they do not apply


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
    align: int = 0            # > 0: __attribute__((aligned(align))) (staged byte arrays: word copies)

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
class Buffer:
    """A named view of an arena: an activation or a layer's scratch."""
    name: str
    ctype: str
    tier: str                 # sram | fram
    offset: int               # bytes into the arena
    nbytes: int
    what: str                 # for the comment

    @property
    def expr(self) -> str:
        return f"(({self.ctype} *)(void *)((uint8_t *){ARENAS[self.tier]} + {self.offset}))"


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
    direct: bool = False      # direct conv (csr16: col_idx holds input byte offsets), dispatched by sn_model_conv
    conv_off: str = ""        # direct conv of a reconstructing format: its column -> byte offset table
    far: FarPlan | None = None
    far_fields: list[tuple[str, int]] = field(default_factory=list)  # struct field -> streamed array index
    near_fields: list[tuple[str, str]] = field(default_factory=list) # the other fields (far matrices)
    reads: dict[str, str] = field(default_factory=dict)  # format array -> the C array the kernel reads
    work: dict[str, CArray] = field(default_factory=dict)  # format array -> its staged working copy

    @property
    def prefix(self) -> str:
        return self.cname[: -len("_matrix")]


@dataclass
class Placed:
    """Everything the C and model_meta.json say, placed."""
    buffers: list[Buffer]
    tensor_buf: dict[str, Buffer]
    work_buf: dict[str, Buffer]       # SRAM working copies (intermittent builds)
    descriptors: list[dict]           # {"comment", "lines": [".field = C expression, ...,", ...]}
    layer_blocks: list[dict]          # per step: {"comment", "arrays", "matrices"} for the template
    arrays: list[CArray]
    matrices: list[Matrix]
    staged_list: list[dict]
    layers_meta: dict[str, dict]
    level_nnz: list[int]
    units: list[dict] | None
    total_fram: int
    upper_bytes: int
    tile_buffer: int
    const_bytes: int
    work_bytes: int


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


def name_buffers(low: Lowered, plan: Plan, layers: list[LayerPlan]) -> tuple[dict, dict, list[Buffer], dict]:
    """act_<tensor> for every tensor, <kind>_<layer> for every scratch area, in arena order, and
    work_<tensor> for the SRAM working copy of a tensor (intermittent builds: act_ is its FRAM home)."""
    taken: set[str] = set()
    tensors, working = {}, {}
    for t, p in plan.tensors.items():
        role = "the input" if t == low.input else f"output of {t}"
        tensors[t] = Buffer(c_ident(f"act_{t}", taken), "int16_t", p.tier, p.offset, p.nbytes,
                            f"{role} {low.shapes[t]}")
        if t in plan.working:
            w = plan.working[t]
            working[t] = Buffer(c_ident(f"work_{t}", taken), "int16_t", w.tier, w.offset, w.nbytes,
                                f"SRAM working copy of {tensors[t].name}")
    scratch = {}
    what = {"acc": "int32 accumulator", "patch": "im2col patch", "pad": "zero-padded input copy",
            "lea": "LEA RAM operands"}
    for lp in layers:
        for kind in ("patch", "acc", "pad", "lea"):
            p = plan.scratch.get((lp.index, kind))
            if p is not None:
                scratch[(lp.index, kind)] = Buffer(c_ident(f"{kind}_{lp.ident}", taken),
                                                   "int32_t" if kind == "acc" else "int16_t", p.tier,
                                                   p.offset, p.nbytes, f"{lp.name}: {what[kind]}")
    ordered = sorted([*tensors.values(), *scratch.values(), *working.values()],
                     key=lambda b: (b.tier != "sram", b.offset, b.name))
    return tensors, scratch, ordered, working


def _lea_array(lp, target: Target, suffix: str, values: np.ndarray, comment: str, out: list, far=False) -> str:
    """A LEA layer's array; far ones (read by address) go to upper FRAM where the target has it."""
    section = "SN_FRAM_FAR" if far and target.upper_fram_bytes else "SN_FRAM"
    a = CArray(f"{lp.ident}_{suffix}", values, section, True, lp.name, "lea", "far" if far else "",
               comment=comment + (", upper FRAM" if section == "SN_FRAM_FAR" else ""))
    out.append(a)
    return a.cname


def place(qm: QModel, low: Lowered, layers: list[LayerPlan], plan: Plan, target: Target, *, staged: bool,
          initial_level: int, far, far_tile_bytes: int, intermittent: bool, checkpoint: str) -> Placed:
    L = qm.n_levels
    tensor_buf, scratch_buf, buffers, work_buf = name_buffers(low, plan, layers)
    run_buf = {**tensor_buf, **work_buf}      # what the layers read and write
    arrays: list[CArray] = []
    matrices: list[Matrix] = []
    staged_list: list[dict] = []
    layer_fram: list[tuple[str, int]] = []
    level_nnz = np.zeros(L, np.int64)
    descriptors, layer_blocks = [], []
    hook_fram_outputs = hooks_fram_outputs(target, intermittent)
    for lp in layers:
        st = lp.step
        pad = scratch_buf.get((lp.index, "pad"))
        out = run_buf[st.output]
        # relu: SN_ACT_NONE / SN_ACT_RELU / SN_ACT_RELU_MAX (ReLU6: also clamped at relu_max)
        values = {"op": C_OP[st.op], "relu": 2 if st.relu_max is not None else int(st.relu), "groups": lp.groups,
                  "out_fram": hook_fram_outputs * (int(out.tier == "fram") | (2 if pad and pad.tier == "fram" else 0))
                  | (4 if acc_only(lp) else 0),
                  "in0": run_buf[st.inputs[0]].name, "out": out.name,
                  "shift0": lp.shift0, "shift1": lp.shift1, "mul": lp.mul,
                  **dict(zip(SHAPE_FIELDS, (*lp.in_chw, *lp.out_chw))), **lp.window}
        if st.relu_max is not None:
            values["relu_max"] = st.relu_max
        if len(st.inputs) > 1:
            values["in1"] = run_buf[st.inputs[1]].name
        for kind in ("patch", "acc", "pad", "lea"):
            if (lp.index, kind) in scratch_buf:
                values[kind] = scratch_buf[(lp.index, kind)].name
        if lp.direct:
            values["chunk"] = lp.direct["chunk"]
        comment = lp.summary + f"; output in {out.tier.upper()}"
        if pad is not None:
            comment += f", padded copy in {pad.tier.upper()}"
        block_arrays: list[CArray] = []
        block_mats: list[Matrix] = []
        fram_bytes = LAYER_DESCRIPTOR_BYTES
        if st.op in ("conv", "linear"):
            q = qm.layers[st.name]
            values["matrix"] = len(matrices)
            bias = CArray(f"{lp.ident}_bias", q.bias_q.astype(np.int32), "SN_FRAM", True, st.name, "bias",
                          comment=f"int32, exponent e_w + e_x = {q.e_w + qm.exps[st.node['inputs'][0]]}")
            block_arrays.append(bias)
            values["bias"] = bias.cname
            if lp.lea is not None:   # LEA engine: its own arrays, no sparse matrix
                def lea_array(sfx, v, c, far=False):
                    return _lea_array(lp, target, sfx, v, c, block_arrays, far)
                values.update(lea_codegen.arrays(lp, q, lea_array))
                values["lea_ram"] = scratch_buf[(lp.index, "lea")].name
            for g, enc in enumerate(lp.encs if lp.lea is None else []):
                mat = _place_matrix(lp, g, enc, len(matrices), staged, initial_level, L, block_arrays,
                                    staged_list)
                matrices.append(mat)
                block_mats.append(mat)
            level_nnz += np.array(lp.meta["nnz"])
            fram_bytes += sum(a.nbytes for a in block_arrays if a.section != "SN_FRAM_FAR")
            # the matrices' C structs are FRAM too (a depthwise layer has one per channel): at most
            # 2 bytes a field on the MSP430 (16-bit pointers)
            fram_bytes += sum(2 * len(m.fields) for m in block_mats)
        fields = lea_codegen.LEA_FIELDS[st.op] if lp.lea is not None else OP_FIELDS[st.op]
        missing = [f for line in fields for f in line if f not in values and f not in OPTIONAL_FIELDS]
        assert not missing, (st.name, missing)
        lines = [", ".join(f".{f} = {values[f]}" for f in line
                           if f in values and not (f == "out_fram" and not values[f])) for line in fields]
        descriptors.append({"comment": comment, "lines": [ln + "," for ln in lines if ln]})
        arrays += block_arrays
        layer_blocks.append({"comment": comment, "arrays": block_arrays, "matrices": block_mats,
                             "table": group_table(lp, block_mats)})
        layer_fram.append((st.name, fram_bytes))

    layers_meta = {lp.name: lp.meta for lp in layers}
    # persistent selector + small tables
    fixed = 2 + 4 * L + 64 + 8 * len(staged_list)
    units = intermittent_units(layers, checkpoint) if intermittent else None
    if units is not None:
        fixed += imt.table_bytes(len(low.steps))
    far_plans = place_far(target, far, far_tile_bytes, matrices, layer_fram, fixed, plan.fram_bytes)
    fixed += FAR_MATRIX_CODE_BYTES * len(far_plans)   # their tile code, beyond the planner's code reserve
    far_bytes: dict[str, int] = {}

    def moved_far(moved: dict[str, int]) -> None:
        nonlocal layer_fram
        layer_fram = [(n, b - moved.get(n, 0)) for n, b in layer_fram]
        for n, b in moved.items():
            far_bytes[n] = far_bytes.get(n, 0) + b

    moved_far(_stream_far(matrices, far_plans, staged_list))
    if staged:
        # staged builds count the tile tables too: full LeNet-5's fc1 table alone is 3.3 KB
        fixed += sum(p.table_bytes for p in far_plans.values())
        moved_far(place_staged_masters(target, far, arrays, staged_list, layer_fram, fixed, plan.fram_bytes))
        # working copies that still do not fit lower FRAM: their matrices stream from upper FRAM
        more = place_staged_far(target, far, far_tile_bytes, matrices, layer_fram, fixed, plan.fram_bytes)
        fixed += sum(FAR_MATRIX_CODE_BYTES + p.table_bytes for p in more.values())
        moved_far(_stream_far(matrices, more, staged_list))
    check_upper(target, sum(far_bytes.values()))
    try:
        total_fram = check_fram(target, layer_fram, plan.fram_bytes, fixed,
                                spilled={t: p for t, p in plan.tensors.items() if p.tier == "fram"})
    except PlanError as e:
        if target.upper_fram_bytes and staged and not (isinstance(far, str) and far == "auto" or far is None):
            raise PlanError(f"{e} With far={far!r} nothing else moves to upper FRAM; far 'auto' moves staged "
                            f"masters, then whole staged matrices (working copy included) there.") from None
        raise
    const_bytes = sum(a.nbytes for a in arrays if a.const) + LAYER_DESCRIPTOR_BYTES * len(low.steps) + 4 * L
    return Placed(buffers, tensor_buf, work_buf, descriptors, layer_blocks, arrays, matrices, staged_list, layers_meta,
                  [int(v) for v in level_nnz], units, total_fram, sum(far_bytes.values()),
                  max((m.far.tile_bytes for m in matrices if m.far), default=0), const_bytes,
                  sum(a.nbytes for a in arrays if a.kind == "work"))


def hooks_fram_outputs(target: Target, intermittent: bool) -> bool:
    """Whether ops write FRAM outputs through the board's hook (sn_layer.out_fram set): where something
    needs to see every byte, the host board's write log and power-loss injection. A chip build stores
    directly: the hook costs ~28 cycles a byte (one call per element where a convolution's outputs are
    not consecutive), and on the chip it is a plain copy that cannot report a failure (a power failure
    stops the CPU). Intermittent builds too: a unit is committed only after all its stores, so a failure
    mid-unit re-runs it either way (the host board's power-cut proof covers every byte)."""
    del intermittent
    return target.name == "host"


def _stream_far(matrices: list[Matrix], plans: dict[int, FarPlan], staged_list: list[dict]) -> dict[str, int]:
    """Mark the matrices of `plans` as streamed from upper FRAM: their arrays (a staged array's working
    copy, which the tiles read, and its master, which switches read) go there. Bytes moved per layer."""
    moved: dict[str, int] = {}
    by_work = {s["work"]: s for s in staged_list}
    for m in matrices:
        if m.mid not in plans:
            continue
        m.far = plans[m.mid]
        for an in m.far.arrays:
            for a, what in ((m.arrays[an], "streamed in tiles"), (m.work.get(an), "staged working copy, streamed")):
                if a is None or a.section == "SN_FRAM_FAR":
                    continue
                a.section = "SN_FRAM_FAR"
                a.comment += f", upper FRAM ({what})"
                moved[m.layer] = moved.get(m.layer, 0) + a.nbytes
            if an in m.work:   # switches fill it by DMA to its far address, from the far master
                by_work[m.work[an].cname].update(far=1, work_far=1)
        fmap = dict(m.enc.c_fields)
        m.far_fields = [(f, m.far.arrays.index(v)) for f, v in m.enc.c_fields
                        if isinstance(v, str) and v in m.far.arrays]
        m.near_fields = [(f, e) for f, e in m.fields if not (isinstance(fmap[f], str) and fmap[f] in m.far.arrays)]
    return moved


def group_table(lp: LayerPlan, mats: list[Matrix]) -> dict | None:
    """A grouped layer's matrices as one C array of structs, dispatched by one range test instead of a
    switch case and a struct variable per group: a depthwise layer has a group per channel, and per-group
    cases cost ~18 bytes of lower-FRAM code each (the DS-CNN's 256 groups: 4.6 KB of sn_model_conv).
    None when the groups differ in kind (format, far, offset table) or the layer has one group."""
    if len(mats) < 2 or any(m.far or m.conv_off for m in mats) or \
            len({(m.enc.format, m.enc.c_struct, m.direct) for m in mats}) != 1:
        return None
    for i, m in enumerate(mats):
        m.cname = f"{lp.ident}_matrices[{i}]"
    return {"cname": f"{lp.ident}_matrices", "first": mats[0].mid, "n": len(mats), "format": mats[0].enc.format,
            "c_struct": mats[0].enc.c_struct, "direct": mats[0].direct}


def _place_matrix(lp: LayerPlan, g: int, enc: formats.EncodedLayer, mid: int, staged: bool, initial_level: int,
                  L: int, block_arrays: list[CArray], staged_list: list[dict]) -> Matrix:
    """One group's matrix: its format arrays (master, and a working copy + segment table per array whose
    bytes vary by level under staged switching) and the struct fields pointing at them."""
    prefix = lp.ident if lp.groups == 1 else f"{lp.ident}_g{g}"
    mat = Matrix(mid, f"{prefix}_matrix", enc, lp.name, g, positions=lp.positions, direct=lp.direct is not None)
    names = {}
    for an, a in enc.arrays.items():
        if lp.direct and an == "col_idx":
            a = 2 * lp.direct["offsets"][a]  # columns -> input byte offsets (monotone: entry order kept)
        master = CArray(f"{prefix}_{an}", a, "SN_FRAM", True, lp.name, "format", enc.parts[an],
                        comment=f"{enc.parts[an]}, {a.nbytes} bytes")
        block_arrays.append(master)
        names[an] = master.cname
        mat.arrays[an] = master
        seg = enc.segments.get(an)
        if staged and seg is not None and _level_varying(seg):
            work = CArray(f"{prefix}_{an}_work", _work_initial(a, seg, initial_level), "SN_PERSISTENT", False,
                          lp.name, "work", enc.parts[an],
                          comment=f"staged working copy of {master.cname} (level {initial_level} bytes at load)")
            segdt = np.uint16 if seg.max() <= 0xFFFF else np.uint32
            segarr = CArray(f"{prefix}_{an}_seg", seg.astype(segdt).ravel(), "SN_FRAM", True, lp.name,
                            "segments", comment=f"[{seg.shape[0]}][{L + 1}] byte offsets per row and level")
            if a.dtype.itemsize == 1:
                # master and copy at the same parity, so a switch's copy moves words after at most
                # one leading byte (the board's memcpy), not bytes
                master.align = work.align = 2
            block_arrays += [work, segarr]
            names[an] = work.cname
            mat.work[an] = work
            mat.staged = True
            staged_list.append({"master": master.cname, "work": work.cname, "seg": segarr.cname, "far": 0, "work_far": 0,
                                "seg_u32": int(segdt == np.uint32), "rows": int(seg.shape[0]), "layer": lp.name,
                                "array": an, "segments": seg.tolist()})
    if lp.direct and formats.direct_needs_offset_table(enc.format):
        off = CArray(f"{prefix}_conv_off", (2 * lp.direct["offsets"]).astype(np.uint16), "SN_FRAM", True, lp.name,
                     "conv_offsets", comment="direct conv: byte offset of each column's input sample in the window")
        block_arrays.append(off)
        mat.conv_off = off.cname
    mat.reads = names
    for fname, v in enc.c_fields:
        mat.fields.append((fname, f"(const void *){names[v]}" if isinstance(v, str) else str(int(v))))
    return mat


def intermittent_units(layers: list[LayerPlan], checkpoint: str) -> list[dict]:
    """Units of work per step (compiler/intermittent.py), recorded in each layer's meta."""
    steps = []
    for lp in layers:
        positions = lp.out_chw[1] * lp.out_chw[2]
        macs = max(lp.meta.get("nnz", [0]) or [0]) * (positions if lp.op == "conv" else 1)
        steps.append({"name": lp.name, "op": "lea" if lp.lea is not None else lp.op, "groups": lp.groups,
                      "positions": positions,
                      "row_positions": imt.conv_row_positions(lp.out_chw, lp.direct["chunk"] if lp.direct else 0),
                      "macs": macs})
    try:
        units = imt.unit_plan(steps, checkpoint)
    except ValueError as e:
        raise CodegenError(str(e)) from None
    for lp, u in zip(layers, units):
        lp.meta["units"] = u
    return units


def intermittent_meta(qm: QModel, target: Target, units: list[dict], plan: Plan, low: Lowered,
                      layers: list[LayerPlan], checkpoint: str) -> dict:
    """What intermittent execution costs in memory: the FRAM arena against the continuous plan's."""
    low_cont = lower(qm)
    directs = {lp.name: lp.direct for lp in layers if lp.direct}
    direct_scratch(low_cont, directs)
    conv_in_place(low_cont, directs)   # what the continuous build does (inplace.py)
    cont = plan_memory(low_cont, target)
    extra = plan.fram_bytes - cont.fram_bytes + imt.table_bytes(len(low.steps))
    return {"checkpoint": checkpoint, "units": sum(u["units"] for u in units),
            "row_layers": [st.name for st, u in zip(low.steps, units) if u["granularity"] == "row"],
            "progress_bytes": imt.PROGRESS_BYTES, "table_bytes": imt.table_bytes(len(low.steps)),
            "fram_arena_bytes": plan.fram_bytes, "continuous_fram_arena_bytes": cont.fram_bytes,
            "continuous_sram_arena_bytes": cont.sram_bytes, "sram_arena_bytes": plan.sram_bytes,
            "extra_fram_bytes": extra}
