"""Intermittent inference on the LEA engine (compile --intermittent --engine lea): a LEA layer is one unit
of work whose op rebuilds its LEA RAM operands (SRAM, lost at a power failure) on every call. On the host
board, power cuts at sampled FRAM byte counts, reboot and resume equal the golden model's LEA arithmetic
bit for bit; in our FR5994 simulator, which holds the CPU for a LEA call's modelled cycles, supply cuts in
the middle of LEA calls (and at random cycles) are resumed by the start-up code, bit-exact too."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from sparsenest.compiler import golden
from sparsenest.compiler.build import compile_bundle
from sparsenest.targets import firmware, powercut
from sparsenest.targets.fr5994sim import Device
from sparsenest.targets.fr5994power import random_cuts
from sparsenest.targets.host import HostSim
from test_lea_engine import L, LeaNet, _bundle

BLOCKS = {"c1.weight": (1, 3), "c2.weight": (1, 3), "fc1.weight": (4, 2), "fc2.weight": "irregular",
          "fc3.weight": "dense"}
LEA_LAYERS = ("c1", "c2", "fc1", "fc2", "fc3")


@pytest.fixture(scope="module")
def lea_bundle():
    return _bundle(LeaNet, (2, 10, 10), BLOCKS, seed=3)


def test_lea_layers_are_whole_units_and_survive_host_power_cuts(lea_bundle, tmp_path):
    b, x = lea_bundle
    info = compile_bundle(b, tmp_path / "m", calib=x, engine="lea", intermittent=True, checkpoint="row")
    layers = info["meta"]["layers"]
    assert all(layers[n]["engine"] == "lea" for n in LEA_LAYERS)
    # even with --checkpoint row, a LEA convolution commits once, when the whole layer is done
    assert all(layers[n]["units"] == {"granularity": "layer", "unit_pos": 0, "units": 1} for n in LEA_LAYERS)
    sim = HostSim(info["out_dir"])
    rng = np.random.default_rng(3)
    for level in range(1, L + 1):
        ref = golden.predict(info["qmodel"], x[:1], level)[0]
        sim.set_level(level)
        _, total = powercut.bytes_per_inference(sim, x[0])
        cuts = sorted(rng.choice(total // 2, 18, replace=False) * 2) + [0, total - 2]
        rep = powercut.sweep(sim, x[0], level, cuts, ref)
        assert rep.cuts == 20 and rep.ok, f"level {level}: cut points {rep.mismatches[:10]}"
    assert ctypes.c_uint16.in_dll(sim.lib, "sn_lea_errors").value == 0


def test_supply_cuts_inside_lea_calls_in_the_device_simulator(lea_bundle, tmp_path):
    b, x = lea_bundle
    info = compile_bundle(b, tmp_path / "m", calib=x, engine="lea", intermittent=True, target="msp430fr5994",
                          build=False)
    model = firmware.load_model_dir(tmp_path / "m")
    level = 2   # the image starts at level 3: the step switches, then infers
    fb = firmware.build(model, tmp_path / "fw", image="fr5994", inputs=x[:1], schedule=[firmware.Step(0, level)])
    ref = golden.predict(info["qmodel"], x[:1], level)[0]

    # the CPU held by a LEA call stops mid-call on a cycle budget; the run's totals do not change
    whole, sliced = Device().load(fb.elf), Device().load(fb.elf)
    assert whole.run().reason == "halt"
    mid_call = 0
    while (st := sliced.run(max_cycles=997)).reason == "budget":
        mid_call += sliced.lea_busy
    assert st.reason == "halt" and mid_call >= 5
    assert sliced.counters.as_dict() == whole.counters.as_dict()

    calls = powercut.lea_calls(fb, limit=6)
    assert len(calls) == 6 and all(hi - lo > 3 for lo, hi in calls)
    marks = powercut.device_marks(fb)
    start, end = marks[0][1], marks[-1][1]
    cuts = [lo + 1 + ((hi - lo - 2) * i) // 2 for lo, hi in calls for i in range(3)]
    cuts += [start + c for c in random_cuts(6, end - start, seed=4)]
    rs = powercut.device_cut_sweep(fb, info["meta"], cuts)
    assert sum(r["in_lea_call"] for r in rs) >= 18
    for r in rs:
        assert np.array_equal(r["recorded"], ref), f"cut at cycle {r['cycle']}"
        if r["in_lea_call"]:    # inside the inference: the start-up code resumed it
            assert r["resumed"] is not None and r["resumed_level"] == level, f"cut at cycle {r['cycle']}"
        if r["resumed"] is not None:
            assert np.array_equal(r["resumed"], ref), f"cut at cycle {r['cycle']}"
