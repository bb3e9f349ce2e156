"""Intermittent inference on the host board (compile --intermittent): every runtime FRAM write goes
through the write hook, progress is committed per unit of work, and after power cuts at sampled byte
counts (every one: `make bench-intermittent`) plus reboot and resume the logits equal the golden
model bit for bit."""
import json

import numpy as np
import pytest

from sn_compile_helpers import calib_images, lenet_bundle, random_bundle
from sparsenest import data
from sparsenest.compiler import codegen_lower, golden
from sparsenest.compiler.build import compile_bundle
from sparsenest.targets import powercut
from sparsenest.targets.host import SN_ERR_POWER, SN_ERR_STATE, SN_OK, HostSim

CUTS_PER_LEVEL = 70   # sampled cut points per model and level (a few hundred per model in all)


@pytest.fixture(scope="module")
def images():
    return data.load("mnist", "test").subset(3, seed=5).x


@pytest.fixture(scope="module")
def lenet_cont(tmp_path_factory):
    return compile_bundle(lenet_bundle(), tmp_path_factory.mktemp("cont"), calib=calib_images())


@pytest.fixture(scope="module")
def lenet_int(tmp_path_factory):
    """Direct convolutions (csr16) with their padded copy in SRAM, rebuilt after a reboot."""
    return compile_bundle(lenet_bundle(), tmp_path_factory.mktemp("int"), calib=calib_images(),
                          intermittent=True, fmt="csr16")


@pytest.fixture(scope="module")
def lenet_int_staged(tmp_path_factory):
    """Row units everywhere, im2col convolutions (rel8), staged switching."""
    return compile_bundle(lenet_bundle(), tmp_path_factory.mktemp("int_staged"), calib=calib_images(),
                          intermittent=True, checkpoint="row", fmt="rel8", switching="staged", conv="im2col")


def har_bundle():
    """HAR-Net with narrower layers (conv1d k5 + ReLU + maxpool, x2, global avgpool, linear)."""
    import torch

    from sn_compile_helpers import bundle_from
    from sparsenest.models.harnet import HARNet
    torch.manual_seed(0)
    return bundle_from(HARNet(widths=(8, 16)).eval(), (9, 128), dataset="har", name="harnet-small")


@pytest.fixture(scope="module")
def har(tmp_path_factory):
    x = data.load("har", "test").subset(120, seed=2).x
    info = compile_bundle(har_bundle(), tmp_path_factory.mktemp("har"), calib=x[:100], intermittent=True,
                          checkpoint="row")
    return info, x[100:]


def spilled_ranges(meta) -> dict[str, set]:
    out = set()
    for t in meta["memory"]["tensors"].values():
        if t["tier"] == "fram":
            out.update(range(t["offset"], t["offset"] + t["bytes"]))
    return {"sn_arena_fram": out}


def test_spilled_activations_go_through_the_write_hook(lenet_cont, images):
    """Continuous build: conv1's output spills to FRAM; every byte of it is in the write log (it used
    to bypass the hook), nothing else is written, and a power cut makes sn_infer fail."""
    meta = lenet_cont["meta"]
    assert spilled_ranges(meta)["sn_arena_fram"], "the fixture should spill an activation"
    sim = HostSim(lenet_cont["out_dir"])
    sim.clear_write_log()
    sim.reset_counters()
    sim.infer(images[:1])
    log = sim.write_log()
    written = {}
    for rec in log:
        assert rec.written == rec.requested
        written.setdefault(rec.region, set()).update(range(rec.offset, rec.offset + rec.written))
    assert written == spilled_ranges(meta)
    assert sum(r.written for r in log) == sim.counters()["fram_bytes_written"]
    sim.power_fail_after(1000)
    assert sim.lib.sn_infer(sim.quantize_input(images[0]).ctypes.data,
                            np.zeros(meta["output_len"], np.int16).ctypes.data) == SN_ERR_POWER
    assert sim.power_failed()


def test_planner_keeps_everything_in_fram_without_in_place_steps(lenet_int, har):
    for info in (lenet_int, har[0]):
        meta = info["meta"]
        assert all(t["tier"] == "fram" for t in meta["memory"]["tensors"].values())
        # ... their homes; the layers run on SRAM working copies where the arena has room
        assert set(meta["memory"]["working_copies"]) < set(meta["memory"]["tensors"])
        assert meta["memory"]["working_copies"]
        for lm in meta["layers"].values():
            assert lm["output"] not in lm["inputs"]
        im = meta["intermittent"]
        assert im["extra_fram_bytes"] == (im["fram_arena_bytes"] - im["continuous_fram_arena_bytes"]
                                          + im["table_bytes"])
        assert im["units"] == sum(lm["units"]["units"] for lm in meta["layers"].values())
    # auto: the long convolutions of LeNet commit per output row, the rest per layer
    layers = lenet_int["meta"]["layers"]
    assert layers["conv1"]["conv"] == "direct"
    assert lenet_int["meta"]["intermittent"]["row_layers"] == ["conv1", "conv2"]
    assert layers["conv1"]["units"] == {"granularity": "row", "unit_pos": 28, "units": 28}
    assert layers["fc1"]["units"]["granularity"] == "layer"


def test_random_graph_add_is_not_in_place(tmp_path, monkeypatch):
    """The residual add and the grouped, padded direct conv of a conv1d graph (chunks shorter than
    the row): outputs equal golden at every level, with power cuts; the add writes its own buffer."""
    b, x = random_bundle("conv1d")
    monkeypatch.setattr(codegen_lower, "DIRECT_ACC_BYTES", 96)
    info = compile_bundle(b, tmp_path / "c1d", calib=x[:200], intermittent=True, checkpoint="row",
                          fmt="csr16")
    add = [lm for lm in info["meta"]["layers"].values() if lm["op"] == "add"]
    assert add and add[0]["output"] not in add[0]["inputs"]
    sim = HostSim(info["out_dir"])
    rng = np.random.default_rng(1)
    for level in range(1, 4):
        ref = golden.predict(info["qmodel"], x[200:201], level)[0]
        sim.set_level(level)
        _, total = powercut.bytes_per_inference(sim, x[200])
        rep = powercut.sweep(sim, x[200], level, sorted(rng.choice(total // 2, 40, replace=False) * 2), ref)
        assert rep.ok, rep.mismatches


def test_intermittent_equals_golden_at_every_level(lenet_int, lenet_int_staged, images):
    for info in (lenet_int, lenet_int_staged):
        sim = HostSim(info["out_dir"])
        for level in range(1, 4):
            assert sim.set_level(level) == SN_OK
            assert np.array_equal(sim.infer(images), golden.predict(info["qmodel"], images, level))


@pytest.mark.parametrize("which", ["lenet_int", "lenet_int_staged", "har"])
def test_sampled_power_cuts(which, request, images):
    """A power cut after a sampled number of FRAM bytes, then reboot + resume: bit-exact, every time."""
    info = request.getfixturevalue(which)
    if which == "har":
        info, xs = info
        x = xs[0]
    else:
        x = images[0]
    sim = HostSim(info["out_dir"])
    rng = np.random.default_rng(7)
    for level in range(1, 4):
        ref = golden.predict(info["qmodel"], x[None], level)[0]
        sim.set_level(level)
        _, total = powercut.bytes_per_inference(sim, x)
        cuts = sorted(rng.choice(total // 2, CUTS_PER_LEVEL - 2, replace=False) * 2) + [0, total - 2]
        rep = powercut.sweep(sim, x, level, cuts, ref)
        assert rep.cuts == CUTS_PER_LEVEL and rep.ok, f"level {level}: cut points {rep.mismatches[:10]}"


def test_repeated_power_cuts_during_resume(lenet_int_staged, images):
    """Power fails again and again (small random budgets, so several per layer) until it completes."""
    sim = HostSim(lenet_int_staged["out_dir"])
    rng = np.random.default_rng(3)
    sim.set_level(2)
    ref = golden.predict(lenet_int_staged["qmodel"], images[1:2], 2)[0]
    _, total = powercut.bytes_per_inference(sim, images[1])
    for _ in range(3):
        budgets = list(rng.integers(1, total // 6, size=200))
        out, boots = powercut.run_to_completion(sim, images[1], budgets)
        assert boots >= 6 and np.array_equal(out, ref)


def test_level_switch_mid_inference_applies_to_the_next(lenet_int_staged, lenet_int, images):
    """The level is fixed in the progress record at sn_infer_start; a switch committed meanwhile (also
    a staged one, which rewrites working copies) applies to the next inference."""
    for info in (lenet_int_staged, lenet_int):
        sim = HostSim(info["out_dir"])
        qm = info["qmodel"]
        for a, b in ((3, 1), (1, 3), (2, 3)):
            sim.set_level(a)
            assert sim.infer_start(images[0]) == SN_OK
            sim.power_fail_after(3000)
            assert sim.infer_resume() == SN_ERR_POWER
            sim.reboot()
            assert sim.set_level(b) == SN_OK and sim.get_level() == b
            assert sim.infer_pending() and sim.infer_resume() == SN_OK
            assert np.array_equal(sim.infer_done(), golden.predict(qm, images[:1], a)[0])
            assert np.array_equal(sim.infer(images[1:2]), golden.predict(qm, images[1:2], b))


def test_api_states(lenet_int, lenet_cont, images):
    sim = HostSim(lenet_int["out_dir"])
    sim.reset_device()
    assert not sim.infer_pending() and sim.infer_resume() == SN_ERR_STATE
    sim.power_fail_after(4)  # the input copy fails: nothing is started
    assert sim.infer_start(images[0]) == SN_ERR_POWER
    sim.reboot()
    assert not sim.infer_pending()
    assert sim.infer_start(images[0]) == SN_OK and sim.infer_pending() and sim.infer_done() is None
    assert sim.infer_resume() == SN_OK and not sim.infer_pending() and sim.infer_done() is not None
    cont = HostSim(lenet_cont["out_dir"])  # a continuous build has no progress record
    assert cont.infer_start(images[0]) == SN_ERR_STATE and cont.infer_resume() == SN_ERR_STATE


def test_input_sampled_in_place_into_its_fram_home(lenet_int, images):
    """An application that samples into the input's FRAM home (sn_input_buffer) and passes it to
    sn_infer_start needs no buffer of its own: golden at every level, sampled power cuts included;
    the home is refused while an inference is pending."""
    sim = HostSim(lenet_int["out_dir"])
    rng = np.random.default_rng(11)
    for level in range(1, 4):
        ref = golden.predict(lenet_int["qmodel"], images[2:3], level)[0]
        sim.set_level(level)
        powercut.bytes_per_inference(sim, images[2])    # a completed record: each run below clears it
        _, copied = powercut.bytes_per_inference(sim, images[2])
        _, total = powercut.bytes_per_inference(sim, images[2], in_place=True)
        assert copied - total == 2 * lenet_int["meta"]["input_len"]     # no input copy through the hook
        cuts = sorted(rng.choice(total // 2, 10, replace=False) * 2)
        rep = powercut.sweep(sim, images[2], level, cuts, ref, in_place=True)
        assert rep.cuts == 10 and rep.ok, f"level {level}: cut points {rep.mismatches}"
    assert sim.infer_start(images[0], in_place=True) == SN_OK and sim.infer_pending()
    assert sim.lib.sn_input_buffer() is None    # pending: the home is still read


def test_cli_flags_and_bad_checkpoint(tmp_path):
    from sparsenest import cli
    saved = har_bundle().save(tmp_path / "har.nest")
    assert cli.main(["compile", str(saved), "-o", str(tmp_path / "l"), "--intermittent",
                     "--checkpoint", "layer", "--calib", "50"]) == 0
    meta = json.loads((tmp_path / "l" / "model_meta.json").read_text())
    assert meta["intermittent"]["checkpoint"] == "layer" and meta["intermittent"]["row_layers"] == []
    assert meta["intermittent"]["units"] == meta["n_steps"]
    with pytest.raises(codegen_lower.CodegenError, match="checkpoint"):
        compile_bundle(saved, tmp_path / "x", calib=calib_images()[:50], intermittent=True, checkpoint="tile", build=False)
