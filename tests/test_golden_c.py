"""The C runtime + format kernels (host build) are bit-identical to the golden integer model, which
computes from w_q * mask_level directly; the golden model tracks the float network on real MNIST."""
import numpy as np
import pytest

from sn_compile_helpers import calib_images, lenet_bundle, random_bundle
from sparsenest import data
from sparsenest.compiler import codegen_lower, golden, quantize
from sparsenest.compiler.build import compile_bundle
from sparsenest.data.calibration import evaluation_set
from sparsenest.targets.host import HostSim

N_IMAGES = 500
FORMATS = ["csr16", "rel8", "rel4", "bitmap", "hbitmap", "auto"]


@pytest.fixture(scope="module")
def bundle():
    return lenet_bundle()


@pytest.fixture(scope="module")
def test_images():
    return data.load("mnist", "test").subset(N_IMAGES, seed=7)


@pytest.fixture(scope="module")
def builds(bundle, tmp_path_factory):
    out = {}
    for fmt in FORMATS:
        out[fmt] = compile_bundle(bundle, tmp_path_factory.mktemp(f"golden_{fmt}"), fmt=fmt, calib=calib_images())
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_c_equals_golden_every_level(builds, test_images, fmt):
    info = builds[fmt]
    assert info["meta"]["kernels"] == ([fmt] if fmt != "auto" else info["meta"]["kernels"])
    sim = HostSim(info["out_dir"])
    qm = info["qmodel"]
    for level in range(1, qm.n_levels + 1):
        assert sim.set_level(level) == 0 and sim.get_level() == level
        c = sim.infer(test_images.x)
        g = golden.predict(qm, test_images.x, level)
        assert c.dtype == np.int16 and c.shape == (N_IMAGES, 10)
        assert np.array_equal(c, g), f"{fmt} level {level}: {int((c != g).sum())} logits differ"


def test_mixed_formats_and_dense_unpruned_layer(tmp_path, test_images):
    """One build mixing formats per layer, with an unpruned layer stored dense."""
    b = lenet_bundle(dense_keys=("fc3.weight",))
    fmt = {"conv1": "bitmap", "conv2": "rel4", "fc1": "rel8", "fc3": "dense", "*": "csr16"}
    info = compile_bundle(b, tmp_path / "mixed", fmt=fmt, calib=calib_images(), switching="staged")
    layers = info["meta"]["layers"]
    assert {n: layers[n]["format"] for n in ("conv1", "conv2", "fc1", "fc2", "fc3")} == \
        {"conv1": "bitmap", "conv2": "rel4", "fc1": "rel8", "fc2": "csr16", "fc3": "dense"}
    sim = HostSim(info["out_dir"])
    for level in (3, 1, 2):
        sim.set_level(level)
        assert np.array_equal(sim.infer(test_images.x[:200]),
                              golden.predict(info["qmodel"], test_images.x[:200], level))


def test_auto_picks_dense_for_unpruned_layer(bundle, tmp_path):
    b = lenet_bundle(dense_keys=("fc3.weight",))
    info = compile_bundle(b, tmp_path / "auto", calib=calib_images(), build=False)
    assert info["meta"]["layers"]["fc3"]["format"] == "dense"


def test_q15_within_0p3_of_float_on_mnist(bundle, builds):
    """Whole MNIST test set through the golden model (= the C build, tested above)."""
    test = data.load("mnist", "test")
    qm = builds["csr16"]["qmodel"]
    graph, weights, intro, L = quantize._bundle_parts(bundle)
    for level in range(1, L + 1):
        fa = quantize.float_accuracy(graph, weights, intro, level, test.x, test.y)
        qa = golden.accuracy(qm, test.x, test.y, level)
        assert abs(qa - fa) <= 0.003, f"level {level}: float {fa:.4f}, Q15 {qa:.4f}"
        assert fa > 0.5  # the fixture learned something


def test_counters_match_format_predictions(builds, test_images):
    info = builds["csr16"]
    sim = HostSim(info["out_dir"])
    for level in (1, 3):
        sim.set_level(level)
        sim.reset_counters()
        sim.infer(test_images.x[:3])
        per_layer = sim.layer_counters()
        for name, lm in info["meta"]["layers"].items():
            if "kernel_counts" not in lm:
                continue
            pos = calls = 1
            if lm["graph_op"].startswith("conv"):
                shape = info["qmodel"].node(name)["shape"]
                pos = calls = int(np.prod(shape[1:]))
                if lm["conv"] == "direct":  # one kernel call per chunk of an output row
                    calls = int(np.prod(shape[1:-1])) * -(-shape[-1] // lm["chunk"])
            pred = lm["kernel_counts"][str(level)]
            table = pred["weight_bytes_read"] - 4 * pred["macs"]  # csr16: counts read per call
            assert per_layer[name]["macs"] == 3 * pos * pred["macs"]
            assert per_layer[name]["weight_bytes_read"] == 3 * (pos * 4 * pred["macs"] + calls * table)
        tot = sim.counters()
        assert tot["macs"] == sum(c["macs"] for c in per_layer.values())
        assert tot["fram_bytes_written"] > 0  # conv1's output spills to FRAM


@pytest.mark.parametrize("kind,fmt", [("conv1d", "auto"), ("conv2d", "auto"), ("conv1d", "csr16"),
                                      ("conv2d", "csr16")])
def test_random_graphs(kind, fmt, tmp_path, monkeypatch):
    """conv1d/grouped conv1d/avgpool1d/global avgpool/add; conv2d with stride+dilation, depthwise,
    avgpool 3x3 (Q15 reciprocal), padded maxpool; staged switching. C == golden at every level, and
    golden tracks the float network. csr16: every convolution runs direct (padded copies, strides,
    dilation, groups, chunks shorter than an output row)."""
    b, x = random_bundle(kind)
    monkeypatch.setattr(codegen_lower, "DIRECT_ACC_BYTES", 96)  # 3-4 positions per call: partial chunks
    info = compile_bundle(b, tmp_path / kind, calib=x[:200], switching="staged", fmt=fmt)
    convs = {n: lm for n, lm in info["meta"]["layers"].items() if lm["op"] == "conv"}
    adds = [lm for lm in info["meta"]["layers"].values() if lm["op"] == "add"]
    assert adds and all(lm["output"] in lm["inputs"] for lm in adds)  # in place: an input dies there
    if fmt == "csr16":
        assert all(lm["conv"] == "direct" for lm in convs.values())
        assert any(info["qmodel"].node(n)["shape"][-1] % lm["chunk"] for n, lm in convs.items())
    qm = info["qmodel"]
    sim = HostSim(info["out_dir"])
    graph, weights, intro, L = quantize._bundle_parts(b)
    for level in range(1, L + 1):
        sim.set_level(level)
        c = sim.infer(x)
        g = golden.predict(qm, x, level)
        assert np.array_equal(c, g), f"{kind} level {level}: {int((c != g).sum())} values differ"
        f = quantize.run_graph_float(graph, weights, x, quantize.level_masks(intro, level))[
            graph["output"]].numpy()
        err = np.abs(g / 2.0 ** qm.output_exp - f).max()
        assert err < 0.02 * np.abs(f).max() + 1e-3, f"golden drifts from float: {err}"


def test_meta_records_float_and_q15_accuracy(bundle, tmp_path):
    info = compile_bundle(bundle, tmp_path / "eval", calib=calib_images(),
                          evaluate=evaluation_set(bundle, 1000), build=False)
    levels = info["meta"]["levels"]
    assert [lv["level"] for lv in levels] == [1, 2, 3]
    for lv in levels:
        assert lv["n_eval"] == 1000 and abs(lv["q15_accuracy"] - lv["float_accuracy"]) <= 0.01
    q = info["meta"]["quantization"]
    assert q["input_exp"] == 13 and "round half" in q["rounding"]
