"""C code generation: a quantized model -> model.c / model.h / model_meta.json, in three steps:

  lower  (codegen_lower.py)  graph + quantized weights -> a LayerPlan per executed step (formats encoded)
  place  (codegen_place.py)  the planner's arena offsets -> named buffers, arrays, layer descriptors;
                             far placement of weights (codegen_far.py), FRAM budget check
  emit   (this module)       jinja2 templates -> model.c, model.h; model_meta.json

The generated C is a table the runtime (runtime_c/src) executes: per layer a descriptor naming its
buffers (views of the arenas at the offsets planner.py fixed), the weights in the layer's nested sparse
format (formats.py) in FRAM, and dispatch functions that call each matrix's format kernel by name.
Output is deterministic: the same quantized model and options give byte-identical files.

Convolutions (conv="auto"): a conv layer whose matrices' format has a direct kernel
(formats.supports_direct: all but dense, rows, cols) runs direct (no im2col): the kernel reads the
layer's input (zero-padded once per call into a scratch copy when the layer pads) on up to `chunk`
output positions at a time. csr16's column indices are emitted as input byte offsets (same bytes); the
others get a per-layer column -> byte offset table (`<layer>_conv_off`). conv="im2col" keeps the
per-position patch.

Switching modes:
  resident  kernels read the master arrays; a switch writes the level selector word only.
  staged    every segmented array whose bytes differ between levels gets a working copy in
            SN_PERSISTENT memory with the master's layout; kernels read the working copy. The image
            holds the initial level's bytes in it (zeros beyond), and the runtime copies level deltas
            [seg[r][a], seg[r][b]) from the master when going denser. Arrays whose bytes all belong to
            level 1 (dense, metadata) are read from the master directly.
"""
from __future__ import annotations
from __future__ import annotations

import json
from pathlib import Path

import jinja2

from ..paths import TEMPLATES_DIR
from . import intermittent as imt
from . import lea_codegen
from .c_text import c_comment, c_string
from .codegen_far import FAR_TILE_BYTES
from .codegen_lower import CONV_MODES, CodegenError, direct_paths, lower_layers, pool_paths
from .codegen_place import C_TYPES, Placed, hooks_fram_outputs, intermittent_meta, place  # noqa: F401 (C_TYPES: firmware's)
from .planner import Plan, Target, plan_memory
from .quantize import QModel

GENERATOR = "sparsenest.compiler.codegen v2"
SWITCHING = ("resident", "staged")
#: Levels the selector word's 5-bit fields can name (runtime_c/include/sn_runtime.h SN_SELECTOR_WORD).
MAX_LEVELS = 31
__all__ = ["CodegenError", "C_TYPES", "FAR_TILE_BYTES", "GENERATOR", "MAX_LEVELS", "SWITCHING", "CONV_MODES",
           "check_options", "generate", "selector_word"]


def selector_word(level: int, held: int) -> int:
    """The persistent level selector (twin of SN_SELECTOR_WORD): committed level in bits 0-4, the
    densest level the staged working copy holds in bits 8-12, check pattern 0b101 in 5-7 and 13-15."""
    return level | held << 8 | 0xA0A0


def generate(qm: QModel, out_dir: str | Path, *, target: Target, fmt="auto", format_opts=None,
             switching: str = "resident", initial_level: int | None = None, name: str = "model",
             extra_meta: dict | None = None, far=None, far_tile_bytes: int = FAR_TILE_BYTES,
             conv: str = "auto", intermittent: bool = False, checkpoint: str = "auto",
             engine: str = "cpu") -> dict:
    """Write model.c, model.h and model_meta.json into out_dir; return the meta dict.

    intermittent: keep the input and all activations in FRAM, no in-place steps, and a progress
    record committed per unit of work (compiler/intermittent.py; checkpoint: "auto" | "layer" | "row").

    far: which matrices live in far memory (upper FRAM) and are streamed into an SRAM tile by
    sn_far_read: "auto" (default when target.upper_fram_bytes > 0: the fewest bytes-per-call-heavy
    matrices that make lower FRAM fit), "none" (default otherwise), or a list of layer names (also on
    the host target, where far reads are emulated). far_tile_bytes: the tile budget. conv: "auto" (direct
    where the format has a direct kernel) or "im2col" (see the module docstring)."""
    check_options(switching=switching, conv=conv, checkpoint=checkpoint)
    L = qm.n_levels
    if initial_level is None:
        initial_level = 1 if switching == "staged" else L
    if not 1 <= initial_level <= L:
        raise CodegenError(f"initial_level must be in 1..{L}")
    if L > MAX_LEVELS:
        raise CodegenError(f"the model has {L} levels; the level selector word holds at most {MAX_LEVELS}: "
                           f"train or import it with fewer levels")
    # LEA convolutions write a whole output channel before reading the next input channel: never in place
    low, layers = lower_layers(qm, fmt=fmt, format_opts=format_opts, conv=conv, in_place=not intermittent,
                               conv_in_place=not lea_codegen.uses_lea(engine))
    lea_codegen.choose(qm, low, layers, engine, staged=switching == "staged", intermittent=intermittent)
    plan = plan_memory(low, target, tensors_in_fram=intermittent)
    placed = place(qm, low, layers, plan, target, staged=switching == "staged", initial_level=initial_level,
                   far=far, far_tile_bytes=far_tile_bytes, intermittent=intermittent, checkpoint=checkpoint)
    _check_symbols(placed)
    ctx = _context(qm, low, plan, placed, target, name=name, switching=switching, initial_level=initial_level)
    hooked = hooks_fram_outputs(target, intermittent)
    def out_hooked(lp):
        return hooked and plan.tensors[lp.step.output].tier == "fram"
    ctx.update(pool_paths(layers, out_hooked), **direct_paths(layers, out_hooked))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = _environment()
    (out_dir / "model.h").write_text(env.get_template("model.h.j2").render(**ctx))
    (out_dir / "model.c").write_text(env.get_template("model.c.j2").render(**ctx))
    meta = _meta(qm, low, plan, placed, target, name=name, switching=switching, initial_level=initial_level)
    if placed.units is not None:
        meta["intermittent"] = intermittent_meta(qm, target, placed.units, plan, low, layers, checkpoint)
    if extra_meta:
        meta.update(extra_meta)
    (out_dir / "model_meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return meta


def check_options(*, switching: str, conv: str, checkpoint: str) -> None:
    """CodegenError for an option value generate cannot honour (compile_bundle asks before quantizing)."""
    if switching not in SWITCHING:
        raise CodegenError(f"switching must be one of {SWITCHING}, not {switching!r}")
    modes = conv.values() if isinstance(conv, dict) else [conv]
    if any(m not in (*CONV_MODES, "direct") for m in modes):
        raise CodegenError(f"conv must be one of {CONV_MODES} (or per layer), not {conv!r}")
    if checkpoint not in imt.CHECKPOINTS:
        raise CodegenError(f"checkpoint must be one of {imt.CHECKPOINTS}, not {checkpoint!r}")


def _check_symbols(p: Placed) -> None:
    """Layer names reach C symbols through c_ident; two that differ only in punctuation would clash."""
    symbols = [a.cname for a in p.arrays] + [m.cname for m in p.matrices] + [b.name for b in p.buffers]
    clash = sorted({c for c in symbols if symbols.count(c) > 1})
    if clash:
        raise CodegenError(f"layer names give the same C symbol {clash[0]!r}; rename the layers in the model "
                           "so that their names differ in more than punctuation")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    # Names from the bundle reach the C only through these (compiler/c_text.py): never as code.
    env.filters.update(c_comment=c_comment, c_string=c_string)
    return env


def _context(qm: QModel, low, plan: Plan, p: Placed, target: Target, *, name: str, switching: str,
             initial_level: int) -> dict:
    """What the templates render."""
    units = p.units
    tables = [b["table"] for b in p.layer_blocks if b.get("table")]
    return {
        "tables": tables, "tabled": {t["first"] + i for t in tables for i in range(t["n"])},
        "generator": GENERATOR, "name": name, "n_levels": qm.n_levels, "switching": switching,
        "initial_level": initial_level, "staged": switching == "staged", "layers": p.layer_blocks,
        "matrices": p.matrices, "buffers": p.buffers, "descriptors": p.descriptors,
        "staged_arrays": p.staged_list, "level_nnz": p.level_nnz,
        "input_exp": qm.input_exp, "output_exp": qm.output_exp, "input_len": low.tensors[low.input],
        "output_len": low.tensors[low.output], "input_shape": [int(v) for v in qm.graph["input"]["shape"]],
        "input_buf": p.tensor_buf[low.input].name, "output_buf": p.tensor_buf[low.output].name,
        "sram_bytes": plan.sram_bytes, "fram_arena_bytes": plan.fram_bytes,
        "const_bytes": p.const_bytes, "work_bytes": p.work_bytes, "kernels": _kernels(p), "target": target.name,
        "arrays": p.arrays,
        "level_word": f"0x{selector_word(initial_level, initial_level if switching == 'staged' else qm.n_levels):04x}",
        "far_tile_bytes": p.tile_buffer, "upper_bytes": p.upper_bytes,
        "direct_convs": sum(lp_meta.get("conv") == "direct" for lp_meta in p.layers_meta.values()),
        "lea_layers": sum(m.get("engine") == "lea" for m in p.layers_meta.values()),
        "im2col_convs": sum(lp_meta.get("conv") == "im2col" for lp_meta in p.layers_meta.values()),
        "input_fram": int(plan.tensors[low.input].tier == "fram"), "intermittent": units is not None,
        "unit_base": imt.unit_base(units) if units else [], "unit_pos": [u["unit_pos"] for u in units or []],
        **_mirrors(low, plan, p),
    }


def _mirrors(low, plan: Plan, p: Placed) -> dict:
    """Intermittent builds: per tensor with an SRAM working copy, the copy, its FRAM home and the
    layers (0-based) it is live across: from its writer (0 for the input) to its last reader; per
    layer, 1 + the index of its output's mirror (0: the output has none)."""
    n = len(low.steps)
    names = [t for t in plan.tensors if t in p.work_buf]
    mirrors = [{"work": p.work_buf[t].name, "home": p.tensor_buf[t].name, "len": low.tensors[t],
                "first": max(plan.tensors[t].start - 1, 0), "last": min(plan.tensors[t].end, n) - 1}
               for t in names]
    out = [names.index(st.output) + 1 if st.output in names else 0 for st in low.steps]
    return {"mirrors": mirrors, "out_mirror": out}


def _kernels(p: Placed) -> list[str]:
    return sorted({m.enc.format for m in p.matrices})


def _meta(qm: QModel, low, plan: Plan, p: Placed, target: Target, *, name: str, switching: str,
          initial_level: int) -> dict:
    """model_meta.json (targets, the report and the benches read it)."""
    meta = {
        "format": "sparsenest-build", "version": 1, "generator": GENERATOR, "name": name,
        "target": target.name, "switching": switching, "initial_level": initial_level, "n_levels": qm.n_levels,
        "kernels": _kernels(p), "engine": sorted({m.get("engine", "cpu") for m in p.layers_meta.values()
                                                   if "engine" in m}), "input_shape": qm.graph["input"]["shape"], "input_len": low.tensors[low.input],
        "output_len": low.tensors[low.output], "n_steps": len(low.steps), "steps": [s.name for s in low.steps],
        "quantization": qm.summary(), "layers": p.layers_meta, "level_nnz": p.level_nnz,
        "arrays": {a.cname: {"layer": a.layer, "kind": a.kind, "part": a.part, "bytes": a.nbytes,
                             "ctype": a.ctype, "section": a.section} for a in p.arrays},
        "buffers": {b.name: {"tier": b.tier, "offset": b.offset, "bytes": b.nbytes} for b in p.buffers},
        "staged_arrays": p.staged_list,
        "memory": {"const_bytes": p.const_bytes, "work_bytes": p.work_bytes, "fram_total_estimate": p.total_fram,
                   "fram_budget": target.fram_bytes, "upper_fram_bytes": p.upper_bytes,
                   "far_tile_bytes": p.tile_buffer, **plan.summary()},
    }
    if p.upper_bytes:
        meta["far"] = {m.cname: {"layer": m.layer, "format": m.enc.format, "arrays": m.far.arrays,
                                 "tiles": len(m.far.tiles), "tile_bytes": m.far.tile_bytes,
                                 "bytes_per_call": m.far.bytes, "calls_per_inference": m.positions}
                       for m in p.matrices if m.far}
    return meta
