"""Intermittent inference in our MSP430FR5994 simulator: the chip image of an intermittent build,
the supply cut at random cycles inside a level switch and an inference (DMA-free CPU kernels) and
around every progress commit; after the reboot the firmware's start-up resumes the inference, whose
logits (read from FRAM) and the schedule's recorded logits equal the golden model bit for bit. A
small sample of `make bench-intermittent`'s cuts; the one-pass sweep equals cutting a fresh device."""
import numpy as np

from sparsenest import data
from sparsenest.compiler import golden
from sparsenest.compiler.build import compile_bundle
from sparsenest.compiler.codegen_far import FAR_MATRIX_CODE_BYTES
from sparsenest.targets import firmware, powercut
from sparsenest.targets.fr5994power import random_cuts
from test_intermittent import har_bundle

CUTS = 12


def test_random_power_cuts_in_the_device_simulator(tmp_path):
    x = data.load("har", "test").subset(110, seed=2).x
    info = compile_bundle(har_bundle(), tmp_path / "m", target="msp430fr5994", build=False, calib=x[:100],
                          intermittent=True, checkpoint="row")
    model = firmware.load_model_dir(tmp_path / "m")
    level = 2   # the image starts at level 3: the step switches, then infers
    fb = firmware.build(model, tmp_path / "fw", image="fr5994", inputs=x[100:101],
                        schedule=[firmware.Step(0, level)])
    ref = golden.predict(info["qmodel"], x[100:101], level)[0]
    marks = powercut.device_marks(fb)
    assert [m for m, _, _ in marks] == [1, 2, 3]
    start, end = marks[0][1], marks[2][1]
    commits = [c["cycle"] for c in powercut.progress_changes(fb, 0, 64)[:-1]]
    assert len(commits) >= info["meta"]["intermittent"]["units"] // 2      # most commits seen one by one
    cuts = [start + c for c in random_cuts(CUTS, end - start, seed=5)] + [c - 31 for c in commits[::3]]
    rs = powercut.device_cut_sweep(fb, info["meta"], cuts)
    assert sum(r["in_switch"] for r in rs) >= 1 or start + 1000 > marks[1][1]
    resumed = 0
    for r in rs:
        assert np.array_equal(r["recorded"], ref), f"cut at cycle {r['cycle']}"
        if r["resumed"] is not None:
            resumed += 1
            assert r["resumed_level"] == level and np.array_equal(r["resumed"], ref), f"cut at {r['cycle']}"
    assert resumed >= len(rs) // 2
    for r in rs[:: len(rs) // 2]:   # the sweep's cut equals a fresh device cut at the same cycle
        d = powercut.device_cut(fb, info["meta"], r["cycle"], seed=7)
        assert np.array_equal(d["recorded"], r["recorded"]) and (d["resumed"] is None) == (r["resumed"] is None)


def test_power_cuts_inside_dma_blocks(tmp_path):
    """With a lower-FRAM budget that sends the linear layer's weights to upper FRAM, the inference
    streams them by DMA; supply cuts inside those blocks (the simulator moves a block one transfer per
    step) leave the runtime exact: the start-up code resumes and both outputs equal the golden model."""
    x = data.load("har", "test").subset(101, seed=2).x
    b = har_bundle()
    opts = dict(target="msp430fr5994", build=False, calib=x[:100], intermittent=True)
    fits = compile_bundle(b, tmp_path / "fits", **opts)["meta"]["memory"]["fram_total_estimate"]
    info = compile_bundle(b, tmp_path / "m", target_overrides={"fram_bytes": fits - 1}, **opts)
    mem = info["meta"]["memory"]
    # lower FRAM counts each streamed matrix's tile code, which the fixed code reserve leaves out
    assert info["meta"].get("far") and mem["upper_fram_bytes"] > FAR_MATRIX_CODE_BYTES
    assert mem["fram_total_estimate"] == fits - mem["upper_fram_bytes"] + FAR_MATRIX_CODE_BYTES * len(info["meta"]["far"])
    model = firmware.load_model_dir(tmp_path / "m")
    level = model.n_levels
    fb = firmware.build(model, tmp_path / "fw", image="fr5994", inputs=x[100:101],
                        schedule=[firmware.Step(0, level)])
    ref = golden.predict(info["qmodel"], x[100:101], level)[0]
    # the first block is the app's copy of the input from upper FRAM, before the inference starts: a cut
    # there restarts the schedule with nothing to resume; the others stream weights inside the inference
    input_copy, *blocks = powercut.dma_blocks(fb, limit=5)
    assert blocks
    r = powercut.device_cut_sweep(fb, info["meta"], [input_copy[0] + 1])[0]
    assert r["in_dma_block"] and r["resumed"] is None and np.array_equal(r["recorded"], ref)
    cuts = [lo + 1 + ((hi - lo - 1) * i) // 3 for lo, hi in blocks for i in range(3)]
    rs = powercut.device_cut_sweep(fb, info["meta"], cuts)
    assert all(r["in_dma_block"] for r in rs)
    for r in rs:
        assert np.array_equal(r["recorded"], ref), f"cut at cycle {r['cycle']}"
        assert r["resumed"] is not None and np.array_equal(r["resumed"], ref), f"cut at cycle {r['cycle']}"
