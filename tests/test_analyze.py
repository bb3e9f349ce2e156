"""Storage analysis: break-even sparsities, union vs separate footprints, SONIC comparison, table."""
import json

import numpy as np
import pytest

from sparsenest.compiler import analyze as A
from sparsenest.compiler import formats as F
from sparsenest.compiler.formats import encode


def nested_intro(rng, shape, densities):
    """Unstructured nesting with cumulative densities per level (sparsest first)."""
    u = rng.random(shape)
    intro = np.zeros(shape, np.uint8)
    for k, d in reversed(list(enumerate(densities, start=1))):
        intro[u < d] = k
    return intro


def even_mask(rows, cols, nnz):
    """The analyzer's model: nonzeros spread evenly over rows, evenly inside each row."""
    mask = np.zeros((rows, cols), bool)
    q, rem = divmod(nnz, rows)
    for r in range(rows):
        n = q + (r < rem)
        if n:
            mask[r, (np.arange(n) * cols) // n] = True
    return mask


@pytest.mark.parametrize("fmt, expect", [("csr16", 0.5), ("bitmap", 0.0625), ("rel8", 1 / 3), ("rel4", 0.2)])
def test_break_even_large_layer(fmt, expect):
    assert A.break_even_sparsity(fmt, 256, 4096) == pytest.approx(expect, abs=0.002)


@pytest.mark.parametrize("fmt", ["csr16", "rel8", "rel4", "bitmap"])
@pytest.mark.parametrize("rows, cols", [(7, 50), (3, 700), (20, 30)])
def test_break_even_is_exact_for_the_encoder(fmt, rows, cols):
    """At the break-even nnz the real encoder is smaller than dense, one nonzero more it is not."""
    s = A.break_even_sparsity(fmt, rows, cols)
    nnz = round((1 - s) * rows * cols)
    w = np.ones((rows, cols), np.int16)
    for n in (nnz, nnz - 1, max(nnz // 3, 0)):
        m = even_mask(rows, cols, n)
        got = encode(fmt, w, m.astype(np.uint8), 1).total_bytes
        assert got == int(A.single_level_bytes(fmt, rows, cols, n)) and got < 2 * rows * cols
    if nnz < rows * cols:
        m = even_mask(rows, cols, nnz + 1)
        assert encode(fmt, w, m.astype(np.uint8), 1).total_bytes >= 2 * rows * cols


def test_break_even_structured():
    # kept rows: u * (2*cols + 2) + 1 < 2*rows*cols  ->  at most rows - 1 rows of 120
    assert A.break_even_sparsity("rows", 120, 400) == pytest.approx(1 / 120)
    # 4x4 blocks: 34 bytes per 16 weights + 16 counts < 8192  ->  at most 240 of 256 blocks
    assert A.break_even_sparsity("block", 64, 64, block_shape=(4, 4)) == pytest.approx(16 / 256)
    assert A.break_even_sparsity("dense", 10, 10) is None
    assert A.break_even_sparsity("pattern", 16, 150, kernel_size=(5, 5), pattern_len=4) > 0.8


def test_union_vs_separate(rng):
    w = rng.normal(size=(40, 120)).astype(np.float32)
    intro = nested_intro(rng, w.shape, [0.05, 0.1, 0.2])
    r = A.analyze_layer("fc", w, intro, 3, formats=("csr16",))
    nnz = r["nnz"]
    assert nnz == [int(((intro >= 1) & (intro <= k)).sum()) for k in (1, 2, 3)]
    assert r["union_bytes"] == 4 * nnz[-1] + 40 * 3  # uint8 counts, rows x levels
    assert r["separate"]["total"] == sum(4 * n + 40 for n in nnz)
    # every level shares its mask: storing levels apart costs L copies, once costs one
    same = (intro > 0).astype(np.uint8)
    r1 = A.analyze_layer("fc", w, same, 3, formats=("dense",))
    assert r1["separate"]["total"] == 3 * r1["union_bytes"] == 3 * 2 * 40 * 120
    r2 = A.analyze_layer("fc", w, same, 3)
    assert {s["total"] for s in r2["separate"]["levels"]} == {r2["separate"]["total"] // 3}


def test_model_totals_and_table(rng):
    layers = {
        "conv": (rng.normal(size=(8, 4, 3, 3)), None),
        "fc1": (rng.normal(size=(60, 256)), nested_intro(rng, (60, 256), [0.03, 0.06, 0.12])),
        "fc2": (rng.normal(size=(10, 60)), np.ones((10, 60), np.uint8)),
    }
    # conv: a PCONV mask (two patterns, whole kernels per level)
    table = np.array([[1, 1, 0, 1, 1, 0, 0, 0, 0], [0, 1, 0, 1, 1, 1, 0, 1, 0]], np.uint8)
    lv = nested_intro(rng, (8, 4), [0.3, 0.6, 0.9])
    pid = rng.integers(0, 2, (8, 4))
    layers["conv"] = (layers["conv"][0], (table[pid] * lv[..., None]).reshape(8, 4, 3, 3))
    rep = A.analyze_layers(layers, 3)
    json.dumps(rep)
    t = rep["totals"]
    assert t["union_bytes"] == sum(r["formats"][r["auto"]]["total"] for r in rep["layers"].values())
    assert t["union_bytes"] < t["separate_bytes"] and t["union_bytes"] < t["dense_bytes"]
    assert t["level_bytes"][-1] == t["union_bytes"] and t["level_bytes"] == sorted(t["level_bytes"])
    conv = rep["layers"]["conv"]
    assert "pattern" in conv["formats"] and conv["shape"] == [8, 36]
    assert rep["layers"]["fc2"]["auto"] == "dense"
    for r in rep["layers"].values():
        assert sum(e["auto"] for e in r["formats"].values()) == 1
        assert r["formats"][r["auto"]]["total"] == min(e["total"] for e in r["formats"].values()
                                                       if e["format"] in F.AUTO_FORMATS)
        for e in r["formats"].values():
            assert sum(e["bytes"].values()) == e["total"]
    text = A.format_table(rep)
    assert "fc1: 60x256" in text and "* " in text and "SONIC" in text and "each level stored alone" in text
    assert A.format_table(rep["layers"]["fc1"]).startswith("fc1")


@pytest.mark.parametrize("shape, densities", [((64, 200), [0.02, 0.035, 0.05]), ((32, 1024), [0.05])])
def test_index_bytes_vs_sonic_at_5_percent(rng, shape, densities):
    # (wide rows split into sparser per-level segments need rel8 padding: not part of this claim)
    intro = nested_intro(rng, shape, densities)
    r = A.analyze_layer("fc", rng.normal(size=shape), intro, len(densities))
    nnz = r["nnz"][-1]
    assert r["sonic"] == {"index_bytes": 2 * nnz, "total_bytes": 4 * nnz}
    rel8 = r["formats"]["rel8"]
    assert rel8["bytes"]["indices"] <= r["sonic"]["index_bytes"] / 2
    assert rel8["index_vs_sonic"] <= 0.5
    assert r["formats"]["csr16"]["index_vs_sonic"] == 1.0


def test_analyze_bundle(rng):
    from sparsenest.bundle import INTRO_PREFIX, Bundle

    graph = {"input": {"name": "x", "shape": [2, 16]}, "output": "fc",
             "nodes": [{"name": "conv", "op": "conv1d", "inputs": ["x"], "shape": [4, 16],
                        "weight": "conv.weight", "bias": None},
                       {"name": "fc", "op": "linear", "inputs": ["conv"], "shape": [3],
                        "weight": "fc.weight", "bias": "fc.bias"}]}
    arrays = {"conv.weight": rng.normal(size=(4, 2, 3)).astype(np.float32),
              "fc.weight": rng.normal(size=(3, 64)).astype(np.float32),
              "fc.bias": np.zeros(3, np.float32)}
    arrays[INTRO_PREFIX + "conv.weight"] = np.repeat(nested_intro(rng, (4, 2, 1), [0.5, 1.0]), 3, axis=2)
    arrays[INTRO_PREFIX + "fc.weight"] = nested_intro(rng, (3, 64), [0.1, 0.3])
    manifest = {"graph": graph, "levels": [{"level": 1}, {"level": 2}]}
    rep = A.analyze_bundle(Bundle(manifest, arrays))
    assert list(rep["layers"]) == ["conv", "fc"] and rep["n_levels"] == 2
    assert "pattern" in rep["layers"]["conv"]["formats"]  # whole 1x3 kernels per level
    assert rep["layers"]["conv"]["shape"] == [4, 6]
