"""Staged switching with masters in upper FRAM and the switch time model: a small conv + linear model whose
lower-FRAM budget is one byte short, so its largest staged master goes to upper FRAM and switches fill
the working copy from it (DMA on the chip, a tracked FRAM write on the host board).
  - host board: every switch pair writes exactly the rows' missing bytes, a power cut after every byte
    of 1 -> 3 leaves the old level intact, and every level equals golden;
  - our FR5994 simulator: every switch pair and a selector-only walk, every inference equal to golden,
    and the time model (analysis/switch_model.py, board.toml's staged.*) within 15 % of each switch."""
import itertools

import numpy as np
import pytest

from sn_compile_helpers import small_net_bundle
from sparsenest.analysis import switch_model
from sparsenest.analysis.cost import load_platform
from sparsenest.compiler import golden
from sparsenest.compiler.build import compile_bundle
from sparsenest.experiments.bench.switch import WALK, host_run, simulate_run
from sparsenest.targets import firmware, msp430
from sparsenest.targets.host import SN_ERR_POWER, SN_OK, HostSim

UPPER = 1 << 17


@pytest.fixture(scope="module")
def small():
    return small_net_bundle()


def compile_far(bundle, x, out, target):
    """Staged build with a lower-FRAM budget one byte short of what it needs: a master goes far."""
    need = compile_bundle(bundle, out / "probe", target=target, switching="staged", calib=x,
                          build=False)["meta"]["memory"]["fram_total_estimate"]
    info = compile_bundle(bundle, out / "far", target=target, switching="staged", calib=x,
                          build=target == "host",
                          target_overrides={"fram_bytes": need - 1, "upper_fram_bytes": UPPER})
    far = [s for s in info["meta"]["staged_arrays"] if s["far"]]
    assert far and info["meta"]["memory"]["upper_fram_bytes"] > 0
    return info


def test_far_master_switches_on_the_host_board(small, tmp_path):
    bundle, x = small
    info = compile_far(bundle, x, tmp_path, "host")
    qm, meta = info["qmodel"], info["meta"]
    gold = {lv: golden.predict(qm, x, lv) for lv in (1, 2, 3)}
    sim = HostSim(info["out_dir"])
    for a, b in itertools.permutations((1, 2, 3), 2):
        sim.reset_device()
        assert sim.set_level(a) == SN_OK
        sim.clear_write_log()
        assert sim.set_level(b) == SN_OK and sim.held_level() == max(a, b)
        want = switch_model.switch_work(meta["staged_arrays"], a, b)["bytes"] + 2
        assert sum(r.written for r in sim.write_log()) == want, f"{a} -> {b}"
        assert np.array_equal(sim.infer(x), gold[b]), f"{a} -> {b}"
    sim.reset_device()
    assert sim.set_level(3) == SN_OK
    total = sum(r.written for r in sim.write_log())
    for budget in range(total):
        sim.reset_device()
        sim.power_fail_after(budget)
        assert sim.set_level(3) == SN_ERR_POWER
        assert sim.reboot() == SN_OK and (sim.get_level(), sim.held_level()) == (1, 1)
        assert np.array_equal(sim.infer(x[:2]), gold[1][:2]), f"budget {budget}"
        assert sim.set_level(3) == SN_OK and np.array_equal(sim.infer(x[:2]), gold[3][:2]), f"budget {budget}"


def test_time_model_within_15_percent_of_the_simulator(small, tmp_path):
    try:
        msp430.find_toolchain()
    except msp430.ToolchainError as e:
        pytest.skip(f"MSP430 toolchain absent ({e})")
    bundle, x = small
    info = compile_far(bundle, x, tmp_path, "msp430fr5994")
    qm, meta = info["qmodel"], info["meta"]
    fb = firmware.build(tmp_path / "far", tmp_path / "fw", image="fr5994", inputs=x[:1], max_steps=len(WALK))
    host = compile_bundle(bundle, tmp_path / "host", switching="staged", calib=x)
    hsim = HostSim(host["out_dir"])
    platform = load_platform()
    runs = [[a, b] for a, b in switch_model.switch_pairs(3)] + [list(WALK)]
    checked = 0
    for levels in runs:
        sws = simulate_run(fb, qm, levels)   # every inference compared with golden inside
        for sw, nbytes in zip(sws, host_run(hsim, levels)):
            pred = switch_model.predict_staged_switch(meta["staged_arrays"], sw["held"], sw["to"], platform)
            assert nbytes == pred["bytes"] + 2
            assert abs(pred["cycles"] / sw["cycles"] - 1) <= 0.15, (levels, sw, pred)
            checked += 1
    assert checked == 10 + len(WALK)   # the pairs with their climbs to `from`, then the walk
