"""The LEA engine as a candidate of the cost-driven choice (compiler/choose.py): `compile --engine auto
--objective time` puts each layer on the engine with the least predicted cost, the build equals the golden
model bit for bit at every level with CPU and LEA layers mixed; the chooser never picks a LEA layout whose
operands overflow LEA RAM nor a set of layouts that overflows FRAM; --engine cpu never sees a LEA
candidate; the analyzer's break-even sparsities per engine."""
import numpy as np
import pytest

from test_lea_engine import LeaNet, _bundle, _check_every_level
from sparsenest.compiler import choose, engine_breakeven
from sparsenest.compiler.build import compile_bundle
from sparsenest.compiler.planner import get_target
from sparsenest.compiler.quantize import quantize

BLOCKS = {"c1.weight": (1, 3), "c2.weight": (1, 3), "fc1.weight": (4, 2), "fc2.weight": "irregular",
          "fc3.weight": "dense"}


@pytest.fixture(scope="module")
def net():
    b, x = _bundle(LeaNet, (2, 10, 10), BLOCKS)
    qm = quantize(b, x)
    return b, x, qm


def test_engine_auto_picks_per_layer_and_is_bit_exact(net, tmp_path):
    b, x, _ = net
    info = compile_bundle(b, tmp_path / "auto", calib=x, engine="auto", objective="time")
    ch, layers = info["choice"], info["meta"]["layers"]
    engines = ch.engines()
    assert set(engines.values()) == {"cpu", "lea"}          # this net: c1 on LEA, the rest on the CPU
    for name, d in ch.layers.items():
        assert layers[name]["engine"] == engines[name]
        assert d["runner_up"] is not None and d["chosen"].score("time", ch.level_weights) <= \
            d["runner_up"].score("time", ch.level_weights)
        if engines[name] == "cpu":
            assert layers[name]["format"] == d["chosen"].format
    text = choose.format_choice(ch)
    assert "lea/kernel-rows/fir" in text and "cpu/" in text
    _check_every_level(info, x)


def test_lea_ram_and_fram_budgets_are_respected(net):
    b, x, qm = net
    layers = choose.layers_from_qmodel(qm)
    free = choose.choose(layers, "time", engines=("cpu", "lea"))
    lea = {n for n, e in free.engines().items() if e == "lea"}
    need = max(free.layers[n]["chosen"].lea_ram_bytes for n in lea)
    # LEA RAM below what the LEA layouts need: no LEA candidate survives
    tight = choose.choose(layers, "time", engines=("cpu", "lea"), lea_ram_bytes=need - 1)
    assert all(o.lea_ram_bytes < need for d in tight.layers.values() for o in d["options"])
    biggest = [n for n in lea if free.layers[n]["chosen"].lea_ram_bytes == need]
    assert biggest and all(tight.engines()[n] == "cpu" for n in biggest)
    # FRAM: a budget between the smallest and the fastest layouts; the planner (with the LEA arrays) agrees
    host = get_target("host")
    from dataclasses import replace
    over0 = choose.planner_fits(qm, replace(host, fram_bytes=0))
    small = choose.choose(layers, "bytes", engines=("cpu", "lea"))
    fast_need = over0(free.formats(), free.conv_methods(), free.engines())
    small_need = over0(small.formats(), small.conv_methods(), small.engines())
    assert small_need < fast_need
    tgt = replace(host, fram_bytes=(small_need + fast_need) // 2)
    ch = choose.choose(layers, "time", engines=("cpu", "lea"), fits=choose.planner_fits(qm, tgt))
    assert ch.fallbacks and ch.over_bytes == 0
    assert choose.planner_fits(qm, tgt)(ch.formats(), ch.conv_methods(), ch.engines()) == 0


def test_engine_cpu_has_no_lea_candidates(net):
    _, _, qm = net
    layers = choose.layers_from_qmodel(qm)
    ch = choose.choose(layers, "time")
    assert set(ch.engines().values()) == {"cpu"}
    assert all(o.engine == "cpu" for d in ch.layers.values() for o in d["options"])


def test_breakeven_per_engine(net):
    """Sparser is cheaper on both engines, so each break-even lies in [0, 0.95] or is None (never); the dense
    costs are the engines' own predictions for the full mask."""
    _, _, qm = net
    layers = choose.layers_from_qmodel(qm)
    res = engine_breakeven.engine_breakeven([ly for ly in layers if ly.name in ("c1", "fc1")])
    for name, r in res["layers"].items():
        for eng in ("cpu", "lea"):
            assert r[eng] is None or 0.0 <= r[eng] <= engine_breakeven.MAX_SPARSITY, (name, eng)
        assert r["dense_lea"] > 0 and r["dense_cpu"] > 0
    text = engine_breakeven.format_breakeven(res)
    assert "c1" in text and "fc1" in text


def test_crossing_interpolates():
    grid = np.array([0.0, 0.5, 1.0])
    assert engine_breakeven._crossing(grid, np.array([10.0, 6.0, 2.0]), 8.0) == pytest.approx(0.25)
    assert engine_breakeven._crossing(grid, np.array([10.0, 9.0, 9.0]), 8.0) is None
    assert engine_breakeven._crossing(grid, np.array([7.0, 6.0, 2.0]), 8.0) == 0.0
