"""Block shapes of `block` pruning per layer, and the LEA-friendly choice (`"block_shape": "lea"`).

Blocks tile a weight's 2-D view (docs/architecture.md: Linear `out x in`, Conv `out x (in·kh·kw)` with
columns ordered (c, ky, kx)) from (0, 0); the last block row / column may be partial. `method_opts`
of the `block` method name the shape in one of three ways:

    {"block_shape": [4, 4]}                          every layer the same (the original option)
    {"block_shape": "lea"}                           each layer the LEA back-end's shape (below)
    {"block_shape": {"fc1": [8, 16], "*": "lea"}}    per layer (module name or weight key), "*" the rest

The LEA shapes (issue #16; the LEA engine is compiler/lea_plan.py): every LEA call costs about 616
cycles fixed against 1.5 per multiply-accumulate (boards/msp430fr5994/board.toml [lea]), so a layout
wins by making fewer, longer vectors.

* Convolutions: one kernel row, (1, kw). The LEA engine runs a convolution as one `msp_fir_q15` per kept
  kernel row (input channel c, kernel row ky) over a band of the padded input plane, with no im2col
  copy: the call count is the number of kept kernel rows, whatever coarser unit is pruned, so whole
  kernels (1, kh·kw) or filter groups would buy no call and cost accuracy. A row of kw taps is padded to
  an even tap count in LEA RAM (kw = 5 -> 6).
* Linear layers: LEA_LINEAR_BLOCK = (8, 16) rows x columns. The engine gathers a block row's kept
  column segments of x into LEA RAM once and runs one `msp_mac_q15` per weight row over them, so the
  calls per row do not depend on the block shape; what the shape buys is fewer gathered segments
  (16 columns = 32 bytes, even and 32-bit aligned) and one gather shared by 8 rows. Its segments also
  divide into the engine's smaller layouts (8, 4, 2 columns; 4, 2, 1 rows), so a layer whose width is
  no multiple of 16 (LeNet-5's fc2: 120) still runs in 8-column segments.

This module imports no torch: the compiler side reads a bundle's recorded shapes through
`bundle_format_opts` without loading the training stack.
"""
from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real

LEA = "lea"
#: the `block` method's shape when method_opts name none
DEFAULT_BLOCK_SHAPE = (4, 4)
#: (rows, columns) of a linear layer's LEA block; see the module docstring for why.
LEA_LINEAR_BLOCK = (8, 16)
#: compiler/formats.py stores block sides as uint8.
MAX_SIDE = 255
_HELP = ('give "block_shape" as [rows, cols] (e.g. [8, 16]), "lea", or {"LAYER": [rows, cols], "*": "lea"}')


class BlockShapeError(ValueError):
    """A block shape that is not two ints in 1..255, or a per-layer spec naming an unknown layer."""


def check_block_shape(shape, where: str = "block_shape") -> tuple[int, int]:
    """[rows, cols] -> (rows, cols), each an int in 1..255; BlockShapeError otherwise."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 2:
        raise BlockShapeError(f"{where} is {shape!r}, not two ints [rows, cols]; {_HELP}")
    out = []
    for v in shape:
        if isinstance(v, bool) or not isinstance(v, Real) or not isinstance(v, Integral) and not float(v).is_integer():
            raise BlockShapeError(f"{where} is {list(shape)!r}: sides must be whole numbers; {_HELP}")
        if not 1 <= int(v) <= MAX_SIDE:
            raise BlockShapeError(f"{where} is {list(shape)!r}: sides must be within 1..{MAX_SIDE}; {_HELP}")
        out.append(int(v))
    return out[0], out[1]


def lea_block_shape(weight_shape) -> tuple[int, int]:
    """The LEA-friendly block of a weight: (1, kw) kernel rows for Conv1d/Conv2d (3-D/4-D weights),
    LEA_LINEAR_BLOCK for Linear (2-D)."""
    dims = tuple(int(d) for d in weight_shape)
    if len(dims) >= 3:
        return 1, dims[-1]
    if len(dims) == 2:
        return LEA_LINEAR_BLOCK
    raise BlockShapeError(f"a weight of shape {list(dims)} has no block structure (needs a Linear or Conv "
                          "weight)")


def _layer_name(key: str) -> str:
    return key[:-len(".weight")] if key.endswith(".weight") else key


def resolve_block_shapes(weight_shapes: Mapping[str, tuple], spec) -> dict[str, tuple[int, int]]:
    """Weight key -> (rows, cols) of its blocks, for `spec` as in the module docstring (a per-layer
    dict may name a layer by module name `fc1` or weight key `fc1.weight`; layers it leaves out take
    its "*" entry, or "lea" without one). BlockShapeError names what is wrong."""
    keys = list(weight_shapes)
    if isinstance(spec, Mapping):
        names = {n for k in keys for n in (k, _layer_name(k))}
        unknown = [n for n in spec if n != "*" and n not in names]
        if unknown:
            raise BlockShapeError(f"block_shape names {unknown[0]!r}, not a prunable layer; layers: "
                                  f"{', '.join(_layer_name(k) for k in keys)}")
        per = {k: spec.get(k, spec.get(_layer_name(k), spec.get("*", LEA))) for k in keys}
    else:
        per = dict.fromkeys(keys, spec)
    return {k: lea_block_shape(weight_shapes[k]) if isinstance(s, str) and s == LEA else
            check_block_shape(s, f"block_shape of {_layer_name(k)}") for k, s in per.items()}


def check_spec(spec) -> None:
    """The form of a block_shape spec, before any layer is known (so a bad one fails before data loads):
    BlockShapeError unless it is [rows, cols], "lea" or a dict of those (layer names checked later)."""
    for name, s in (spec.items() if isinstance(spec, Mapping) else [("", spec)]):
        if not (isinstance(s, str) and s == LEA):
            check_block_shape(s, f"block_shape of {name}" if name else "block_shape")


def per_layer_opts(weight_shapes: Mapping[str, tuple], method_opts: dict | None) -> dict[str, dict]:
    """Weight key -> the options of the `block` method for that weight, block_shape resolved to a
    (rows, cols) tuple (DEFAULT_BLOCK_SHAPE when method_opts name none)."""
    opts = dict(method_opts or {})
    shapes = resolve_block_shapes(weight_shapes, opts.get("block_shape", DEFAULT_BLOCK_SHAPE))
    return {k: opts | {"block_shape": shapes[k]} for k in weight_shapes}


def bundle_format_opts(manifest: Mapping) -> dict[str, dict]:
    """compile_bundle's `format_opts` for a bundle's manifest (or Bundle): {node name: {"block_shape":
    (rows, cols)}} for every layer whose block shape training recorded under `prune.block_shapes`
    (weight key -> [rows, cols]); {} for bundles of other methods."""
    m = getattr(manifest, "manifest", manifest)
    recorded = (m.get("prune") or {}).get("block_shapes") or {}
    by_weight = {n.get("weight"): n["name"] for n in (m.get("graph") or {}).get("nodes", []) if n.get("weight")}
    return {by_weight[k]: {"block_shape": check_block_shape(v, f"prune.block_shapes of {k}")}
            for k, v in recorded.items() if k in by_weight}
