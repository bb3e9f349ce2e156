"""The level-map entropy bound of the analyzer (hand-computed cases) and the hierarchical bitmap format
that comes near it: exact layout and bytes, every level decodes (staged copies too), the bound's gap
against the other formats, and the limits it refuses."""
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from test_formats import SETTINGS, check_layer, random_intro, random_w
from sparsenest.compiler import analyze as A
from sparsenest.compiler import formats
from sparsenest.compiler.formats import FormatError, encode


def geometric_intro(rng, shape, sparsities):
    """i.i.d. nested level map with the given per-level sparsities (sparsest first)."""
    u = rng.random(shape)
    intro = np.zeros(shape, np.uint8)
    for lv in range(len(sparsities), 0, -1):  # densest first, sparser levels overwrite
        intro[u < 1 - sparsities[lv - 1]] = lv
    return intro


def test_bound_hand_computed():
    # 8 weights: 4 pruned, 2 at level 1, 1 at level 2, 1 at level 3 -> p = 1/2, 1/4, 1/8, 1/8
    intro = np.array([[0, 0, 1, 2], [0, 0, 1, 3]], np.uint8)
    b = A.level_map_bound(intro, 3)
    h = 0.5 * 1 + 0.25 * 2 + 0.125 * 3 + 0.125 * 3  # 1.75 bits
    assert b["bits_per_weight"] == pytest.approx(h) and b["bytes"] == pytest.approx(h * 8 / 8)
    # one outcome (all pruned, or all at one level): nothing to encode; unused levels add nothing
    assert A.level_map_bound(np.zeros((3, 5), np.uint8), 4) == {"bits_per_weight": 0.0, "bytes": 0.0}
    assert A.level_map_bound(np.full((3, 5), 2, np.uint8), 4)["bytes"] == 0.0
    # two equally likely outcomes over 40 positions: 1 bit each = 5 bytes
    assert A.level_map_bound(np.tile(np.array([0, 1], np.uint8), 20), 1)["bytes"] == pytest.approx(5.0)


def test_analyzer_reports_bound_and_gap(rng):
    w = rng.normal(size=(40, 64)).astype(np.float32)
    intro = geometric_intro(rng, w.shape, (0.9, 0.75, 0.5))
    r = A.analyze_layer("fc", w, intro, 3)
    counts = np.bincount(intro.ravel(), minlength=4) / intro.size
    want = -sum(p * math.log2(p) for p in counts if p > 0) * intro.size / 8
    assert r["bound"]["bytes"] == pytest.approx(want)
    for e in r["formats"].values():
        assert e["index_meta_bytes"] == e["bytes"]["indices"] + e["bytes"]["metadata"]
        assert e["vs_bound"] == pytest.approx(e["index_meta_bytes"] / want)
    assert r["auto"] != "hbitmap"  # auto is the compiler's choice, which leaves hbitmap out
    rep = A.analyze_layers({"a": (w, intro), "b": (w[:10], intro[:10])}, 3)
    t = json.loads(json.dumps(rep))["totals"]
    assert t["bound_bytes"] == pytest.approx(sum(x["bound"]["bytes"] for x in rep["layers"].values()))
    hb = t["formats"]["hbitmap"]
    assert hb["index_meta_bytes"] == sum(x["formats"]["hbitmap"]["index_meta_bytes"]
                                         for x in rep["layers"].values())
    assert hb["vs_bound"] == pytest.approx(hb["index_meta_bytes"] / t["bound_bytes"])
    text = A.format_table(rep)
    assert "level-map entropy bound" in text and "hbitmap" in text


def test_hbitmap_layout_by_hand():
    # 2 x 10, L = 3. Row 0 keeps cols 1 (L1), 4 (L3), 9 (L2); row 1 keeps cols 0 (L2), 2 (L1).
    intro = np.zeros((2, 10), np.uint8)
    intro[0, [1, 4, 9]] = [1, 3, 2]
    intro[1, [0, 2]] = [2, 1]
    w = (np.arange(20, dtype=np.int16) + 1).reshape(2, 10)
    e = encode("hbitmap", w, intro, 3)
    a = e.arrays
    # stage 3 (union) per row: row 0 bits 1, 4, 9 -> 0x12, 0x02; row 1 bits 0, 2 -> 0x05, 0x00
    # stage 2 over the union (0,1) (0,4) (0,9) (1,0) (1,2): kept at level 2? 1 0 1 1 1 -> 0b11101
    # stage 1 over level 2's (0,1) (0,9) (1,0) (1,2): kept at level 1? 1 0 0 1 -> 0b1001
    assert a["bitmap"].tolist() == [0x12, 0x02, 0x05, 0x00, 0b11101, 0b1001]
    assert a["stage_off"].tolist() == [5, 4, 0]
    # values level-major: level 1 (0,1) (1,2), level 2 (0,9) (1,0), level 3 (0,4)
    assert a["values"].tolist() == [2, 13, 10, 11, 5]
    assert a["level_start"].tolist() == [0, 2, 4]
    assert e.bytes_by_part == {"values": 10, "indices": 6, "metadata": 12}
    assert e.segments["values"].tolist() == [[0, 4, 8, 10]]
    for k in range(4):
        assert np.array_equal(e.decode(k), np.where((intro >= 1) & (intro <= k), w, 0))
    assert e.kernel_counts(1) == {"macs": 2, "weight_bytes_read": 6 + 4 + 2 + 4}
    assert e.kernel_counts(3) == {"macs": 5, "weight_bytes_read": 6 + 4 + 6 + 10}


@SETTINGS
@given(shape=st.tuples(st.integers(1, 9), st.integers(1, 70)), L=st.integers(1, 8),
       density=st.sampled_from([0.0, 0.05, 0.3, 0.8, 1.0]), seed=st.integers(0, 2**32 - 1))
def test_hbitmap_roundtrip_and_bytes(shape, L, density, seed):
    rng = np.random.default_rng(seed)
    w, intro = random_w(rng, shape), random_intro(rng, shape, L, density)
    e = encode("hbitmap", w, intro, L)
    check_layer(e, w, intro, L, rng)  # every level, and a staged copy with garbage past the level
    rows, cols = shape
    stages = rows * -(-cols // 8) + sum(-(-int(((intro >= 1) & (intro <= t + 1)).sum()) // 8)
                                        for t in range(1, L))
    assert e.bytes_by_part == {"values": 2 * int((intro > 0).sum()), "indices": stages, "metadata": 4 * L}
    assert all(e.level_bytes(k) == e.total_bytes - 2 * int((intro > k).sum()) for k in range(1, L + 1))


def test_hbitmap_limits(rng):
    w = random_w(rng, (3, 4))
    intro = np.full((3, 4), 9, np.uint8)
    with pytest.raises(FormatError, match="at most 8"):
        encode("hbitmap", w, intro, 9)
    big = np.ones((300, 300), np.uint8)  # 90,000 values do not fit level_start's 16 bits
    with pytest.raises(FormatError, match="16 bits"):
        encode("hbitmap", np.ones((300, 300), np.int16), big, 1)
    assert "hbitmap" in formats.FORMATS and "hbitmap" not in formats.AUTO_FORMATS
    assert encode("auto", w, random_intro(rng, (3, 4), 3, 0.5), 3).format != "hbitmap"


@pytest.mark.parametrize("shape, sparsities", [((120, 400), (0.9, 0.75, 0.5)),
                                               ((84, 120), (0.8, 0.6, 0.3)),
                                               ((64, 288), (0.95, 0.9, 0.8, 0.6))])
def test_hbitmap_within_15_percent_of_bound(rng, shape, sparsities):
    """On i.i.d. level maps with roughly halving levels hbitmap's index + metadata is within 15 % of the
    bound; the per-level bitmap and the relative/absolute index formats are not."""
    w = rng.normal(size=shape).astype(np.float32)
    intro = geometric_intro(rng, shape, sparsities)
    r = A.analyze_layer("fc", w, intro, len(sparsities), formats=("csr16", "rel4", "bitmap", "hbitmap"))
    f = r["formats"]
    assert f["hbitmap"]["vs_bound"] <= 1.15
    assert min(f[x]["vs_bound"] for x in ("csr16", "rel4", "bitmap")) > 1.15


def test_hbitmap_mpy32_kernel_in_fr5994_simulator(rng, tmp_path):
    """The chip image's MPY32 kernel (assembly for three levels, C otherwise) in our FR5994 simulator:
    every level bit-exact with numpy (checked inside _run_harness), on rows with empty union bytes,
    stage bytes shared across rows and an empty level."""
    import shutil

    from sparsenest.experiments.bench.bound import _run_harness
    from sparsenest.targets import firmware
    if shutil.which("clang-19") is None:
        pytest.skip("clang-19 (MSP430 target) not installed")
    cases = []
    for i, (shape, sparsities) in enumerate([((9, 37), (0.9, 0.75, 0.5)), ((5, 70), (0.95, 0.6, 0.2)),
                                             ((6, 20), (0.7, 0.4)), ((4, 33), (0.9, 0.8, 0.8, 0.3)),
                                             ((3, 17), (0.5,))]):
        intro = geometric_intro(rng, shape, sparsities)
        intro[0, :] = 0  # an empty row
        w = random_w(rng, shape)
        cases.append(firmware.KernelCase(f"h{i}", encode("hbitmap", w, intro, len(sparsities)),
                                         rng.integers(-9000, 9000, shape[1]).astype(np.int16),
                                         rng.integers(-2 ** 20, 2 ** 20, shape[0]).astype(np.int32)))
    cycles = _run_harness(cases, tmp_path / "hb")
    assert len(cycles) == sum(c.enc.n_levels + 1 for c in cases)
    assert all(cycles[("h0", k)] <= cycles[("h0", k + 1)] for k in range(3))
