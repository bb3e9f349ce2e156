"""Staged working copies in upper FRAM: a staged matrix that does not fit lower FRAM streams from upper
FRAM with its working copy there too, and switches fill that copy by DMA to its far address
(codegen_far.place_staged_far, sn_level.c, sn_board_far_write). On the small conv + linear model of
test_switch_model with fc1 far:
  - the planner puts a working copy far only when its master's move is not enough;
  - host board: every switch pair writes exactly the rows' missing bytes (3 -> 1 -> 3 the selector
    only), never a byte shared by the two levels, and every level equals golden; a power cut after
    every byte of the copying switches leaves the old level and held level intact;
  - our FR5994 simulator: the copying pairs and the walk equal golden, the time model within 15 %, and a few
    hundred supply cuts during a far-filling switch (some inside DMA blocks) each leave a consistent
    copy (the held level's bytes equal the master's) and a reboot that finishes the schedule exactly."""
import itertools

import numpy as np
import pytest

from sn_compile_helpers import small_net_bundle, written_bytes
from sparsenest.analysis import switch_model
from sparsenest.analysis.cost import load_platform
from sparsenest.compiler import golden
from sparsenest.compiler.build import compile_bundle
from sparsenest.experiments.bench.switch import WALK, host_run, simulate_run
from sparsenest.targets import firmware, msp430
from sparsenest.targets.host import SN_ERR_POWER, SN_OK, HostSim

UPPER = 1 << 17
FAR = ["fc1"]


@pytest.fixture(scope="module")
def small():
    return small_net_bundle()


@pytest.fixture(scope="module")
def host_far(small, tmp_path_factory):
    bundle, x = small
    info = compile_bundle(bundle, tmp_path_factory.mktemp("far") / "host", switching="staged", calib=x, far=FAR)
    qm = info["qmodel"]
    return info, HostSim(info["out_dir"]), {lv: golden.predict(qm, x, lv) for lv in (1, 2, 3)}


def far_work(meta) -> list[dict]:
    return [s for s in meta["staged_arrays"] if s["work_far"]]


def test_planner_moves_a_working_copy_only_when_masters_are_not_enough(small, tmp_path):
    bundle, x = small
    opts = dict(target="host", switching="staged", calib=x, build=False)
    # the lower-FRAM estimate of the build with fc1 streamed: far "auto" under that budget must get there
    need = compile_bundle(bundle, tmp_path / "probe", far=FAR, **opts)["meta"]["memory"]["fram_total_estimate"]
    meta = compile_bundle(bundle, tmp_path / "auto", **opts,
                          target_overrides={"fram_bytes": need, "upper_fram_bytes": UPPER})["meta"]
    assert {s["layer"] for s in far_work(meta)} == {"fc1"}
    assert all(s["far"] for s in meta["staged_arrays"] if s["layer"] == "fc1")   # its masters too
    for s in far_work(meta):
        assert meta["arrays"][s["work"]]["section"] == "SN_FRAM_FAR"
    assert [v["layer"] for v in meta["far"].values()] == ["fc1"]
    assert meta["memory"]["fram_total_estimate"] <= need
    # with room for the working copies only masters move (no copy far)
    roomy = compile_bundle(bundle, tmp_path / "roomy", **opts,
                           target_overrides={"fram_bytes": need + 8 * 1024, "upper_fram_bytes": UPPER})["meta"]
    assert not far_work(roomy)


def rows_bytes(s, lo: int, hi: int) -> set:
    seg = np.asarray(s["segments"])
    return {i for r in range(seg.shape[0]) for i in range(seg[r, lo], seg[r, hi])}


def test_far_working_copy_switches_on_the_host_board(small, host_far):
    """Every pair from a copy holding `a`, then the selector-only walk: exactly the missing bytes."""
    _, x = small
    info, sim, gold = host_far
    meta = info["meta"]
    assert far_work(meta) and meta["arrays"][far_work(meta)[0]["work"]]["section"] == "SN_FRAM_FAR"
    for a, b in itertools.permutations((1, 2, 3), 2):
        sim.reset_device()
        assert sim.set_level(a) == SN_OK
        held = sim.held_level()
        sim.clear_write_log()
        assert sim.set_level(b) == SN_OK and sim.held_level() == max(held, b)
        got = written_bytes(sim.write_log())
        want = {"sn_level_word": {0, 1}}
        if b > held:
            want.update({s["work"]: bs for s in meta["staged_arrays"] if (bs := rows_bytes(s, held, b))})
        assert got == want, f"{a} -> {b}"
        for s in meta["staged_arrays"]:   # nothing of the weights both levels use
            assert not got.get(s["work"], set()) & rows_bytes(s, 0, min(a, b)), f"{a} -> {b}: {s['work']}"
        assert sim.write_log()[-1].region == "sn_level_word"
        assert np.array_equal(sim.infer(x), gold[b]), f"{a} -> {b}"
    sim.reset_device()
    assert sim.set_level(3) == SN_OK
    for b in (1, 3, 2, 1, 3):
        sim.clear_write_log()
        assert sim.set_level(b) == SN_OK and sim.held_level() == 3
        assert [(r.region, r.written) for r in sim.write_log()] == [("sn_level_word", 2)], f"-> {b}"
        assert np.array_equal(sim.infer(x[:4]), gold[b][:4])


@pytest.mark.parametrize("a,b", [(1, 3), (2, 3)])
def test_power_cut_after_every_byte_of_a_far_fill(small, host_far, a, b):
    """A cut after every possible byte count of a -> b: the reboot finds (a, held a), the retry ends at
    (b, b); at the start, middle and end of each write the levels also compute golden's outputs."""
    _, x = small
    _, sim, gold = host_far
    sim.reset_device()
    assert sim.set_level(a) == SN_OK
    sim.clear_write_log()
    assert sim.set_level(b) == SN_OK
    sizes = [r.written for r in sim.write_log()]
    edges, done = set(), 0
    for n in sizes:
        edges |= {done, done + n // 2, done + n - 1}
        done += n
    for budget in range(done):
        sim.reset_device()
        assert sim.set_level(a) == SN_OK
        sim.power_fail_after(budget)
        assert sim.set_level(b) == SN_ERR_POWER
        assert sim.reboot() == SN_OK and (sim.get_level(), sim.held_level()) == (a, a), f"budget {budget}"
        if budget in edges:
            assert np.array_equal(sim.infer(x[:2]), gold[a][:2]), f"budget {budget}"
        assert sim.set_level(b) == SN_OK and (sim.get_level(), sim.held_level()) == (b, b)
        if budget in edges:
            assert np.array_equal(sim.infer(x[:2]), gold[b][:2]), f"budget {budget}"


@pytest.fixture(scope="module")
def chip_far(small, tmp_path_factory):
    try:
        msp430.find_toolchain()
    except msp430.ToolchainError as e:
        pytest.skip(f"MSP430 toolchain absent ({e})")
    bundle, x = small
    d = tmp_path_factory.mktemp("chipfar")
    info = compile_bundle(bundle, d / "chip", target="msp430fr5994", switching="staged", calib=x, far=FAR)
    assert far_work(info["meta"])
    return info, d


def test_far_working_copy_in_the_simulator_and_time_model(small, host_far, chip_far):
    _, x = small
    info, d = chip_far
    qm, meta = info["qmodel"], info["meta"]
    fb = firmware.build(d / "chip", d / "fw", image="fr5994", inputs=x[:1], max_steps=len(WALK))
    platform = load_platform()
    runs = [[1, 2], [1, 3], [2, 3], list(WALK)]   # the copying pairs, then selector-only switches
    far_rows = 0
    for levels in runs:
        sws = simulate_run(fb, qm, levels, platform)   # every inference compared with golden inside
        for sw, nbytes in zip(sws, host_run(host_far[1], levels)):
            pred = switch_model.predict_staged_switch(meta["staged_arrays"], sw["held"], sw["to"], platform)
            assert nbytes == pred["bytes"] + 2
            assert abs(pred["cycles"] / sw["cycles"] - 1) <= 0.15, (levels, sw, pred)
            far_rows += pred["work"]["far_work_copies"]
    assert far_rows > 0


def _symbol_bytes(dev, name: str, n: int) -> bytes:
    return dev.read(dev.elf.symbols[name].value, n)


def _check_copy(dev, meta) -> tuple[int, int]:
    """The selector's (level, held) and, for every staged array, the held level's rows of the working
    copy equal to the master's bytes (wherever either lives)."""
    w = int.from_bytes(_symbol_bytes(dev, "sn_level_word", 2), "little")
    level, held = w & 0x1F, (w >> 8) & 0x1F
    for s in meta["staged_arrays"]:
        n = meta["arrays"][s["master"]]["bytes"]
        master, work = _symbol_bytes(dev, s["master"], n), _symbol_bytes(dev, s["work"], n)
        seg = np.asarray(s["segments"])
        for r in range(seg.shape[0]):
            lo, hi = seg[r, 0], seg[r, held]
            assert work[lo:hi] == master[lo:hi], f"{s['work']} row {r} at held {held}"
    return level, held


def test_power_cuts_during_a_far_fill_in_the_simulator(small, chip_far):
    """Schedule 1 -> 3 (a fill into the far copy), then 3 -> 1. Cut the supply at 200 random cycles of
    the first switch and in its first DMA blocks: the FRAM then holds (1, 1) or (3, 3) with a copy
    whose held rows equal the masters', and the rebooted image runs the schedule equal to golden."""
    from sparsenest.targets.fr5994sim import Device
    from sparsenest.targets.powercut import device_marks, dma_blocks
    _, x = small
    info, d = chip_far
    qm, meta = info["qmodel"], info["meta"]
    assert meta["initial_level"] == 1
    sched = [firmware.Step(0, 3), firmware.Step(0, 1)]
    fb = firmware.build(d / "chip", d / "fwcut", image="fr5994", inputs=x[:1], schedule=sched)
    gold = {lv: golden.predict(qm, x[:1], lv)[0] for lv in (1, 3)}
    marks = device_marks(fb)
    start, end = marks[0][1], marks[1][1]           # the first step's SWITCH and INFER marks
    assert [m[0] for m in marks[:2]] == [1, 2]
    blocks = dma_blocks(fb, limit=6, symbol="sn_far_copy")
    assert blocks and all(start < a < b <= end for a, b in blocks)
    rng = np.random.default_rng(15)
    cuts = set(rng.integers(start, end, 200).tolist())
    for a, b in blocks:
        cuts |= set(rng.integers(a, b, 4).tolist())
    main, probe = Device(), Device()
    main.load(fb.elf)
    probe.load(fb.elf)
    states = set()
    for k, cut in enumerate(sorted(cuts)):
        while main.counters.cycles < cut:
            st = main.run(max_cycles=cut - main.counters.cycles)
            assert st.reason == "budget", st.reason
        probe.restore(main.snapshot())
        probe.power_off(k + 1)
        state = _check_copy(probe, meta)
        assert state in ((1, 1), (3, 3)), f"cycle {cut}: {state}"
        states.add(state)
        st = probe.run(["__halt"])
        assert st.reason != "error", st.message
        res = probe.elf.symbols["sn_app_results"]
        _, recs = firmware.parse_results(probe.read(res.value, res.size), meta["output_len"])
        assert [r.level for r in recs] == [3, 1], f"cycle {cut}"
        assert np.array_equal(recs[0].out, gold[3]) and np.array_equal(recs[1].out, gold[1]), f"cycle {cut}"
        assert _check_copy(probe, meta) == (1, 3)
    assert states == {(1, 1), (3, 3)}
