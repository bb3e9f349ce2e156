"""Storage analysis of nested sparse layers: bytes by part per format, index overhead, storage
break-even sparsity, all levels stored once vs each level stored alone vs dense, and a SONIC reference.

Byte counts come from the real encoders (`formats.encode`), so they are the bytes the C arrays take.
Weight *values* never change a byte count: a float weight is converted to int16 with a plain
power-of-two scale only so the encoders can run.

Break-even sparsity (per format, for a single level of the layer's matrix shape): the sparsity at and
above which the format is smaller than dense Q15 (2 bytes per weight). It is solved exactly on nnz with
the encoder's own byte formula under a model of the mask: unstructured formats (csr16, rel8, rel4, bitmap)
spread the nonzeros evenly over rows and evenly inside each row (this fixes rel8/rel4 padding and the
counts' uint8/uint16 width); block keeps whole blocks, interior blocks before edge blocks; rows / cols
keep whole rows / columns; pattern keeps whole kernels of the layer's typical pattern length with a
one-pattern table. `None` means the format is never smaller than dense for this shape.

Entropy bound of the nested level map: each weight is pruned or introduced at level 1..L, and with the
layer's proportions p_0..p_L of these L + 1 outcomes no lossless encoding that treats a layer's positions
alike (independent of where they are) can store the index in fewer than ``H(p) * positions / 8`` bytes,
H in bits. Every format's index + metadata bytes are reported against it (``vs_bound``); the model's
bound is the sum over layers. (A mask with structure, such as whole blocks or rows, can go below it.)

SONIC reference (Gobieski et al., ASPLOS'19): a 16-bit offset per stored nonzero, for the same nonzeros
stored once (the union of the levels): ``index_bytes = 2 * nnz``, ``total_bytes = 4 * nnz``. Our
"indices" part (column indices, deltas, bitmaps, block / row / column / kernel ids) is compared with its
index bytes; metadata (per-row counts, pattern tables) is reported separately.
"""
from __future__ import annotations

import numpy as np

from ..levels import level_mask
from . import formats as F

__all__ = ["analyze_layer", "analyze_layers", "analyze_bundle", "break_even_sparsity", "single_level_bytes",
           "level_map_bound", "sonic_reference", "format_table", "DEFAULT_FORMATS", "DEFAULT_BLOCK_SHAPES"]

DEFAULT_FORMATS = F.FORMATS
#: Block shapes the analysis tries (each representable one is reported as its own entry).
DEFAULT_BLOCK_SHAPES = ((1, 4), (4, 1), (2, 2), (4, 4), (1, 8), (8, 1))


# ---------------------------------------------------------------------------------- break-even model

def _even_padding(n, cols, max_delta):
    """Padding entries of a row of n nonzeros spread evenly over `cols` (positions floor(i*cols/n))."""
    if n == 0:
        return 0
    pos = (np.arange(n, dtype=np.int64) * cols) // n
    gaps = np.diff(np.concatenate([[0], pos]))
    return int(np.where(gaps > 0, (gaps - 1) // max_delta, 0).sum())


def _row_entries(fmt, cols):
    """entries[n] = stored entries (padding included) of an evenly spread row with n nonzeros."""
    n = np.arange(cols + 1, dtype=np.int64)
    if fmt not in ("rel8", "rel4"):
        return n
    max_delta = 255 if fmt == "rel8" else 15
    pad = np.zeros(cols + 1, np.int64)
    # gaps are at most ceil(cols / n): padding only where that exceeds max_delta
    for k in range(1, min(cols, cols // max_delta + 2) + 1):
        pad[k] = _even_padding(k, cols, max_delta)
    entries = n + pad
    if fmt == "rel4":
        entries += entries % 2
    return entries


def _table_bytes(max_value):
    return np.where(max_value <= 0xFF, 1, 2)


def single_level_bytes(fmt, rows, cols, nnz, **opts):
    """Bytes of `fmt` for one level of a ``rows x cols`` layer with `nnz` nonzeros (array-like) under
    the evenly-spread model (unstructured formats only: dense, csr16, rel8, rel4, bitmap)."""
    nnz = np.asarray(nnz, dtype=np.int64)
    if fmt == "dense":
        return np.full(nnz.shape, 2 * rows * cols, np.int64)
    q, rem = nnz // rows, nnz % rows
    q1 = np.minimum(q + 1, cols)
    if fmt == "bitmap":
        return 2 * nnz + rows * ((cols + 7) // 8) + rows * _table_bytes(np.where(rem > 0, q1, q))
    if fmt == "hbitmap":  # one level: the union bitmap, one stage_off and one level_start entry
        return 2 * nnz + rows * ((cols + 7) // 8) + 4
    if fmt in ("csr16", "rel8", "rel4"):
        ent = _row_entries(fmt, cols)
        e_q, e_q1 = ent[q], ent[q1]
        entries = rem * e_q1 + (rows - rem) * e_q
        max_row = np.where(rem > 0, np.maximum(e_q1, e_q), e_q)
        per_entry = {"csr16": 4.0, "rel8": 3.0, "rel4": 2.5}[fmt]
        return (per_entry * entries).astype(np.int64) + rows * _table_bytes(max_row)
    raise ValueError(f"single_level_bytes: no evenly-spread model for {fmt!r}")


def _structured_curve(fmt, rows, cols, **opts):
    """(nnz, bytes) for 0..U kept units of a structured format, one level."""
    if fmt in ("rows", "cols"):
        n_units, unit = (rows, cols) if fmt == "rows" else (cols, rows)
        u = np.arange(n_units + 1, dtype=np.int64)
        return u * unit, u * (2 * unit + 2) + int(_table_bytes(n_units))
    if fmt == "block":
        br, bc = opts["block_shape"]
        nbr, nbc = -(-rows // br), -(-cols // bc)
        h = np.minimum(br, rows - np.arange(nbr) * br)[:, None]
        w = np.minimum(bc, cols - np.arange(nbc) * bc)[None, :]
        real = (h * w).ravel()
        stored = np.broadcast_to(h * bc, (nbr, nbc)).ravel()
        order = np.argsort(-real, kind="stable")  # whole interior blocks first
        nnz = np.concatenate([[0], np.cumsum(real[order])])
        body = np.concatenate([[0], np.cumsum(2 * stored[order] + 2)])
        return nnz, body + nbr * int(_table_bytes(nbc))
    if fmt == "pattern":
        kh, kw = opts["kernel_size"]
        n = int(opts.get("pattern_len") or kh * kw)
        nch = cols // (kh * kw)
        u = np.arange(rows * nch + 1, dtype=np.int64)
        meta = rows * int(_table_bytes(nch)) + rows * int(_table_bytes(nch * n)) + 1 + n
        return u * n, u * (2 * n + 3) + meta
    raise ValueError(f"no break-even model for {fmt!r}")


def break_even_sparsity(fmt, rows, cols, **opts):
    """Sparsity at and above which `fmt` stores one level of a ``rows x cols`` layer in fewer bytes
    than dense Q15 (see the module docstring for the mask model); None if it never does."""
    if fmt == "dense":
        return None
    total = rows * cols
    if fmt in ("csr16", "rel8", "rel4", "bitmap", "hbitmap"):
        nnz = np.arange(total + 1, dtype=np.int64)
        size = single_level_bytes(fmt, rows, cols, nnz)
    else:
        nnz, size = _structured_curve(fmt, rows, cols, **opts)
    smaller = size < 2 * total
    if not smaller[0]:
        return None
    stop = int(np.argmin(smaller)) if not smaller.all() else len(smaller)
    return 1.0 - float(nnz[stop - 1]) / total


def level_map_bound(intro, n_levels):
    """Entropy bound of a layer's nested level map (module docstring): ``{"bits_per_weight": H,
    "bytes": H * positions / 8}`` with H over the proportions of intro values 0..n_levels."""
    intro = np.asarray(intro)
    counts = np.bincount(intro.ravel().astype(np.int64), minlength=int(n_levels) + 1)
    p = counts[counts > 0] / intro.size if intro.size else np.zeros(0)
    h = float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: no -0.0 for a single outcome
    return {"bits_per_weight": h, "bytes": h * intro.size / 8}


def sonic_reference(nnz):
    """SONIC-style storage of `nnz` nonzeros: int16 value + 16-bit offset each."""
    return {"index_bytes": 2 * int(nnz), "total_bytes": 4 * int(nnz)}


# -------------------------------------------------------------------------------------- analysis

def _as_q15(weight):
    w = np.asarray(weight)
    if np.issubdtype(w.dtype, np.integer):
        return w.astype(np.int16)
    peak = float(np.abs(w).max()) if w.size else 0.0
    e = int(np.floor(np.log2(32767.0 / peak))) if peak > 0 else 0
    return np.clip(np.round(w.astype(np.float64) * 2.0 ** e), -32768, 32767).astype(np.int16)


def _candidates(formats, weight_ndim, weight_shape, block_shapes):
    """(label, fmt, opts) for every format configuration to try."""
    out = []
    for fmt in formats:
        if fmt == "block":
            out += [(f"block{br}x{bc}", "block", {"block_shape": (br, bc)}) for br, bc in block_shapes]
        elif fmt == "pattern":  # conv only; conv1d kernels are 1 x k (as the code generator encodes them)
            if weight_ndim in (3, 4):
                k = tuple(int(v) for v in weight_shape[2:])
                out.append(("pattern", "pattern", {"kernel_size": k if len(k) == 2 else (1, k[0])}))
        else:
            out.append((fmt, fmt, {}))
    return out


def analyze_layer(name, weight, intro, n_levels, formats=DEFAULT_FORMATS,
                  block_shapes=DEFAULT_BLOCK_SHAPES):
    """Storage report of one layer. `weight` is the weight tensor (float or int16, Linear 2-D or Conv
    3-D/4-D) and `intro` its introducing-level array (same shape). Returns a JSON-able dict."""
    weight, intro = np.asarray(weight), np.asarray(intro)
    if intro.shape != weight.shape:
        raise ValueError(f"{name}: intro shape {intro.shape} differs from weight shape {weight.shape}")
    w_q = F.as_matrix(_as_q15(weight))
    it = F.as_matrix(intro).astype(np.uint8)
    rows, cols = w_q.shape
    L = int(n_levels)
    dense_bytes = 2 * rows * cols
    nnz = [int(level_mask(it, k).sum()) for k in range(1, L + 1)]
    sonic = sonic_reference(nnz[-1])
    bound = level_map_bound(it, L)

    entries, rejected = {}, {}
    for label, fmt, opts in _candidates(formats, weight.ndim, weight.shape, block_shapes):
        try:
            e = F.encode(fmt, w_q, it, L, **opts)
        except F.FormatError as err:
            rejected[label] = str(err)
            continue
        parts = e.bytes_by_part
        be_opts = dict(opts)
        if fmt == "pattern":
            lens = e.arrays["pattern_len"]
            be_opts["pattern_len"] = int(np.rint(np.mean(lens))) if len(lens) else None
        entries[label] = {
            "format": fmt, "opts": {k: list(v) for k, v in opts.items()},
            "bytes": parts, "total": e.total_bytes,
            "level_bytes": [e.level_bytes(k) for k in range(1, L + 1)],
            "index_overhead": (parts["indices"] + parts["metadata"]) / e.total_bytes if e.total_bytes else 0.0,
            "break_even_sparsity": break_even_sparsity(fmt, rows, cols, **be_opts),
            "index_vs_sonic": parts["indices"] / sonic["index_bytes"] if sonic["index_bytes"] else None,
            "vs_dense": e.total_bytes / dense_bytes,
            "index_meta_bytes": parts["indices"] + parts["metadata"],
            "vs_bound": _ratio(parts["indices"] + parts["metadata"], bound["bytes"]),
        }
    # what `compile --format auto` picks: the smallest of the auto formats (dict order breaks ties), or
    # of the formats asked for when none of them is one
    pool = [k for k in entries if entries[k]["format"] in F.AUTO_FORMATS] or list(entries)
    auto = min(pool, key=lambda k: entries[k]["total"])
    for label, ent in entries.items():
        ent["auto"] = label == auto

    separate = []
    for k in range(1, L + 1):
        mask = level_mask(it, k).astype(np.uint8)
        best = None
        for label, fmt, opts in _candidates(formats, weight.ndim, weight.shape, block_shapes):
            if fmt not in F.AUTO_FORMATS and any(f in F.AUTO_FORMATS for f in formats):
                continue
            try:
                size = F.encode(fmt, w_q, mask, 1, **opts).total_bytes
            except F.FormatError:
                continue
            if best is None or size < best[1]:
                best = (label, size)
        separate.append({"level": k, "format": best[0], "total": best[1]})

    return {
        "name": name, "weight_shape": list(weight.shape), "shape": [rows, cols], "n_levels": L,
        "nnz": nnz, "density": [n / (rows * cols) for n in nnz],
        "dense_bytes": dense_bytes, "sonic": sonic, "bound": bound,
        "formats": entries, "rejected": rejected, "auto": auto,
        "union_bytes": entries[auto]["total"],
        "separate": {"levels": separate, "total": sum(s["total"] for s in separate)},
    }


def analyze_layers(layers, n_levels, formats=DEFAULT_FORMATS, block_shapes=DEFAULT_BLOCK_SHAPES):
    """`layers`: {name: (weight, intro)}. Per-layer reports plus model totals: all levels stored once
    in each layer's chosen format vs each level stored alone (best format per level) vs dense Q15."""
    reports = {name: analyze_layer(name, w, it, n_levels, formats, block_shapes)
               for name, (w, it) in layers.items()}
    sums = lambda key: int(sum(r[key] for r in reports.values()))  # noqa: E731
    auto = [r["formats"][r["auto"]] for r in reports.values()]
    totals = {
        "union_bytes": sums("union_bytes"),
        "separate_bytes": int(sum(r["separate"]["total"] for r in reports.values())),
        "dense_bytes": sums("dense_bytes"),
        "dense_per_level_bytes": int(n_levels) * sums("dense_bytes"),
        "index_bytes": int(sum(a["bytes"]["indices"] for a in auto)),
        "metadata_bytes": int(sum(a["bytes"]["metadata"] for a in auto)),
        "sonic_index_bytes": int(sum(r["sonic"]["index_bytes"] for r in reports.values())),
        "sonic_total_bytes": int(sum(r["sonic"]["total_bytes"] for r in reports.values())),
        "level_bytes": [int(sum(a["level_bytes"][k] for a in auto)) for k in range(int(n_levels))],
    }
    bound = float(sum(r["bound"]["bytes"] for r in reports.values()))
    totals["bound_bytes"] = bound
    totals["index_meta_vs_bound"] = _ratio(totals["index_bytes"] + totals["metadata_bytes"], bound)
    # per format label that every layer can use: the model's index + metadata bytes and gap to the bound
    common = [lab for lab in next(iter(reports.values()))["formats"]
              if all(lab in r["formats"] for r in reports.values())] if reports else []
    totals["formats"] = {}
    for lab in common:
        im = int(sum(r["formats"][lab]["index_meta_bytes"] for r in reports.values()))
        totals["formats"][lab] = {"total": int(sum(r["formats"][lab]["total"] for r in reports.values())),
                                  "index_meta_bytes": im, "vs_bound": _ratio(im, bound)}
    return {"n_levels": int(n_levels), "layers": reports, "totals": totals}


def analyze_bundle(bundle, formats=DEFAULT_FORMATS, block_shapes=DEFAULT_BLOCK_SHAPES):
    """`analyze_layers` over a `sparsenest.bundle.Bundle`: every pruned weight, named by its graph node,
    in graph order. (A grouped convolution is analysed as one matrix; the code generator encodes each
    group separately, which changes only row-list and block metadata.)"""
    intro, weights = bundle.intro, bundle.weights
    layers = {}
    for node in bundle.graph["nodes"]:
        key = node.get("weight")
        if key in intro:
            layers[node["name"]] = (weights[key], intro[key])
    for key in intro:  # pruned weights the graph does not name (should not happen; keep them visible)
        if key not in {node.get("weight") for node in bundle.graph["nodes"]}:
            layers[key] = (weights[key], intro[key])
    return analyze_layers(layers, bundle.n_levels, formats, block_shapes)


def _ratio(num, den):
    return float(num) / den if den else None


# --------------------------------------------------------------------------------------- printing

def _pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def _x(x):
    return "-" if x is None else f"{x:.2f}x"


def format_table(report) -> str:
    """Plain-text tables of an `analyze_layers` (or single `analyze_layer`) report."""
    if "layers" not in report:
        report = {"n_levels": report["n_levels"], "layers": {report["name"]: report}, "totals": None}
    out = []
    head = (f"    {'format':<10} {'values':>8} {'indices':>8} {'metadata':>8} {'total':>8} "
            f"{'x dense':>7} {'idx+meta':>8} {'break-even':>10} {'idx/SONIC':>9} {'/bound':>6}")
    for r in report["layers"].values():
        dens = "/".join(_pct(d) for d in r["density"])
        out.append(f"{r['name']}: {r['shape'][0]}x{r['shape'][1]}, {r['n_levels']} levels, "
                   f"nnz {'/'.join(map(str, r['nnz']))} (density {dens}), dense Q15 {r['dense_bytes']} B")
        out.append(head)
        for label, e in sorted(r["formats"].items(), key=lambda kv: kv[1]["total"]):
            b = e["bytes"]
            ratio = "-" if e["index_vs_sonic"] is None else f"{e['index_vs_sonic']:.2f}"
            out.append(f"  {'*' if e['auto'] else ' '} {label:<10} {b['values']:>8} {b['indices']:>8} "
                       f"{b['metadata']:>8} {e['total']:>8} {e['vs_dense']:>7.2f} "
                       f"{_pct(e['index_overhead']):>8} {_pct(e['break_even_sparsity']):>10} {ratio:>9} "
                       f"{_x(e['vs_bound']):>6}")
        if r["rejected"]:
            out.append(f"    cannot represent the masks: {', '.join(r['rejected'])}")
        sep = ", ".join(f"L{s['level']} {s['format']} {s['total']}" for s in r["separate"]["levels"])
        out.append(f"    level-map entropy bound: {r['bound']['bits_per_weight']:.3f} bits/weight = "
                   f"{r['bound']['bytes']:.0f} B of index (/bound: idx+meta over it)")
        out.append(f"    levels stored once: {r['union_bytes']} B ({r['auto']}); each level alone: "
                   f"{r['separate']['total']} B ({sep}); SONIC (union): index {r['sonic']['index_bytes']} B, "
                   f"total {r['sonic']['total_bytes']} B")
        out.append("")
    t = report.get("totals")
    if t:
        u = t["union_bytes"]
        out.append("model:")
        out.append(f"  all levels stored once (chosen formats * above): {u} B")
        out.append(f"  each level stored alone:                         {t['separate_bytes']} B"
                   f" ({t['separate_bytes'] / u:.2f}x)" if u else "")
        out.append(f"  dense Q15 (one copy):                            {t['dense_bytes']} B"
                   f" ({t['dense_bytes'] / u:.2f}x)" if u else "")
        out.append(f"  index bytes {t['index_bytes']} B + metadata {t['metadata_bytes']} B vs SONIC index "
                   f"{t['sonic_index_bytes']} B (SONIC total {t['sonic_total_bytes']} B)")
        out.append(f"  level-map entropy bound {t['bound_bytes']:.0f} B; chosen formats' idx+meta "
                   f"{_x(t['index_meta_vs_bound'])} of it; per format (every layer): " +
                   ", ".join(f"{lab} {f['index_meta_bytes']} B ({_x(f['vs_bound'])})"
                             for lab, f in sorted(t["formats"].items(), key=lambda kv: kv[1]["index_meta_bytes"])))
        out.append("  bytes a level reads: " + ", ".join(f"L{k + 1} {b}" for k, b in enumerate(t["level_bytes"])))
    return "\n".join(out).rstrip() + "\n"
