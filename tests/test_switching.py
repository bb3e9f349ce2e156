"""Level switching on the host board: writes tracked byte by byte, power loss injected at every write."""
import itertools

import numpy as np
import pytest

from sn_compile_helpers import calib_images, lenet_bundle, written_bytes
from sparsenest import data
from sparsenest.compiler import golden
from sparsenest.compiler.build import compile_bundle
from sparsenest.targets.host import SN_ERR_POWER, SN_OK, HostSim

MIXED = {"conv1": "bitmap", "conv2": "rel4", "fc1": "csr16", "fc2": "hbitmap", "*": "rel8"}
SELECTOR = "sn_level_word"


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    info = compile_bundle(lenet_bundle(), tmp_path_factory.mktemp("staged"), fmt=MIXED,
                          switching="staged", calib=calib_images())
    return info, HostSim(info["out_dir"])


@pytest.fixture(scope="module")
def resident(tmp_path_factory):
    info = compile_bundle(lenet_bundle(), tmp_path_factory.mktemp("resident"), fmt=MIXED,
                          switching="resident", calib=calib_images())
    return info, HostSim(info["out_dir"])


@pytest.fixture(scope="module")
def images():
    return data.load("mnist", "test").subset(40, seed=11).x


@pytest.fixture(scope="module")
def golden_out(staged, images):
    qm = staged[0]["qmodel"]
    return {lv: golden.predict(qm, images, lv) for lv in range(1, qm.n_levels + 1)}


def predicted_bytes(meta, held: int, b: int) -> dict[str, set]:
    """What a switch to b must write when the working copy holds level `held`: for b > held each row's
    [seg[r, held], seg[r, b]), plus the selector; for b <= held the selector only."""
    out = {SELECTOR: {0, 1}}
    if b > held:
        for s in meta["staged_arrays"]:
            seg = np.asarray(s["segments"])
            bs = set()
            for r in range(seg.shape[0]):
                bs.update(range(seg[r, held], seg[r, b]))
            if bs:
                out[s["work"]] = bs
    return out


def shared_bytes(meta, a: int, b: int) -> dict[str, set]:
    """Bytes of weights (and their indices) used by both levels: per row [seg[r, 0], seg[r, min])."""
    lo = min(a, b)
    out = {}
    for s in meta["staged_arrays"]:
        seg = np.asarray(s["segments"])
        out[s["work"]] = {i for r in range(seg.shape[0]) for i in range(seg[r, 0], seg[r, lo])}
    return out


def check_switch(sim, meta, a, b):
    held = sim.held_level()
    assert sim.get_level() == a and held >= a
    sim.clear_write_log()
    assert sim.set_level(b) == SN_OK and sim.get_level() == b
    assert sim.held_level() == max(held, b)
    log = sim.write_log()
    got = written_bytes(log)
    assert got == predicted_bytes(meta, held, b), f"switch {a} -> {b} holding {held}"
    for region, shared in shared_bytes(meta, a, b).items():
        assert not (got.get(region, set()) & shared), f"switch {a} -> {b} wrote shared bytes of {region}"
    assert sum(r.written for r in log) == sum(len(v) for v in got.values())  # no byte written twice
    assert log[-1].region == SELECTOR  # the commit is the last write


def test_staged_all_level_pairs(staged, images, golden_out):
    info, sim = staged
    L = info["qmodel"].n_levels
    for a, b in itertools.permutations(range(1, L + 1), 2):
        sim.reset_device()
        assert sim.set_level(a) == SN_OK
        check_switch(sim, info["meta"], a, b)
        assert np.array_equal(sim.infer(images), golden_out[b]), f"outputs after {a} -> {b}"


def test_staged_random_sequence_of_1000_switches(staged, images, golden_out):
    info, sim = staged
    meta, L = info["meta"], info["qmodel"].n_levels
    rng = np.random.default_rng(5)
    for i in range(1000):
        if i % 50 == 0:  # a fresh image now and then, so switches up have something to copy
            sim.reset_device()
            cur = sim.get_level()
        nxt = int(rng.choice([lv for lv in range(1, L + 1) if lv != cur]))
        check_switch(sim, meta, cur, nxt)
        cur = nxt
        if i % 50 == 49:
            assert np.array_equal(sim.infer(images[:10]), golden_out[cur][:10])


def test_resident_writes_only_the_selector(resident, images, golden_out):
    info, sim = resident
    assert info["meta"]["staged_arrays"] == [] and sim.info()["work_bytes"] == 0
    L = info["qmodel"].n_levels
    sim.reset_device()
    assert (sim.get_level(), sim.held_level()) == (L, L)  # codegen's initial selector word, decoded in C
    for a, b in itertools.permutations(range(1, L + 1), 2):
        sim.reset_device()
        sim.set_level(a)
        sim.clear_write_log()
        assert sim.set_level(b) == SN_OK
        log = sim.write_log()
        assert [(r.region, r.offset, r.written) for r in log] == [(SELECTOR, 0, 2)]
        assert np.array_equal(sim.infer(images), golden_out[b])
    sim.clear_write_log()
    assert sim.set_level(b) == SN_OK and sim.write_log() == []  # same level: nothing written


@pytest.mark.parametrize("a,b", [(1, 3), (2, 3), (1, 2)])
def test_power_loss_at_every_write(staged, images, golden_out, a, b):
    """Power fails before each write of a staged switch (and in the middle of it): the switch reports
    SN_ERR_POWER, and after reboot sn_init() finds a level (the old one) whose outputs equal golden;
    a later switch completes correctly."""
    info, sim = staged
    sim.reset_device()
    sim.set_level(a)
    sim.clear_write_log()
    assert sim.set_level(b) == SN_OK
    sizes = [r.written for r in sim.write_log()]
    budgets = []
    done = 0
    for n in sizes:
        budgets += [done] + ([done + (n // 2 & ~1)] if n >= 4 else [])
        done += n
    budgets.append(done - 1)  # the selector word torn: it must not half-commit
    for budget in budgets:
        sim.reset_device()
        sim.set_level(a)
        sim.power_fail_after(budget)
        assert sim.set_level(b) == SN_ERR_POWER
        assert sim.power_failed()
        assert sim.reboot() == SN_OK
        lv = sim.get_level()
        assert lv in (a, b)
        assert lv == a  # the selector is the last write, and it never went through here
        assert np.array_equal(sim.infer(images[:10]), golden_out[lv][:10]), f"budget {budget}"
        assert sim.set_level(b) == SN_OK
        assert np.array_equal(sim.infer(images[:10]), golden_out[b][:10]), f"budget {budget} then {b}"
    # with exactly enough power the switch commits
    sim.reset_device()
    sim.set_level(a)
    sim.power_fail_after(done)
    assert sim.set_level(b) == SN_OK and sim.get_level() == b


def test_power_loss_during_sparser_switch(staged, images, golden_out):
    info, sim = staged
    sim.reset_device()
    sim.set_level(3)
    sim.power_fail_after(0)
    assert sim.set_level(1) == SN_ERR_POWER
    assert sim.reboot() == SN_OK and sim.get_level() == 3
    assert np.array_equal(sim.infer(images[:10]), golden_out[3][:10])


def test_materialised_switches_write_the_selector_only(staged, images, golden_out):
    """Once the working copy holds the densest level, 3 -> 1 -> 3 (and any other walk) copies nothing:
    the selector word is the only write, and every level still computes golden's outputs."""
    info, sim = staged
    L = info["qmodel"].n_levels
    sim.reset_device()
    assert sim.held_level() == 1
    assert sim.set_level(L) == SN_OK and sim.held_level() == L
    for b in (1, L, 2, 1, 2, L):
        sim.clear_write_log()
        assert sim.set_level(b) == SN_OK and sim.get_level() == b and sim.held_level() == L
        assert [(r.region, r.offset, r.written) for r in sim.write_log()] == [(SELECTOR, 0, 2)], f"-> {b}"
        assert np.array_equal(sim.infer(images), golden_out[b]), f"outputs at {b}"


#: From the image's level 1: two copies (1 -> 2, then 2 -> 3 holding 2), the rest selector writes.
CUT_SEQUENCE = (2, 1, 3, 1, 2, 3, 1, 3)


def test_power_cut_after_every_byte_of_a_switch_sequence(staged, images, golden_out):
    """Power fails after every possible number of bytes written during the sequence (a failing write
    keeps the whole words that fit; the selector word is all-or-nothing). After each cut the reboot
    finds exactly the state before the failed switch (level and held level); retrying it and finishing
    the sequence ends at the last level holding the densest. Where a cut lands at the start, middle or
    end of a write (about a thousand of the ~22,000 cuts), the recovered level and the final one also
    compute golden's outputs (the bytes a switch may write are checked for every switch above)."""
    info, sim = staged
    assert info["qmodel"].n_levels == 3
    x = images[:2]
    sim.reset_device()
    for b in CUT_SEQUENCE:
        assert sim.set_level(b) == SN_OK
    sizes = [r.written for r in sim.write_log()]
    total, edges, done = sum(sizes), set(), 0
    for n in sizes:
        edges |= {done, done + 1, done + n // 2, done + n - 1}
        done += n
    for budget in range(total + 1):
        infer = budget in edges
        sim.reset_device()
        sim.power_fail_after(budget)
        cuts = 0
        for b in CUT_SEQUENCE:
            before = (sim.get_level(), sim.held_level())
            rc = sim.set_level(b)
            if rc == SN_ERR_POWER:
                cuts += 1
                assert sim.reboot() == SN_OK
                assert (sim.get_level(), sim.held_level()) == before, f"budget {budget}, switch to {b}"
                if infer:
                    assert np.array_equal(sim.infer(x), golden_out[before[0]][:2]), f"budget {budget}"
                rc = sim.set_level(b)
            assert rc == SN_OK, f"budget {budget}, switch to {b}"
            assert (sim.get_level(), sim.held_level()) == (b, max(before[1], b)), f"budget {budget}"
        assert cuts == (budget < total)
        if infer:
            sim.reboot()  # with no cut the budget is still armed: the inference's FRAM writes need power
            assert np.array_equal(sim.infer(x), golden_out[CUT_SEQUENCE[-1]][:2]), f"budget {budget}"
