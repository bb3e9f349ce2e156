"""Nested sparse encoders: every format decodes to w_q * mask_k at every level, reads only its level's
segments (staged-copy contract), and accounts its bytes exactly."""
import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsenest.compiler import formats
from sparsenest.compiler.formats import FormatError, encode

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UNSTRUCTURED = ("csr16", "rel8", "rel4", "bitmap")


def masks(intro, L):
    return [(intro >= 1) & (intro <= k) for k in range(L + 1)]


def random_intro(rng, shape, L, density):
    """Unstructured nesting: kept with probability `density`, introduced at a uniform level."""
    kept = rng.random(shape) < density
    return np.where(kept, rng.integers(1, L + 1, shape), 0).astype(np.uint8)


def random_w(rng, shape):
    return rng.integers(-32768, 32768, shape).astype(np.int16)


def garbled(e, level, rng):
    """A copy of `e` whose segmented arrays hold random bytes outside levels 1..level (what a staged
    working copy holds beyond the active level)."""
    arrays = dict(e.arrays)
    for name, seg in e.segments.items():
        raw = np.frombuffer(e.arrays[name].tobytes(), np.uint8).copy()
        keep = np.zeros(len(raw), bool)
        for r in range(seg.shape[0]):
            keep[seg[r, 0]:seg[r, level]] = True
        raw[~keep] = rng.integers(0, 256, int((~keep).sum()), dtype=np.uint8)
        arrays[name] = raw.view(e.arrays[name].dtype)
    return dataclasses.replace(e, arrays=arrays)


def check_layer(e, w, intro, L, rng):
    rows, cols = w.shape
    assert (e.rows, e.cols, e.n_levels) == (rows, cols, L)
    ms = masks(intro, L)
    for k in range(L + 1):
        expect = np.where(ms[k], w, 0).astype(np.int16)
        got = e.decode(k)
        assert got.dtype == np.int16 and np.array_equal(got, expect), (e.format, k)
        assert e.nnz(k) == int(ms[k].sum())
        kc = e.kernel_counts(k)
        assert kc["macs"] >= e.nnz(k)
        if e.format in ("csr16", "bitmap", "hbitmap", "rows", "cols", "pattern", "block"):
            assert kc["macs"] == e.nnz(k)
        if 1 <= k:
            assert np.array_equal(garbled(e, k, rng).decode(k), expect), (e.format, "staged", k)
    assert all(e.nnz(k) <= e.nnz(k + 1) for k in range(L))
    # byte accounting
    assert set(e.parts) == set(e.arrays) and set(e.parts.values()) <= {"values", "indices", "metadata"}
    assert sum(e.bytes_by_part.values()) == e.total_bytes == sum(a.nbytes for a in e.arrays.values())
    assert e.level_bytes(L) == e.total_bytes and e.level_bytes(0) <= e.level_bytes(1)
    for a in e.arrays.values():
        assert a.ndim == 1 and a.dtype in (np.int16, np.uint8, np.uint16)
    # segments: contiguous across levels and rows, covering exactly each segmented array
    for name, seg in e.segments.items():
        assert name in e.arrays and seg.shape[1] == L + 1
        assert seg[0, 0] == 0 and seg[-1, -1] == e.arrays[name].nbytes
        assert np.all(np.diff(seg, axis=1) >= 0)
        assert np.array_equal(seg[1:, 0], seg[:-1, -1])
    assert "values" in e.segments or e.total_bytes == 0
    # C initializer fields name real arrays
    for fname, val in e.c_fields:
        assert isinstance(val, int) or val in e.arrays, (fname, val)
    assert e.c_struct == f"sn_{e.format}_matrix"
    for name in ("counts", "row_nnz", "row_values"):
        if name in e.arrays:
            a = e.arrays[name]
            assert a.dtype == (np.uint16 if a.size and a.max() > 255 else np.uint8)
            assert dict(e.c_fields)[name + "_u16"] == int(a.dtype == np.uint16)


shapes = st.tuples(st.integers(1, 9), st.integers(1, 70))


@SETTINGS
@given(shape=shapes, L=st.integers(1, 4), density=st.sampled_from([0.0, 0.05, 0.3, 0.8, 1.0]),
       seed=st.integers(0, 2**32 - 1))
def test_unstructured_formats_roundtrip(shape, L, density, seed):
    rng = np.random.default_rng(seed)
    w, intro = random_w(rng, shape), random_intro(rng, shape, L, density)
    for fmt in UNSTRUCTURED:
        check_layer(encode(fmt, w, intro, L), w, intro, L, rng)
    auto = encode("auto", w, intro, L)
    assert auto.total_bytes == min(auto.candidates.values())
    check_layer(auto, w, intro, L, rng)


@SETTINGS
@given(rows=st.integers(1, 5), cols=st.integers(300, 1200), L=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_relative_formats_long_gaps(rows, cols, L, seed):
    """Very sparse wide rows: gaps beyond 255 (rel8) and 15 (rel4) need padding entries."""
    rng = np.random.default_rng(seed)
    w, intro = random_w(rng, (rows, cols)), random_intro(rng, (rows, cols), L, 0.01)
    intro[0] = 0
    intro[0, -1] = L  # a gap > 255 from the segment start
    for fmt in ("rel8", "rel4"):
        e = encode(fmt, w, intro, L)
        check_layer(e, w, intro, L, rng)
        assert e.kernel_counts(L)["macs"] > e.nnz(L)  # padding entries exist and are multiplied


def test_rel_padding_exact():
    w = np.zeros((1, 600), np.int16)
    w[0, 0], w[0, 300], w[0, 599] = 1, 2, 3
    intro = np.zeros((1, 600), np.uint8)
    intro[0, [0, 300]] = 1
    intro[0, 599] = 2
    e = encode("rel8", w, intro, 2)
    # level 1: col 0 (delta 0), pad (255), col 300 (45); level 2: pad, pad (510), col 599 (89)
    assert e.arrays["deltas"].tolist() == [0, 255, 45, 255, 255, 89]
    assert e.arrays["values"].tolist() == [1, 0, 2, 0, 0, 3]
    assert e.arrays["counts"].tolist() == [3, 6]
    assert e.segments["deltas"].tolist() == [[0, 3, 6]]
    e4 = encode("rel4", w, intro, 2)
    assert e4.arrays["counts"].tolist()[0] % 2 == 0 and e4.arrays["counts"].tolist()[1] % 2 == 0
    assert e4.total_bytes == e4.arrays["values"].nbytes + e4.arrays["counts"][-1] // 2 + 2


@SETTINGS
@given(grid=st.tuples(st.integers(1, 4), st.integers(1, 6)), bshape=st.tuples(st.integers(1, 4),
       st.integers(1, 5)), trim=st.tuples(st.integers(0, 3), st.integers(0, 4)), L=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_block_roundtrip(grid, bshape, trim, L, seed):
    rng = np.random.default_rng(seed)
    (gr, gc), (br, bc) = grid, bshape
    blv = random_intro(rng, grid, L, 0.6)
    intro = np.repeat(np.repeat(blv, br, 0), bc, 1)
    rows, cols = max(1, gr * br - min(trim[0], br - 1)), max(1, gc * bc - min(trim[1], bc - 1))
    intro = np.ascontiguousarray(intro[:rows, :cols])  # partial edge blocks
    w = random_w(rng, intro.shape)
    e = encode("block", w, intro, L, block_shape=(br, bc))
    check_layer(e, w, intro, L, rng)
    assert e.segments["values"].shape[0] == -(-rows // br)
    auto = encode("auto", w, intro, L, block_shape=(br, bc))
    assert auto.total_bytes == min(auto.candidates.values()) and "block" in auto.candidates


@SETTINGS
@given(shape=shapes, L=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_rows_cols_roundtrip(shape, L, seed):
    rng = np.random.default_rng(seed)
    w = random_w(rng, shape)
    row_intro = np.repeat(random_intro(rng, (shape[0], 1), L, 0.7), shape[1], 1)
    col_intro = np.repeat(random_intro(rng, (1, shape[1]), L, 0.7), shape[0], 0)
    for fmt, intro in (("rows", row_intro), ("cols", col_intro)):
        e = encode(fmt, w, intro, L)
        check_layer(e, w, intro, L, rng)
        assert e.segments["values"].shape == (1, L + 1)


def pattern_intro(rng, filters, chans, kh, kw, L, n_patterns):
    table = rng.random((n_patterns, kh * kw)) < 0.5
    table[:, 0] = True  # no empty pattern
    pid = rng.integers(0, n_patterns, (filters, chans))
    lv = random_intro(rng, (filters, chans), L, 0.7)
    return (table[pid] * lv[..., None]).reshape(filters, chans * kh * kw).astype(np.uint8)


@SETTINGS
@given(filters=st.integers(1, 6), chans=st.integers(1, 6), k=st.sampled_from([(3, 3), (1, 5), (2, 2)]),
       L=st.integers(1, 3), n_patterns=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_pattern_roundtrip(filters, chans, k, L, n_patterns, seed):
    rng = np.random.default_rng(seed)
    intro = pattern_intro(rng, filters, chans, *k, L, n_patterns)
    w = random_w(rng, intro.shape)
    e = encode("pattern", w, intro, L, kernel_size=k)
    check_layer(e, w, intro, L, rng)
    assert len(e.arrays["pattern_len"]) <= n_patterns


def test_dense_only_with_one_mask(rng):
    w = random_w(rng, (5, 9))
    intro = random_intro(rng, (5, 9), 1, 0.5)
    e = encode("dense", w, intro, 3)  # intro in {0, 1}: every level has the same mask
    check_layer(e, w, intro, 3, rng)
    assert e.segments["values"][:, 1].tolist() == e.segments["values"][:, 3].tolist()
    intro[2, 4] = 2
    with pytest.raises(FormatError, match=r"dense: layer 5x9 .*differ"):
        encode("dense", w, intro, 3)
    assert formats.can_encode("csr16", w, intro, 3) and not formats.can_encode("dense", w, intro, 3)


def test_structured_formats_reject_unstructured_masks(rng):
    w = random_w(rng, (8, 18))
    intro = random_intro(rng, (8, 18), 2, 0.5)
    with pytest.raises(FormatError, match=r"block: layer 8x18: .*2x3 blocks"):
        encode("block", w, intro, 2, block_shape=(2, 3))
    with pytest.raises(FormatError, match=r"rows: layer 8x18: .*rows mix"):
        encode("rows", w, intro, 2)
    with pytest.raises(FormatError, match=r"cols: layer 8x18: .*columns mix"):
        encode("cols", w, intro, 2)
    with pytest.raises(FormatError, match=r"pattern: layer 8x18 \(3x3 kernels\).*different levels"):
        encode("pattern", w, intro, 2, kernel_size=(3, 3))
    with pytest.raises(FormatError, match="not a multiple"):
        encode("pattern", w, intro, 2, kernel_size=(5, 5))
    # one level only: no level mixing, but too many distinct 5x5 patterns for uint8 ids
    big = random_intro(rng, (20, 40 * 25), 1, 0.5)
    with pytest.raises(FormatError, match="distinct kernel patterns"):
        encode("pattern", random_w(rng, big.shape), big, 1, kernel_size=(5, 5))
    with pytest.raises(FormatError, match="block_shape"):
        encode("block", w, intro, 2)
    # a level's mask that is whole blocks at level 2 but not at level 1 (block mixes levels)
    nested = np.ones((4, 4), np.uint8) * 2
    nested[0, 0] = 1
    with pytest.raises(FormatError, match="mix"):
        encode("block", random_w(rng, (4, 4)), nested, 2, block_shape=(2, 2))
    auto = encode("auto", w, intro, 2, block_shape=(2, 3), kernel_size=(3, 3))
    assert set(auto.candidates) == set(UNSTRUCTURED)


def test_bad_inputs(rng):
    w = random_w(rng, (3, 4))
    with pytest.raises(ValueError, match="n_levels"):
        encode("csr16", w, np.full((3, 4), 3, np.uint8), 2)
    with pytest.raises(ValueError, match="unknown format"):
        encode("coo", w, np.ones((3, 4), np.uint8), 1)
    with pytest.raises(TypeError, match="unknown options"):
        encode("csr16", w, np.ones((3, 4), np.uint8), 1, blockshape=(2, 2))
    with pytest.raises(ValueError, match="level 3"):
        encode("csr16", w, np.ones((3, 4), np.uint8), 2).decode(3)


def test_counts_widen_to_uint16(rng):
    w = random_w(rng, (2, 400))
    intro = np.ones((2, 400), np.uint8)
    e = encode("csr16", w, intro, 1)
    assert e.arrays["counts"].dtype == np.uint16 and dict(e.c_fields)["counts_u16"] == 1
    assert e.bytes_by_part == {"values": 1600, "indices": 1600, "metadata": 4}


def test_bytes_single_level(rng):
    w = random_w(rng, (6, 50))
    mask = rng.random((6, 50)) < 0.2
    assert formats.bytes_single_level("csr16", w, mask) == 4 * int(mask.sum()) + 6
    assert formats.bytes_single_level("dense", w, mask) == 600
