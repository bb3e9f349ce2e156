"""LEA engine, compile side: which conv/linear layers run on the FR5994's LEA, their LEA layout, and the
modelled cost of a layer on LEA (`lea_layer_cost`, the one place a chooser asks).

Layouts (runtime_c/kernels_lea/sn_lea_ops.c runs them; lea_golden.py computes what they compute):

* linear: rows in groups of `bh` (a block row), columns in segments of `bw` (a block column). Every
  (bh x bw) block has one intro level (the nested `block` structure; dense is one group of one segment,
  irregular is bh = bw = 1). A group's kept segments are sorted by intro level, so level l keeps a
  prefix of `counts[l-1]` segments. Per group the kernel gathers the kept segments of x into LEA RAM
  once, then per row copies the row's prefix of weights in and runs one msp_mac_q15 (exact 2*sum,
  saturated to 32 bits: the one difference from the CPU path, |sum| >= 2^30 saturates).
* conv (stride 1, no dilation, one group): per output channel the kernel rows (ic, ky) with weights, in
  intro order, are FIR filters over the flattened zero-padded input plane (no im2col): one msp_fir_q15
  per kept kernel row computes that row's contribution at every output position of a band of output
  rows (y = floor(sum / 2^15), saturated to int16), msp_add_q15 sums them (saturating), the CPU
  requantises `(acc16 << 15) + bias` with the layer's shift. A kernel row must have one intro level
  (block 1 x k_w structure); otherwise the layer stays on the CPU.

The timing is a model with cited constants (boards/msp430fr5994/board.toml [lea.*]) until a board
measures it; the CPU glue figures below are this module's assumptions, replaced by simulated cycles
where the chip image runs.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from . import lea_ref

ENGINES = ("cpu", "lea", "auto")
#: LEA RAM a convolution's band may take (bytes of the 4 KB; the rest stays for activations).
CONV_BAND_BYTES = 3072
#: CPU glue per unit: copy of one word into LEA RAM (DMA), one gathered segment (a DMA set-up), one
#: requantised output (with its FRAM store), one DSPLib call's set-up on the CPU. Rounded from `make
#: bench-lea`'s simulated LeNet-5 layers (2026-12-07: ~100 cycles a segment, ~120 an output); the
#: simulator's per-layer cycles are the measurement, these only rank engines before it runs.
CYC_COPY_WORD, CYC_SEGMENT, CYC_REQUANT, CYC_CALL_SETUP = 3, 100, 120, 80
CYC_COPY_OUT = 40   # one output copied out of LEA RAM (ReLU, FRAM store) when LEA requantised it
#: The CPU/MPY32 kernels' cycles per executed MAC (issue #16: about 14 on MPY32), for --engine auto.
CPU_CYCLES_PER_MAC = 14.0
_SEG_SIZES = (16, 8, 4, 2, 1)
#: |bias| of a LEA layer stays below this, so sum + bias (|sum| <= 2^30 after msp_mac_q15, and
#: acc16 * 2^15 for the FIR path) never leaves int32 and golden's int32 saturation is never reached.
MAX_BIAS = 2 ** 30


class LeaError(ValueError):
    """A layer the LEA engine cannot run as asked, or a LEA RAM budget overflow; names the layer."""


def _even(n: int) -> int:
    return n + (n & 1)


def _a4(nbytes: int) -> int:
    return (nbytes + 3) & ~3


@dataclass
class LeaLinear:
    name: str
    rows: int
    cols: int
    bh: int
    bw: int
    groups: list = field(default_factory=list)   # (row0, nrows, segs [col starts], counts [L])
    weights: np.ndarray = None                    # int16: per group, per row, the row's segments in order
    kind: str = "linear"

    @property
    def maxn(self) -> int:
        return max([_even(len(g[2]) * self.bw) for g in self.groups] + [2])

    @property
    def scratch_bytes(self) -> int:
        return 2 * _a4(2 * self.maxn) + 4

    def meta_words(self) -> np.ndarray:
        words = [1, len(self.groups), self.bw, len(self.groups[0][3]) if self.groups else 0, self.maxn]
        for r0, nr, segs, counts in self.groups:
            words += [r0, nr, len(segs), *counts]
        return np.array(words, np.uint16)

    def seg_words(self) -> np.ndarray:
        return np.array([c for g in self.groups for c in g[2]] or [0], np.uint16)


@dataclass
class LeaConv:
    name: str
    cin: int
    in_h: int
    in_w: int
    kh: int
    kw: int
    ph: int
    pw: int
    out_c: int
    out_h: int
    out_w: int
    band: int                                     # output rows per band
    entries: list = field(default_factory=list)   # per oc: [ic * kh + ky] in intro order
    counts: list = field(default_factory=list)    # per oc: kept entries per level
    coeffs: np.ndarray = None                     # int16 [n_entries, taps]: reversed kernel row, 0-padded
    conv1d: bool = False
    shift: int = 15                               # requantisation shift (see lea_golden)
    rq_lea: list = field(default_factory=list)    # per oc, shift >= 15: requantised on LEA (rq_on_lea)
    kind: str = "conv"

    @property
    def hp(self) -> int:
        return self.in_h + 2 * self.ph

    @property
    def wp(self) -> int:
        """Row stride of the padded planes in LEA RAM: even, so every FIR source is 32-bit aligned."""
        return _even(self.in_w + 2 * self.pw)

    @property
    def taps(self) -> int:
        return _even(self.kw)

    def fir_len(self, rows: int) -> int:
        return _even(rows * self.wp)

    def band_elems(self, rows: int) -> tuple[int, int]:
        """(input elements, FIR output elements) of a band of `rows` output rows."""
        return self.cin * (rows + self.kh - 1) * self.wp + self.taps + 2, self.fir_len(rows)

    def scratch_for(self, rows: int) -> int:
        inp, out = self.band_elems(rows)
        return _a4(2 * inp) + 2 * _a4(2 * out) + _a4(2 * self.taps)

    @property
    def scratch_bytes(self) -> int:
        return self.scratch_for(self.band)

    def meta_words(self) -> np.ndarray:
        L = len(self.counts[0]) if self.counts else 0
        words = [2, self.cin, self.in_h, self.in_w, self.kh, self.kw, self.ph, self.pw, self.taps, self.band, L]
        start = 0
        for ents, cnt in zip(self.entries, self.counts):
            words += [start, *cnt]
            start += len(ents)
        return np.array(words, np.uint16)

    def entry_words(self) -> np.ndarray:
        """Entries as ic << 8 | ky (the kernel splits them without a divide)."""
        return np.array([(e // self.kh) << 8 | (e % self.kh) for ents in self.entries for e in ents] or [0],
                        np.uint16)


def _counts(intro_sorted: np.ndarray, L: int) -> list[int]:
    return [int(np.count_nonzero((intro_sorted >= 1) & (intro_sorted <= lv))) for lv in range(1, L + 1)]


def _linear_layout(name: str, w: np.ndarray, intro: np.ndarray, L: int, bh: int, bw: int) -> LeaLinear | None:
    rows, cols = w.shape
    lay = LeaLinear(name, rows, cols, bh, bw)
    parts = []
    for r0 in range(0, rows, bh):
        nr = min(bh, rows - r0)
        blk = intro[r0:r0 + nr].reshape(nr, cols // bw, bw)
        lo, hi = blk.min(axis=(0, 2)), blk.max(axis=(0, 2))
        if np.any(lo != hi):
            return None
        kept = np.flatnonzero(lo >= 1)
        order = kept[np.argsort(lo[kept], kind="stable")]
        lay.groups.append((r0, nr, [int(c) * bw for c in order], _counts(lo[order], L)))
        wr = w[r0:r0 + nr].reshape(nr, cols // bw, bw)[:, order, :].reshape(nr, -1)
        parts.append(wr.reshape(-1))
    lay.weights = np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, np.int16)
    return lay


def linear_layout(name: str, w: np.ndarray, intro: np.ndarray, L: int) -> LeaLinear:
    """The cheapest uniform (bh, bw) layout of a linear layer (bh = bw = 1 always qualifies)."""
    rows, cols = w.shape
    widths = [bw for bw in range(16, 0, -1) if cols % bw == 0]   # e.g. 5: blocks of a 1 x 5 pruning
    cands = [(rows, cols)] + [(bh, bw) for bh in _SEG_SIZES for bw in widths]
    best, best_cost = None, None
    for bh, bw in cands:
        lay = _linear_layout(name, w, intro, L, bh, bw)
        if lay is None:
            continue
        c = lea_layer_cost(lay, L)["cycles"]
        if best is None or c < best_cost:
            best, best_cost = lay, c
    return best


def conv_layout(name: str, node: dict, w: np.ndarray, intro: np.ndarray, L: int, in_shape,
                out_shape) -> tuple[LeaConv | None, str]:
    """(layout, "") or (None, why the convolution stays on the CPU)."""
    if node["op"] != "conv2d" and node["op"] != "conv1d":
        return None, "not a convolution"
    if int(node.get("groups", 1) or 1) != 1:
        return None, "grouped convolution"
    k = node["kernel"]
    stride, dil = node.get("stride") or [1], node.get("dilation") or [1]
    if any(s != 1 for s in stride) or any(d != 1 for d in dil):
        return None, "stride or dilation other than 1"
    pad = node.get("padding") or [0]
    if node["op"] == "conv1d":
        kh, kw, ph, pw = 1, k[0], 0, pad[0]
        cin, in_h, in_w = in_shape[0], 1, in_shape[1]
        out_c, out_h, out_w = out_shape[0], 1, out_shape[1]
    else:
        kh, kw = k
        ph, pw = pad if len(pad) == 2 else (pad[0], pad[0])
        cin, in_h, in_w = in_shape
        out_c, out_h, out_w = out_shape
    if cin > 255 or kh > 255:
        return None, "more than 255 input channels or kernel rows"
    rows_i = intro.reshape(out_c, cin * kh, kw)
    lo, hi = rows_i.min(axis=2), rows_i.max(axis=2)
    if np.any(lo != hi):
        return None, "kernel rows mix levels (needs block 1 x k_w pruning)"
    lay = LeaConv(name, cin, in_h, in_w, kh, kw, ph, pw, out_c, out_h, out_w, band=out_h,
                  conv1d=node["op"] == "conv1d")
    while lay.band > 1 and lay.scratch_bytes > CONV_BAND_BYTES:
        lay.band -= 1
    if lay.scratch_bytes > CONV_BAND_BYTES:
        return None, f"one output row needs {lay.scratch_bytes} bytes of LEA RAM (> {CONV_BAND_BYTES})"
    wr = w.reshape(out_c, cin * kh, kw)
    coeffs = []
    for oc in range(out_c):
        kept = np.flatnonzero(lo[oc] >= 1)
        order = kept[np.argsort(lo[oc][kept], kind="stable")]
        lay.entries.append([int(e) for e in order])
        lay.counts.append(_counts(lo[oc][order], L))
        for e in order:
            h = np.zeros(lay.taps, np.int16)
            h[:kw] = wr[oc, e]
            coeffs.append(h[::-1])   # FIR is a true convolution: coeffs[T-1-k] multiplies src[i+k]
    lay.coeffs = np.array(coeffs, np.int16).reshape(-1, lay.taps) if coeffs else np.zeros((0, lay.taps), np.int16)
    return lay, ""


# ------------------------------------------------------------------------------------------ costs

@functools.lru_cache(maxsize=1)
def _board_costs() -> lea_ref.LeaCosts:
    """The shipped board's LEA constants, read once (a chooser costs thousands of layouts)."""
    return lea_ref.lea_costs()


def lea_layer_cost(lay, level: int, costs: lea_ref.LeaCosts | None = None) -> dict:
    """Modelled cycles of one inference of a LEA layer at `level`: {"cycles", "lea_calls", "lea_macs",
    "lea_cycles", "copy_cycles", "requant_cycles", "glue_cycles"}. LEA parts from lea_ref (board.toml
    constants); CPU parts from this module's CYC_* assumptions."""
    k = costs or _board_costs()
    out = dict(lea_calls=0, lea_macs=0, lea_cycles=0, copy_cycles=0, requant_cycles=0, glue_cycles=0)

    def call(fn, **dims):
        c = lea_ref.cost_of(k, fn, **dims)
        out["lea_calls"] += 1
        out["lea_cycles"] += c.cycles
        out["glue_cycles"] += CYC_CALL_SETUP
        if fn in ("mac_q15", "fir_q15", "matrix_mpy_q15"):
            out["lea_macs"] += c.lea_ops

    if lay.kind == "linear":
        for _, nr, segs, counts in lay.groups:
            kept = counts[level - 1]
            n = _even(kept * lay.bw)
            out["requant_cycles"] += CYC_REQUANT * nr
            if kept == 0:
                continue
            out["copy_cycles"] += CYC_SEGMENT * kept + CYC_COPY_WORD * n * (1 + nr)
            for _ in range(nr):
                call("mac_q15", length=n)
    else:
        for b0 in range(0, lay.out_h, lay.band):
            rows = min(lay.band, lay.out_h - b0)
            inp, flen = lay.band_elems(rows)
            out["copy_cycles"] += CYC_COPY_WORD * inp
            for oc in range(lay.out_c):
                kept = lay.counts[oc][level - 1]
                up = 15 - lay.shift if lay.shift < 15 else 0
                d = lay.shift - 15
                on_lea = kept and (up or (oc < len(lay.rq_lea) and lay.rq_lea[oc]))
                out["requant_cycles"] += (CYC_COPY_OUT if on_lea else CYC_REQUANT) * rows * lay.out_w
                for _ in range(up + 1 if on_lea and up else 0):    # doublings + offset on LEA
                    call("add_q15", length=flen)
                if on_lea and not up:     # (fill when a FIR used part), + r, mpy by 2^(15-d), + q
                    shift_calls = ("fill_q15",) * (kept > 1) + ("offset_q15", "mpy_q15") if d > 0 else ()
                    for fn in shift_calls + ("offset_q15",):
                        call(fn, length=flen)
                for j in range(kept):
                    out["copy_cycles"] += CYC_COPY_WORD * lay.taps
                    call("fir_q15", length=flen, taps=lay.taps)
                    if j:
                        call("add_q15", length=flen)
    out["cycles"] = sum(out[x] for x in ("lea_cycles", "copy_cycles", "requant_cycles", "glue_cycles"))
    return out


def cpu_layer_cycles(macs: int) -> float:
    """The CPU/MPY32 estimate --engine auto compares against (issue #16's ~14 cycles per MAC)."""
    return CPU_CYCLES_PER_MAC * macs


def conv_requant(bias: np.ndarray, shift: int) -> np.ndarray:
    """Per output channel k such that y = sat16((acc16 + k) >> (shift - 15)) (shift >= 15, the C kernel's
    CPU path) or sat16(acc16 * 2^(15 - shift) + k) (1 <= shift < 15; on LEA as saturating doublings, see
    lea_golden) equals golden's requantize(acc16 * 2^15 + bias, shift) exactly (|bias| < MAX_BIAS):
    floor((A * 2^15 + b_hi * 2^15 + b_lo + 2^(s-1)) / 2^s) = floor((A + b_hi + floor((b_lo + 2^(s-1)) / 2^15))
    / 2^(s-15)), and for s < 15 the term A * 2^15 is a multiple of 2^s."""
    b = np.asarray(bias, np.int64)
    if shift >= 15:
        k = (b >> 15) + (((b & 0x7FFF) + (1 << (shift - 1))) >> 15)
    else:
        k = (b + (1 << (shift - 1))) >> shift
    return k.astype(np.int32)


def rq_on_lea(k: int, shift: int) -> bool:
    """Whether a shift >= 15 convolution channel with requantisation constant k requantises on LEA
    (lea_golden.conv; sn_lea_rq_fits in sn_lea_ops.c): floor(k / 2^(shift - 15)) fits msp_offset_q15's
    int16 and the shift by at most 15 is one msp_mpy_q15 by 2^(15 - d)."""
    d = shift - 15
    return 0 <= d <= 15 and -32768 <= (int(k) >> d) <= 32767


def plan_layer(qm, name: str, node: dict, in_shape, out_shape):
    """(layout, "") when the layer can run on LEA, else (None, reason)."""
    q = qm.layers[name]
    if q.bias_q.size and int(np.abs(q.bias_q.astype(np.int64)).max()) >= MAX_BIAS:
        return None, "|bias| >= 2^30 (int32 headroom of the LEA path)"
    if node["op"] != "linear" and q.shift < 1:
        return None, f"requantisation shift {q.shift} < 1"
    if node["op"] != "linear" and q.shift < 15 and int(np.abs(conv_requant(q.bias_q, q.shift)).max(initial=0)) > 32767:
        return None, "bias beyond the output's int16 range (msp_offset_q15 takes an int16)"
    w, intro = q.matrix()
    if node["op"] == "linear":
        return linear_layout(name, w, intro, qm.n_levels), ""
    lay, why = conv_layout(name, node, q.w_q, q.intro, qm.n_levels, in_shape, out_shape)
    if lay is not None:
        lay.shift = q.shift
        lay.rq_lea = [rq_on_lea(k, q.shift) for k in conv_requant(q.bias_q, q.shift)]
    return lay, why


def layer_cycles(qm, name: str, node: dict, in_shape, out_shape) -> tuple[list[int] | None, str]:
    """The one entry point for a per-layer chooser: (modelled LEA cycles per level, "") or (None, why
    the layer cannot run on LEA)."""
    lay, why = plan_layer(qm, name, node, in_shape, out_shape)
    if lay is None:
        return None, why
    return [lea_layer_cost(lay, lv)["cycles"] for lv in range(1, qm.n_levels + 1)], ""
