"""Nested sparse weight formats: one copy of the union of all levels, each level a prefix of every row.

A layer's weight is a matrix ``rows x cols`` (see docs/architecture.md, "Nested sparse formats").
``intro[r, c] = k`` means the weight is kept from level k on (1 = sparsest), 0 = pruned everywhere.
Every format stores, inside each *segment row* (a matrix row for most formats), the entries ordered by
introducing level and then by column, so level k reads a prefix of every segment row and two levels
never store a shared weight twice.

Layout rules common to all formats
----------------------------------
* All arrays are 1-D, C order; their numpy dtype is the C element type.
* ``counts`` (where present) is the cumulative number of *stored units* per segment row and level,
  flattened ``[seg_rows, L]``: ``counts[r*L + k-1]`` = units of row r used by levels 1..k. A unit is an
  entry (csr16, rel8, rel4), a block (block), a kernel (pattern), a kept row (rows) or kept column (cols).
  Its dtype is ``uint8`` when every value fits, else ``uint16`` (the C struct has ``counts_u16``).
* Segment rows are laid out one after the other: row r starts right after row r-1's units of *all*
  levels. A kernel steps over the levels it does not use with the row total ``counts[r*L + L-1]``.
* ``segments[name]`` (``int64 [seg_rows, L+1]``) gives byte offsets into array ``name``: the bytes of
  segment row r for level k are ``[seg[r, k-1], seg[r, k])``. Arrays not in ``segments`` are read-only
  metadata and are never copied when switching level. Segment rows: matrix rows for dense, csr16,
  rel8, rel4, bitmap and pattern (filters); block rows for block; a single segment row for rows and
  cols (the kept-row / kept-column lists are ordered by level over the whole matrix).

Per-format definitions
----------------------
dense    ``values`` int16 rows*cols, pruned positions hold 0. Only when every level has the same mask
         (intro in {0, 1}); all bytes belong to level 1.
csr16    ``values`` int16, ``col_idx`` uint16 per entry, ``counts``.
rel8     ``values`` int16, ``deltas`` uint8 per entry, ``counts``. Inside a (row, level) segment the
         column of an entry is the previous entry's column + delta; the first entry of each segment
         is relative to column 0 (its delta is its column). A gap over 255 is bridged by padding entries
         (delta 255, value 0) that belong to that segment and are counted in ``counts``.
rel4     as rel8 with 4-bit deltas (max gap 15) packed two per byte: entry i's delta is the low nibble
         of ``deltas[i // 2]`` when i is even, the high nibble when odd. Each (row, level) segment with
         an odd number of entries gets one more padding entry (delta 0, value 0) at its end, so every
         segment is byte-aligned and a staged copy never touches another level's byte.
bitmap   ``bitmap`` uint8: for row r and level k (at byte ``(r*L + k-1) * ceil(cols/8)``) the columns
         that level k adds, column c in bit ``c % 8`` of byte ``c // 8``; ``values`` int16 ordered by
         level then column; ``row_nnz`` (uint8/uint16, flag ``row_nnz_u16``) = values per row, all
         levels, used only to step over the levels a kernel does not use.
block    ``block_shape=(br, bc)``; blocks tile the matrix from (0, 0), the last block row / column may
         be partial. Every block's positions must share one intro value. ``block_col`` uint16 per kept
         block, ``values`` int16 ``h x bc`` row-major per kept block (h = that block row's height; a
         partial last block column is stored padded to bc with zeros so every block of a block row has
         the same stride), ``counts`` per block row in blocks.
rows     every row's intro constant. ``row_idx`` uint16 per kept row and ``values`` int16 ``cols`` per
         kept row, both ordered by level then row; ``counts`` has L entries (kept rows, cumulative).
cols     every column's intro constant. ``col_idx`` uint16 per kept column and ``values`` int16 ``rows``
         per kept column (column-major), ordered by level then column; ``counts`` has L entries.
pattern  ``kernel_size=(kh, kw)``; the matrix is ``filters x (channels*kh*kw)``, column
         ``c*kh*kw + ky*kw + kx``. A kernel (filter, channel) is kept when any position is; all its kept
         positions must share one level, so its pattern is the same at every level that keeps it. The
         pattern table (derived from the mask, at most ``max_patterns`` <= 256 patterns, sorted by
         bitmask) is ``pattern_len`` uint8 [P] and ``pattern_pos`` uint8 [P * pattern_stride] (positions
         ``ky*kw + kx`` ascending, unused slots 0). Per kept kernel, ordered by level then channel
         inside each filter row: ``pattern_id`` uint8, ``chan_idx`` uint16, and its pattern_len values
         in ``values``. ``counts`` per filter in kernels; ``row_values`` (uint8/uint16, flag
         ``row_values_u16``) = values per filter, all levels, to step to the next filter.
hbitmap  hierarchical bitmap of the level map, near its entropy bound (at most ``HBITMAP_MAX_LEVELS``
         levels). ``bitmap`` uint8 holds L stages. Stage L (offset 0): per row ``ceil(cols/8)`` bytes,
         column c of row r in bit ``c % 8`` of byte ``r*ceil(cols/8) + c // 8``, set when the weight is
         kept at level L (the union). Stage t < L (at byte ``stage_off[t-1]``): one bit per weight kept at
         level t+1, in row-major order over the whole matrix (bit i in bit ``i % 8`` of byte ``i // 8``),
         set when that weight is also kept at level t. So a weight's introducing level is the last stage
         of the chain L, L-1, .. whose bit is set, and each stage costs one bit per weight of the next
         denser level: about H(level map) bits when every level keeps about half of the next one.
         ``values`` int16 are level-major: every weight introduced at level 1 (row-major), then those
         introduced at level 2, ...; ``level_start`` uint16 [L] = index of level j's first value.
         Level k reads the values of levels 1..k, a prefix of ``values`` (one segment row), so the
         prefix rule and staged switching hold; the stages are read in full at every level (never
         copied by a staged switch). ``stage_off`` uint16 [L] (stage L's entry is 0). The kernel walks stage L and, per kept
         weight, the chain down to its introducing level: its work per call is the same at every level
         (all bitmap bytes), its products those of the level: ``weight_bytes_read`` = every bitmap byte +
         ``2*(L-1)`` (stage_off) + ``2*level`` (level_start) + 2 per product. Offsets and value counts
         must fit 16 bits (FormatError otherwise). No row tiles (upper FRAM streaming needs a row format).

Kernel cost (what ``kernel_counts(level)`` predicts and the C kernels count): ``macs`` = products
computed, which includes rel8/rel4 padding entries (value 0) but not the zero padding of partial block
columns (never multiplied); dense multiplies every position. ``weight_bytes_read`` = every byte of
values, indices and metadata the kernel loads, counts and pattern table included.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["FORMATS", "AUTO_FORMATS", "DIRECT_CONV_FORMATS", "supports_direct", "direct_needs_offset_table", "HBITMAP_MAX_LEVELS", "FormatError", "EncodedLayer", "encode", "bytes_single_level", "can_encode",
           "as_matrix"]

FORMATS = ("dense", "csr16", "rel8", "rel4", "bitmap", "block", "rows", "cols", "pattern", "hbitmap")
#: Formats `auto` always tries, in this order (block and pattern only when their shape option is given).
#: hbitmap is left out: it is the smallest nearly everywhere, but its kernel walks the whole union at
#: every level, so choosing it is a time/bytes trade for the cost-driven choice, not a bytes-only rule.
AUTO_FORMATS = tuple(f for f in FORMATS if f != "hbitmap")
#: formats with a direct convolution kernel (sn_conv_<format>, runtime_c/include/sn_conv_direct.h):
#: csr16's indices become input offsets; the others reconstruct each column (bitmap bits, rel8/rel4
#: deltas, block columns, pattern channel + position, hbitmap union bits) and map it through a
#: per-layer offset table. dense/rows/cols have none (rows/cols walk whole rows or columns anyway).
DIRECT_CONV_FORMATS = ("csr16", "bitmap", "rel8", "rel4", "block", "pattern", "hbitmap")


def supports_direct(fmt: str) -> bool:
    """Whether a convolution in `fmt` can run direct (no per-position im2col copy)."""
    return fmt in DIRECT_CONV_FORMATS


def direct_needs_offset_table(fmt: str) -> bool:
    """Direct convolutions in `fmt` read a per-layer column -> input byte offset table (csr16 needs none)."""
    return supports_direct(fmt) and fmt != "csr16"


#: The C kernel keeps one value cursor and one bit cursor per level (SN_HBITMAP_MAX_LEVELS).
HBITMAP_MAX_LEVELS = 8
_OPTS = {"block": ("block_shape",), "pattern": ("kernel_size", "max_patterns")}
_ALL_OPTS = {"block_shape", "kernel_size", "max_patterns"}


class FormatError(ValueError):
    """A format cannot represent a layer's nested masks (message: format, shape, what is violated)."""


@dataclass(eq=False)
class EncodedLayer:
    """One layer in one nested format. See the module docstring for each format's arrays."""

    format: str
    rows: int
    cols: int
    n_levels: int
    arrays: dict[str, np.ndarray]
    parts: dict[str, str]                 # array name -> "values" | "indices" | "metadata"
    segments: dict[str, np.ndarray]       # array name -> int64 [seg_rows, L+1] byte offsets
    c_fields: list[tuple[str, int | str]]  # struct field -> array name (str) or scalar (int)
    opts: dict = field(default_factory=dict)
    candidates: dict[str, int] = field(default_factory=dict)  # filled by `auto`: format -> bytes
    _nnz: np.ndarray = field(default=None, repr=False)        # [L+1] cumulative mask nonzeros
    _sim: Callable = field(default=None, repr=False)

    @property
    def c_struct(self) -> str:
        return f"sn_{self.format}_matrix"

    @property
    def c_kernel(self) -> str:
        return f"sn_spmv_{self.format}"

    @property
    def bytes_by_part(self) -> dict[str, int]:
        out = {"values": 0, "indices": 0, "metadata": 0}
        for name, arr in self.arrays.items():
            out[self.parts[name]] += int(arr.nbytes)
        return out

    @property
    def total_bytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays.values()))

    def nnz(self, level: int) -> int:
        """Weights in level `level`'s mask (padding and stored zeros not included)."""
        return int(self._nnz[self._level(level)])

    def level_bytes(self, level: int) -> int:
        """Bytes a kernel at `level` can touch: segmented arrays' prefixes plus all metadata arrays
        (the size of a staged working copy of that level)."""
        k = self._level(level)
        total = 0
        for name, arr in self.arrays.items():
            seg = self.segments.get(name)
            total += int(arr.nbytes) if seg is None else int((seg[:, k] - seg[:, 0]).sum())
        return total

    def decode(self, level: int) -> np.ndarray:
        """The int16 matrix that the kernel multiplies at `level`, read back from the arrays the way
        the C kernel reads them (equals ``w_q * mask_level``)."""
        return self._sim(self, self._level(level))[0]

    def kernel_counts(self, level: int) -> dict[str, int]:
        """What ``sn_spmv_<format>`` adds to the counters at `level`: macs and weight_bytes_read."""
        _, macs, nbytes = self._sim(self, self._level(level))
        return {"macs": int(macs), "weight_bytes_read": int(nbytes)}

    def _level(self, level: int) -> int:
        level = int(level)
        if not 0 <= level <= self.n_levels:
            raise ValueError(f"{self.format}: level {level} outside 0..{self.n_levels}")
        return level


# ----------------------------------------------------------------------------------------- helpers

def as_matrix(weight: np.ndarray) -> np.ndarray:
    """A weight tensor as the format's matrix: Linear ``out x in``, Conv ``out x (in/groups*k...)``."""
    weight = np.asarray(weight)
    return weight.reshape(weight.shape[0], -1) if weight.ndim != 2 else weight


def _small_uint(max_value: int, what: str) -> type:
    if max_value <= 0xFF:
        return np.uint8
    if max_value <= 0xFFFF:
        return np.uint16
    raise FormatError(f"{what}: {max_value} does not fit 16 bits")


def _shape(w) -> str:
    return f"{w.shape[0]}x{w.shape[1]}"


def _check_inputs(w_q, intro, n_levels):
    w_q = np.asarray(w_q)
    intro = np.asarray(intro)
    if w_q.ndim != 2 or w_q.shape[0] < 1 or w_q.shape[1] < 1:
        raise ValueError(f"w_q must be a non-empty rows x cols matrix, got shape {w_q.shape}")
    if intro.shape != w_q.shape:
        raise ValueError(f"intro shape {intro.shape} differs from w_q shape {w_q.shape}")
    if max(w_q.shape) > 0xFFFF:
        raise ValueError(f"layer {_shape(w_q)}: rows and cols must fit uint16")
    if not (isinstance(n_levels, (int, np.integer)) and 1 <= n_levels <= 255):
        raise ValueError(f"n_levels must be an int in 1..255, got {n_levels!r}")
    if not np.issubdtype(w_q.dtype, np.integer):
        raise ValueError(f"w_q must be an integer (Q15) array, got {w_q.dtype}")
    if w_q.dtype != np.int16:
        if w_q.size and (w_q.min() < -32768 or w_q.max() > 32767):
            raise ValueError("w_q values outside int16")
        w_q = w_q.astype(np.int16)
    if not np.issubdtype(intro.dtype, np.integer) or (intro.size and intro.min() < 0):
        raise ValueError(f"intro must be an unsigned integer array, got {intro.dtype}")
    if intro.size and intro.max() > n_levels:
        raise ValueError(f"intro has level {int(intro.max())} but n_levels is {n_levels}")
    return w_q, intro.astype(np.uint8), int(n_levels)


def _mask_nnz(intro, L):
    """[L+1] cumulative count of mask nonzeros per level (index 0 = 0)."""
    per = np.bincount(intro.ravel(), minlength=L + 1)[: L + 1].astype(np.int64)
    per[0] = 0
    return np.cumsum(per)


def _segments(counts2d, unit_bytes):
    """Byte offsets [seg_rows, L+1] from cumulative per-level unit counts [seg_rows, L].
    unit_bytes is a scalar or one value per segment row; results must be whole bytes."""
    counts2d = np.asarray(counts2d, dtype=np.int64)
    ub = np.broadcast_to(np.asarray(unit_bytes, dtype=np.float64), (counts2d.shape[0],))
    cum = np.concatenate([np.zeros((counts2d.shape[0], 1), np.int64), counts2d], axis=1)
    row_bytes = cum[:, -1] * ub
    start = np.concatenate([[0.0], np.cumsum(row_bytes)[:-1]])
    seg = start[:, None] + cum * ub[:, None]
    assert np.all(seg == np.round(seg)), "segments must be byte-aligned"
    return seg.astype(np.int64)


def _counts_array(counts2d, what):
    counts2d = np.asarray(counts2d, dtype=np.int64)
    dt = _small_uint(int(counts2d.max()) if counts2d.size else 0, what)
    return counts2d.astype(dt).ravel()


def _sorted_entries(intro):
    """Kept positions ordered by row, introducing level, column."""
    r, c = np.nonzero(intro)
    lv = intro[r, c].astype(np.int64)
    order = np.lexsort((c, lv, r))
    return r[order].astype(np.int64), c[order].astype(np.int64), lv[order]


def _cum_per_row(seg_row, seg_lv, n_rows, L):
    per = np.zeros((n_rows, L), np.int64)
    np.add.at(per, (seg_row, seg_lv - 1), 1)
    return np.cumsum(per, axis=1)


def _count_at(counts, i):
    return int(counts[i])


def _make(fmt, w_q, intro, L, arrays, parts, segments, c_fields, sim, opts=None):
    return EncodedLayer(format=fmt, rows=w_q.shape[0], cols=w_q.shape[1], n_levels=L, arrays=arrays,
                        parts=parts, segments=segments, c_fields=c_fields, opts=dict(opts or {}),
                        _nnz=_mask_nnz(intro, L), _sim=sim)


def _head(w_q, L):
    return [("rows", int(w_q.shape[0])), ("cols", int(w_q.shape[1])), ("n_levels", int(L))]


def _cb(arr):
    """Bytes per element of a uint8/uint16 table, as the C kernel reads them."""
    return int(arr.dtype.itemsize)


# ------------------------------------------------------------------------------------------- dense

def _enc_dense(w_q, intro, L):
    late = int(np.count_nonzero(intro > 1))
    if late:
        raise FormatError(f"dense: layer {_shape(w_q)} with {L} levels: level masks differ "
                          f"({late} weights are introduced after level 1); dense stores one mask "
                          f"for all levels")
    values = np.where(intro > 0, w_q, 0).astype(np.int16).ravel()
    rows, cols = w_q.shape
    counts2d = np.full((rows, L), cols, np.int64)  # every byte belongs to level 1
    return _make("dense", w_q, intro, L, {"values": values}, {"values": "values"},
                 {"values": _segments(counts2d, 2)}, _head(w_q, L) + [("values", "values")],
                 _sim_dense)


def _sim_dense(e, level):
    if level == 0:
        return np.zeros((e.rows, e.cols), np.int16), 0, 0
    n = e.rows * e.cols
    return e.arrays["values"].reshape(e.rows, e.cols).copy(), n, 2 * n


# ------------------------------------------------------------------------------------------- csr16

def _enc_csr16(w_q, intro, L):
    rows, _ = w_q.shape
    r, c, lv = _sorted_entries(intro)
    cum = _cum_per_row(r, lv, rows, L)
    arrays = {"values": w_q[r, c].astype(np.int16), "col_idx": c.astype(np.uint16),
              "counts": _counts_array(cum, f"csr16 {_shape(w_q)} counts")}
    parts = {"values": "values", "col_idx": "indices", "counts": "metadata"}
    segs = {"values": _segments(cum, 2), "col_idx": _segments(cum, 2)}
    fields = _head(w_q, L) + [("counts_u16", int(_cb(arrays["counts"]) == 2)), ("counts", "counts"),
                              ("values", "values"), ("col_idx", "col_idx")]
    return _make("csr16", w_q, intro, L, arrays, parts, segs, fields, _sim_csr16)


def _sim_csr16(e, level):
    W = np.zeros((e.rows, e.cols), np.int64)
    if level == 0:
        return W.astype(np.int16), 0, 0
    L, a = e.n_levels, e.arrays
    counts, cb = a["counts"], _cb(a["counts"])
    base = macs = nbytes = 0
    for r in range(e.rows):
        n = _count_at(counts, r * L + level - 1)
        n_all = n if level == L else _count_at(counts, r * L + L - 1)
        nbytes += cb * (1 if level == L else 2)
        sl = slice(base, base + n)
        np.add.at(W[r], a["col_idx"][sl].astype(np.int64), a["values"][sl].astype(np.int64))
        macs += n
        nbytes += 4 * n
        base += n_all
    return W.astype(np.int16), macs, nbytes


# ------------------------------------------------------------------------------------- rel8 / rel4

def _enc_rel(fmt, w_q, intro, L):
    bits = 8 if fmt == "rel8" else 4
    max_delta = (1 << bits) - 1
    rows, _ = w_q.shape
    r, c, lv = _sorted_entries(intro)
    v = w_q[r, c].astype(np.int16)
    seg_id = r * L + (lv - 1)
    first = np.ones(len(c), bool)
    first[1:] = seg_id[1:] != seg_id[:-1]
    prev = np.where(first, 0, np.concatenate([[0], c[:-1]]))
    gap = c - prev
    npad = np.where(gap > 0, (gap - 1) // max_delta, 0)   # padding entries before each real entry
    rep = npad + 1
    src = np.repeat(np.arange(len(c)), rep)
    group_start = np.repeat(np.cumsum(rep) - rep, rep)
    pos = np.arange(len(src)) - group_start
    last = pos == npad[src]
    deltas = np.where(last, gap[src] - npad[src] * max_delta, max_delta).astype(np.int64)
    values = np.where(last, v[src], 0).astype(np.int16)
    seg = seg_id[src]
    if bits == 4:  # one (delta 0, value 0) entry closes every odd-length segment
        seg_len = np.bincount(seg, minlength=rows * L)
        odd = np.flatnonzero(seg_len % 2)
        order = np.argsort(np.concatenate([seg, odd]), kind="stable")
        seg = np.concatenate([seg, odd])[order]
        deltas = np.concatenate([deltas, np.zeros(len(odd), np.int64)])[order]
        values = np.concatenate([values, np.zeros(len(odd), np.int16)])[order]
    cum = _cum_per_row(seg // L, seg % L + 1, rows, L)
    if bits == 8:
        packed = deltas.astype(np.uint8)
        unit = 1
    else:
        packed = (deltas[0::2] | (deltas[1::2] << 4)).astype(np.uint8)
        unit = 0.5
    arrays = {"values": values, "deltas": packed,
              "counts": _counts_array(cum, f"{fmt} {_shape(w_q)} counts")}
    parts = {"values": "values", "deltas": "indices", "counts": "metadata"}
    segs = {"values": _segments(cum, 2), "deltas": _segments(cum, unit)}
    fields = _head(w_q, L) + [("counts_u16", int(_cb(arrays["counts"]) == 2)), ("counts", "counts"),
                              ("values", "values"), ("deltas", "deltas")]
    return _make(fmt, w_q, intro, L, arrays, parts, segs, fields, _sim_rel)


def _sim_rel(e, level):
    W = np.zeros((e.rows, e.cols), np.int64)
    if level == 0:
        return W.astype(np.int16), 0, 0
    L, a = e.n_levels, e.arrays
    counts, cb = a["counts"], _cb(a["counts"])
    if e.format == "rel8":
        deltas = a["deltas"].astype(np.int64)
    else:  # unpack nibbles: entry i -> low nibble of byte i//2 if i even, high nibble if odd
        deltas = np.stack([a["deltas"] & 0xF, a["deltas"] >> 4], axis=1).ravel().astype(np.int64)
    values = a["values"].astype(np.int64)
    base = macs = nbytes = 0
    for r in range(e.rows):
        done = 0
        for k in range(1, level + 1):
            end = _count_at(counts, r * L + k - 1)
            nbytes += cb
            sl = slice(base + done, base + end)
            cols = np.cumsum(deltas[sl])  # first delta is relative to column 0
            np.add.at(W[r], cols, values[sl])
            macs += end - done
            done = end
        if level < L:
            nbytes += cb
        n_all = _count_at(counts, r * L + L - 1)
        base += n_all
    idx_bytes = macs if e.format == "rel8" else macs // 2
    return W.astype(np.int16), macs, nbytes + 2 * macs + idx_bytes


# ------------------------------------------------------------------------------------------ bitmap

def _enc_bitmap(w_q, intro, L):
    rows, cols = w_q.shape
    nb = (cols + 7) // 8
    padded = np.zeros((rows, nb * 8), np.uint8)
    padded[:, :cols] = intro
    # bits[r, k-1, :] = columns level k adds in row r, packed little-endian (column c -> bit c % 8)
    levels = np.arange(1, L + 1, dtype=np.uint8)
    adds = padded[:, None, :] == levels[None, :, None]
    bitmap = np.packbits(adds, axis=2, bitorder="little").astype(np.uint8)
    r, c, _ = _sorted_entries(intro)
    values = w_q[r, c].astype(np.int16)
    cum = _cum_per_row(r, intro[r, c].astype(np.int64), rows, L)
    row_nnz = _counts_array(cum[:, -1:], f"bitmap {_shape(w_q)} row_nnz")
    arrays = {"values": values, "bitmap": bitmap.ravel(), "row_nnz": row_nnz}
    parts = {"values": "values", "bitmap": "indices", "row_nnz": "metadata"}
    levels_cum = np.tile(np.arange(1, L + 1, dtype=np.int64), (rows, 1))
    segs = {"values": _segments(cum, 2), "bitmap": _segments(levels_cum, nb)}
    fields = _head(w_q, L) + [("row_nnz_u16", int(_cb(row_nnz) == 2)), ("row_nnz", "row_nnz"),
                              ("values", "values"), ("bitmap", "bitmap")]
    return _make("bitmap", w_q, intro, L, arrays, parts, segs, fields, _sim_bitmap)


def _sim_bitmap(e, level):
    W = np.zeros((e.rows, e.cols), np.int64)
    if level == 0:
        return W.astype(np.int16), 0, 0
    L, a = e.n_levels, e.arrays
    nb = (e.cols + 7) // 8
    bitmap, values, row_nnz = a["bitmap"], a["values"].astype(np.int64), a["row_nnz"]
    base = macs = nbytes = 0
    for r in range(e.rows):
        i = base
        for k in range(1, level + 1):
            off = (r * L + k - 1) * nb
            bits = np.unpackbits(bitmap[off:off + nb], bitorder="little")
            cols = np.flatnonzero(bits)
            W[r, cols] += values[i:i + len(cols)]
            i += len(cols)
            nbytes += nb
        macs += i - base
        nbytes += 2 * (i - base)
        if level < L:
            nbytes += _cb(row_nnz)
        base += int(row_nnz[r])
    return W.astype(np.int16), macs, nbytes


# ------------------------------------------------------------------------------------------- block

def _block_levels(fmt, intro, br, bc, what):
    """Per block (nbr x nbc) the single intro value of its positions; FormatError if mixed."""
    rows, cols = intro.shape
    nbr, nbc = -(-rows // br), -(-cols // bc)
    lo = np.full((nbr * br, nbc * bc), 256, np.int16)
    hi = np.full((nbr * br, nbc * bc), -1, np.int16)
    lo[:rows, :cols] = intro
    hi[:rows, :cols] = intro
    lo = lo.reshape(nbr, br, nbc, bc).min(axis=(1, 3))
    hi = hi.reshape(nbr, br, nbc, bc).max(axis=(1, 3))
    bad = np.argwhere(lo != hi)
    if len(bad):
        R, C = bad[0]
        raise FormatError(f"{fmt}: layer {rows}x{cols}: {len(bad)} {what} mix introducing levels "
                          f"(first at {what[:-1]} ({R}, {C}) = rows {R * br}.., cols {C * bc}.., "
                          f"levels {sorted(set(np.unique(intro[R*br:(R+1)*br, C*bc:(C+1)*bc]).tolist()))}"
                          f"); each level's mask must be a union of whole {what}")
    return hi


def _enc_block(w_q, intro, L, block_shape=None):
    if block_shape is None:
        raise FormatError("block: needs block_shape=(br, bc)")
    br, bc = (int(x) for x in block_shape)
    rows, cols = w_q.shape
    if not (1 <= br <= 255 and 1 <= bc <= 255):
        raise FormatError(f"block: block_shape {block_shape} must be within 1..255")
    blv = _block_levels("block", intro, br, bc, f"{br}x{bc} blocks")
    nbr, nbc = blv.shape
    R, C = np.nonzero(blv)
    lv = blv[R, C].astype(np.int64)
    order = np.lexsort((C, lv, R))
    R, C, lv = R[order], C[order], lv[order]
    wp = np.zeros((nbr * br, nbc * bc), np.int16)
    wp[:rows, :cols] = np.where(intro > 0, w_q, 0)
    heights = np.minimum(br, rows - np.arange(nbr) * br)
    chunks = [wp[Rb * br:Rb * br + heights[Rb], Cb * bc:(Cb + 1) * bc].ravel() for Rb, Cb in zip(R, C)]
    values = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    cum = _cum_per_row(R, lv, nbr, L)
    arrays = {"values": values, "block_col": C.astype(np.uint16),
              "counts": _counts_array(cum, f"block {_shape(w_q)} counts")}
    parts = {"values": "values", "block_col": "indices", "counts": "metadata"}
    segs = {"values": _segments(cum, 2 * heights * bc), "block_col": _segments(cum, 2)}
    fields = _head(w_q, L) + [("block_rows", br), ("block_cols", bc),
                              ("counts_u16", int(_cb(arrays["counts"]) == 2)), ("counts", "counts"),
                              ("values", "values"), ("block_col", "block_col")]
    return _make("block", w_q, intro, L, arrays, parts, segs, fields, _sim_block,
                 {"block_shape": (br, bc)})


def _sim_block(e, level):
    W = np.zeros((e.rows, e.cols), np.int64)
    if level == 0:
        return W.astype(np.int16), 0, 0
    L, a = e.n_levels, e.arrays
    br, bc = e.opts["block_shape"]
    counts, cb = a["counts"], _cb(a["counts"])
    nbr = -(-e.rows // br)
    vbase = ibase = macs = nbytes = 0
    for Rb in range(nbr):
        r0 = Rb * br
        h = min(br, e.rows - r0)
        n = _count_at(counts, Rb * L + level - 1)
        n_all = n if level == L else _count_at(counts, Rb * L + L - 1)
        nbytes += cb * (1 if level == L else 2)
        for j in range(n):
            c0 = int(a["block_col"][ibase + j]) * bc
            w = min(bc, e.cols - c0)
            blk = a["values"][vbase + j * h * bc: vbase + (j + 1) * h * bc].reshape(h, bc)
            W[r0:r0 + h, c0:c0 + w] += blk[:, :w]
            macs += h * w
            nbytes += 2 + 2 * h * w
        vbase += n_all * h * bc
        ibase += n_all
    return W.astype(np.int16), macs, nbytes


# ------------------------------------------------------------------------------------- rows / cols

def _enc_lines(fmt, w_q, intro, L):
    """Kept-row (fmt 'rows') or kept-column ('cols') list; one segment row for the whole matrix."""
    by_cols = fmt == "cols"
    it = intro.T if by_cols else intro
    wt = (w_q.T if by_cols else w_q)
    lo, hi = it.min(axis=1), it.max(axis=1)
    bad = np.flatnonzero(lo != hi)
    line = "column" if by_cols else "row"
    if len(bad):
        raise FormatError(f"{fmt}: layer {_shape(w_q)}: {len(bad)} {line}s mix introducing levels "
                          f"(first: {line} {bad[0]} has levels "
                          f"{sorted(np.unique(it[bad[0]]).tolist())}); each level's mask must be whole "
                          f"{line}s")
    kept = np.flatnonzero(hi)
    kept = kept[np.lexsort((kept, hi[kept]))]
    per = np.bincount(hi[kept], minlength=L + 1)[1:L + 1]
    cum = np.cumsum(per)[None, :]
    values = np.ascontiguousarray(wt[kept]).astype(np.int16).ravel()
    idx_name = "col_idx" if by_cols else "row_idx"
    arrays = {"values": values, idx_name: kept.astype(np.uint16),
              "counts": _counts_array(cum, f"{fmt} {_shape(w_q)} counts")}
    parts = {"values": "values", idx_name: "indices", "counts": "metadata"}
    line_len = w_q.shape[0] if by_cols else w_q.shape[1]
    segs = {"values": _segments(cum, 2 * line_len), idx_name: _segments(cum, 2)}
    fields = _head(w_q, L) + [("counts_u16", int(_cb(arrays["counts"]) == 2)), ("counts", "counts"),
                              ("values", "values"), (idx_name, idx_name)]
    return _make(fmt, w_q, intro, L, arrays, parts, segs, fields, _sim_lines)


def _sim_lines(e, level):
    W = np.zeros((e.rows, e.cols), np.int64)
    if level == 0:
        return W.astype(np.int16), 0, 0
    a = e.arrays
    by_cols = e.format == "cols"
    idx = a["col_idx"] if by_cols else a["row_idx"]
    n = _count_at(a["counts"], level - 1)
    line_len = e.rows if by_cols else e.cols
    vals = a["values"][: n * line_len].reshape(n, line_len).astype(np.int64)
    for j in range(n):
        if by_cols:
            W[:, int(idx[j])] += vals[j]
        else:
            W[int(idx[j])] += vals[j]
    macs = n * line_len
    return W.astype(np.int16), macs, _cb(a["counts"]) + n * 2 + 2 * macs


# ----------------------------------------------------------------------------------------- pattern

def _enc_pattern(w_q, intro, L, kernel_size=None, max_patterns=256):
    if kernel_size is None:
        raise FormatError("pattern: needs kernel_size=(kh, kw)")
    kh, kw = (int(x) for x in kernel_size)
    rows, cols = w_q.shape
    khw = kh * kw
    if kh < 1 or kw < 1 or khw > 255:
        raise FormatError(f"pattern: kernel_size {kernel_size} must have 1..255 positions")
    if cols % khw:
        raise FormatError(f"pattern: layer {rows}x{cols}: cols is not a multiple of the kernel size "
                          f"{kh}x{kw}")
    max_patterns = int(max_patterns)
    if not 1 <= max_patterns <= 256:
        raise FormatError(f"pattern: max_patterns {max_patterns} must be in 1..256 (uint8 ids)")
    nch = cols // khw
    it = intro.reshape(rows, nch, khw)
    hi = it.max(axis=2).astype(np.int64)
    lo = np.where(it > 0, it.astype(np.int64), 256).min(axis=2)
    mixed = np.argwhere((hi > 0) & (lo != hi))
    if len(mixed):
        f, ch = mixed[0]
        raise FormatError(f"pattern: layer {rows}x{cols} ({kh}x{kw} kernels): {len(mixed)} kernels have "
                          f"positions introduced at different levels (first: filter {f}, channel {ch}, "
                          f"levels {sorted(set(it[f, ch][it[f, ch] > 0].tolist()))}); a kernel's pattern "
                          f"must be the same at every level that keeps it")
    keys = np.packbits(it > 0, axis=2, bitorder="little")          # [rows, nch, ceil(khw/8)]
    keys = keys.reshape(rows * nch, -1)
    kept_flat = hi.ravel() > 0
    table, inverse = np.unique(keys[kept_flat], axis=0, return_inverse=True)
    if len(table) > max_patterns:
        raise FormatError(f"pattern: layer {rows}x{cols} ({kh}x{kw} kernels): the mask uses "
                          f"{len(table)} distinct kernel patterns, more than {max_patterns}")
    pat_bits = (np.unpackbits(table, axis=1, bitorder="little")[:, :khw].astype(bool)
                if len(table) else np.zeros((0, khw), bool))
    pattern_len = pat_bits.sum(axis=1).astype(np.int64)
    stride = int(pattern_len.max()) if len(table) else 0
    pattern_pos = np.zeros((len(table), stride), np.uint8)
    for p in range(len(table)):
        pos = np.flatnonzero(pat_bits[p])
        pattern_pos[p, :len(pos)] = pos
    pid_flat = np.full(rows * nch, -1, np.int64)
    pid_flat[kept_flat] = inverse.ravel()
    pid = pid_flat.reshape(rows, nch)
    F, CH = np.nonzero(hi)
    lv = hi[F, CH].astype(np.int64)
    order = np.lexsort((CH, lv, F))
    F, CH, lv = F[order], CH[order], lv[order]
    kernel_pids = pid[F, CH]
    chunks = [w_q[f, ch * khw + np.flatnonzero(pat_bits[p])] for f, ch, p in zip(F, CH, kernel_pids)]
    values = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    cum = _cum_per_row(F, lv, rows, L)
    klen = pattern_len[kernel_pids] if len(kernel_pids) else np.zeros(0, np.int64)
    vper = np.zeros((rows, L), np.int64)
    np.add.at(vper, (F, lv - 1), klen)
    vcum = np.cumsum(vper, axis=1)
    arrays = {"values": values, "pattern_id": kernel_pids.astype(np.uint8),
              "chan_idx": CH.astype(np.uint16),
              "counts": _counts_array(cum, f"pattern {_shape(w_q)} counts"),
              "row_values": _counts_array(vcum[:, -1:], f"pattern {_shape(w_q)} row_values"),
              "pattern_len": pattern_len.astype(np.uint8), "pattern_pos": pattern_pos.ravel()}
    parts = {"values": "values", "pattern_id": "indices", "chan_idx": "indices",
             "counts": "metadata", "row_values": "metadata", "pattern_len": "metadata",
             "pattern_pos": "metadata"}
    segs = {"values": _segments(vcum, 2), "pattern_id": _segments(cum, 1),
            "chan_idx": _segments(cum, 2)}
    fields = _head(w_q, L) + [("kernel_h", kh), ("kernel_w", kw), ("n_patterns", len(table)),
                              ("pattern_stride", stride),
                              ("counts_u16", int(_cb(arrays["counts"]) == 2)), ("counts", "counts"),
                              ("row_values_u16", int(_cb(arrays["row_values"]) == 2)),
                              ("row_values", "row_values"), ("values", "values"),
                              ("pattern_id", "pattern_id"), ("chan_idx", "chan_idx"),
                              ("pattern_len", "pattern_len"), ("pattern_pos", "pattern_pos")]
    return _make("pattern", w_q, intro, L, arrays, parts, segs, fields, _sim_pattern,
                 {"kernel_size": (kh, kw)})


def _sim_pattern(e, level):
    W = np.zeros((e.rows, e.cols), np.int64)
    if level == 0:
        return W.astype(np.int16), 0, 0
    L, a = e.n_levels, e.arrays
    kh, kw = e.opts["kernel_size"]
    khw = kh * kw
    stride = dict(e.c_fields)["pattern_stride"]
    counts, cb = a["counts"], _cb(a["counts"])
    vbase = kbase = macs = nbytes = 0
    for f in range(e.rows):
        n = _count_at(counts, f * L + level - 1)
        n_all = n if level == L else _count_at(counts, f * L + L - 1)
        nbytes += cb * (1 if level == L else 2)
        vi = vbase
        for j in range(n):
            p = int(a["pattern_id"][kbase + j])
            base = int(a["chan_idx"][kbase + j]) * khw
            plen = int(a["pattern_len"][p])
            pos = a["pattern_pos"][p * stride: p * stride + plen].astype(np.int64)
            W[f, base + pos] += a["values"][vi:vi + plen]
            vi += plen
            macs += plen
            nbytes += 1 + 2 + 1 + 3 * plen
        if level < L:
            nbytes += _cb(a["row_values"])
        vbase += int(a["row_values"][f])
        kbase += n_all
    return W.astype(np.int16), macs, nbytes


# ----------------------------------------------------------------------------------------- hbitmap

def _enc_hbitmap(w_q, intro, L):
    rows, cols = w_q.shape
    if L > HBITMAP_MAX_LEVELS:
        raise FormatError(f"hbitmap: layer {_shape(w_q)} has {L} levels; the kernel supports at most "
                          f"{HBITMAP_MAX_LEVELS}")
    nb = (cols + 7) // 8
    padded = np.zeros((rows, nb * 8), bool)
    padded[:, :cols] = intro > 0
    stages = {L: np.packbits(padded, axis=1, bitorder="little").ravel()}
    flat = intro.ravel()
    for t in range(L - 1, 0, -1):  # over the weights kept at level t+1: also kept at level t?
        members = flat[(flat >= 1) & (flat <= t + 1)]
        stages[t] = np.packbits(members <= t, bitorder="little")
    offsets, off = {}, 0
    for t in range(L, 0, -1):
        offsets[t] = off
        off += stages[t].size
    if off > 0xFFFF:
        raise FormatError(f"hbitmap: layer {_shape(w_q)}: {off} bitmap bytes do not fit 16-bit offsets")
    r, c = np.nonzero(intro)
    lv = intro[r, c].astype(np.int64)
    order = np.lexsort((c, r, lv))  # level-major, then row, then column
    values = w_q[r[order], c[order]].astype(np.int16)
    cum = np.cumsum(np.bincount(lv, minlength=L + 1)[1:L + 1])
    _small_uint(int(cum[-1]), f"hbitmap {_shape(w_q)} values")  # level_start is uint16
    arrays = {"values": values,
              "bitmap": np.concatenate([stages[t] for t in range(L, 0, -1)]).astype(np.uint8),
              "stage_off": np.array([offsets[t] for t in range(1, L + 1)], np.uint16),
              "level_start": np.concatenate([[0], cum[:-1]]).astype(np.uint16)}
    parts = {"values": "values", "bitmap": "indices", "stage_off": "metadata", "level_start": "metadata"}
    segs = {"values": _segments(cum[None, :], 2)}
    fields = _head(w_q, L) + [("values", "values"), ("bitmap", "bitmap"), ("stage_off", "stage_off"),
                              ("level_start", "level_start")]
    return _make("hbitmap", w_q, intro, L, arrays, parts, segs, fields, _sim_hbitmap)


def _sim_hbitmap(e, level):
    W = np.zeros((e.rows, e.cols), np.int64)
    if level == 0:
        return W.astype(np.int16), 0, 0
    L, a = e.n_levels, e.arrays
    nb = (e.cols + 7) // 8
    top = np.unpackbits(a["bitmap"][:e.rows * nb], bitorder="little").reshape(e.rows, nb * 8)[:, :e.cols]
    pos = np.flatnonzero(top.ravel())          # the union, row-major
    intro = np.full(len(pos), L, np.int64)
    members = np.arange(len(pos))              # union elements kept at level t+1
    for t in range(L - 1, 0, -1):
        off = int(a["stage_off"][t - 1])
        bits = np.unpackbits(a["bitmap"][off:off + (len(members) + 7) // 8], bitorder="little")
        members = members[bits[:len(members)].astype(bool)]
        intro[members] = t
    values = a["values"].astype(np.int64)
    macs = 0
    for j in range(1, level + 1):
        sel = pos[intro == j]
        start = int(a["level_start"][j - 1])
        W.ravel()[sel] = values[start:start + len(sel)]
        macs += len(sel)
    nbytes = a["bitmap"].nbytes + 2 * (L - 1) + 2 * level + 2 * macs
    return W.astype(np.int16), macs, nbytes


# -------------------------------------------------------------------------------------------- API

_ENCODERS = {
    "dense": _enc_dense,
    "csr16": _enc_csr16,
    "rel8": lambda w, i, L: _enc_rel("rel8", w, i, L),
    "rel4": lambda w, i, L: _enc_rel("rel4", w, i, L),
    "bitmap": _enc_bitmap,
    "block": _enc_block,
    "rows": lambda w, i, L: _enc_lines("rows", w, i, L),
    "cols": lambda w, i, L: _enc_lines("cols", w, i, L),
    "pattern": _enc_pattern,
    "hbitmap": _enc_hbitmap,
}


def encode(fmt: str, w_q, intro, n_levels: int, **opts) -> EncodedLayer:
    """Encode one layer (``w_q`` int16 ``rows x cols``, ``intro`` uint8 same shape) in nested format
    `fmt` (one of FORMATS, or ``"auto"``: the smallest total bytes among the formats that can represent
    the mask, hbitmap excepted (see AUTO_FORMATS); block is tried only with ``block_shape``, pattern
    only with ``kernel_size``; ties go to the earlier format in FORMATS). Options: ``block_shape=(br, bc)`` (block), ``kernel_size=(kh, kw)``
    and ``max_patterns`` (pattern). Raises FormatError when `fmt` cannot represent the mask."""
    unknown = set(opts) - _ALL_OPTS
    if unknown:
        raise TypeError(f"encode: unknown options {sorted(unknown)} (known: {sorted(_ALL_OPTS)})")
    w_q, intro, n_levels = _check_inputs(w_q, intro, n_levels)
    if fmt == "auto":
        return _encode_auto(w_q, intro, n_levels, opts)
    if fmt not in _ENCODERS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}, auto")
    mine = {k: v for k, v in opts.items() if k in _OPTS.get(fmt, ())}
    return _ENCODERS[fmt](w_q, intro, n_levels, **mine)


def _encode_auto(w_q, intro, n_levels, opts):
    best, sizes = None, {}
    for fmt in AUTO_FORMATS:
        if fmt == "block" and "block_shape" not in opts:
            continue
        if fmt == "pattern" and "kernel_size" not in opts:
            continue
        try:
            enc = encode(fmt, w_q, intro, n_levels, **opts)
        except FormatError:
            continue
        sizes[fmt] = enc.total_bytes
        if best is None or enc.total_bytes < best.total_bytes:
            best = enc
    assert best is not None  # csr16 represents every mask
    best.candidates = sizes
    return best


def can_encode(fmt: str, w_q, intro, n_levels: int, **opts) -> bool:
    try:
        encode(fmt, w_q, intro, n_levels, **opts)
        return True
    except FormatError:
        return False


def bytes_single_level(fmt: str, w_q, mask, **opts) -> int:
    """Total bytes of one level stored alone (its mask as a one-level nesting) in `fmt` (or "auto").
    Raises FormatError when `fmt` cannot represent that mask."""
    mask = np.asarray(mask).astype(bool)
    return encode(fmt, w_q, mask.astype(np.uint8), 1, **opts).total_bytes
