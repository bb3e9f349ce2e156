"""Every way a compile can fail gives one clear error that names what and where."""
import json

import numpy as np
import pytest
import torch

from sn_compile_helpers import bundle_from, calib_images, lenet_bundle
from sparsenest import models
from sparsenest.bundle import BundleError
from sparsenest.compiler import formats
from sparsenest.compiler.build import compile_bundle
from sparsenest.compiler.planner import PlanError
from sparsenest.train.graph import UnsupportedLayerError


@pytest.fixture(scope="module")
def bundle():
    return lenet_bundle()


def compile_(b, tmp_path, **kw):
    return compile_bundle(b, tmp_path / "out", calib=calib_images(), build=False, **kw)


def test_corrupt_bundle_surfaces_bundle_error(bundle, tmp_path):
    path = bundle.save(tmp_path / "m.nest")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["arrays"]["fc1.weight"]["sha256"] = "0" * 64
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="fc1.weight"):
        compile_bundle(path, tmp_path / "out", calib=calib_images(), build=False)
    with pytest.raises(BundleError):
        compile_bundle(tmp_path / "missing.nest", tmp_path / "out2", calib=calib_images(), build=False)


def test_unsupported_layer(bundle, tmp_path):
    b = lenet_bundle()
    b.manifest["graph"] = json.loads(json.dumps(bundle.graph))
    b.manifest["graph"]["nodes"][1]["op"] = "sigmoid"
    name = b.manifest["graph"]["nodes"][1]["name"]
    with pytest.raises(UnsupportedLayerError, match=f"'{name}'.*sigmoid"):
        compile_(b, tmp_path)


def test_too_big_for_fram_names_layer_and_bytes_over(bundle, tmp_path):
    # find where the cumulative FRAM total crosses a budget, then check the message names that layer
    meta = compile_(bundle, tmp_path)["meta"]
    budget = 9000
    with pytest.raises(PlanError) as e:
        compile_bundle(bundle, tmp_path / "small", calib=calib_images(), build=False,
                       target_overrides={"fram_bytes": budget})
    msg = str(e.value)
    assert "FRAM" in msg and f"{budget} bytes" in msg and "bytes over" in msg
    assert "'fc1'" in msg  # fc1 holds most of lenet5-small's weights
    over = int(msg.split(" bytes over")[0].rsplit(" ", 1)[1])
    assert over > 0
    assert meta["memory"]["fram_total_estimate"] > budget


def test_msp430_target_rejects_too_big_model(tmp_path):
    """Full LeNet-5 at 30% sparsity does not fit the FR5994's directly addressable (lower) FRAM:
    without upper FRAM it is refused naming the layer; by default its largest weights stream from
    upper FRAM in tiles; a model too big for upper FRAM too is refused naming it."""
    torch.manual_seed(0)
    b = bundle_from(models.create("lenet5"), (1, 28, 28))  # untrained is fine: only sizes matter
    with pytest.raises(PlanError, match=r"msp430fr5994 FRAM budget .* layer '(fc1|conv2)'"):
        compile_bundle(b, tmp_path / "big", target="msp430fr5994", calib=calib_images(),
                       target_overrides={"upper_fram_bytes": 0})
    meta = compile_bundle(b, tmp_path / "far", target="msp430fr5994", calib=calib_images(), build=False)["meta"]
    assert meta["memory"]["upper_fram_bytes"] > 0 and meta["far"]["fc1_matrix"]["tiles"] > 1
    assert meta["memory"]["fram_total_estimate"] <= meta["memory"]["fram_budget"]
    with pytest.raises(PlanError, match=r"upper FRAM either"):
        compile_bundle(b, tmp_path / "huge", target="msp430fr5994", calib=calib_images(), build=False,
                       target_overrides={"upper_fram_bytes": 20000})


def test_too_big_for_sram_names_layer_and_bytes_over(bundle, tmp_path):
    with pytest.raises(PlanError) as e:
        compile_(bundle, tmp_path, target_overrides={"sram_bytes": 4096 + 128}, conv="im2col")
    msg = str(e.value)
    # conv2 (4 channels x 5 x 5 patch = 200 bytes + 32 bytes of accumulators) is the first that fails
    assert "layer 'conv2'" in msg and "im2col patch 200 bytes" in msg and "104 bytes over" in msg


def test_no_spill_names_buffer(bundle, tmp_path):
    with pytest.raises(PlanError, match=r"activation buffer 'conv1' \(6272 bytes.*bytes over"):
        compile_(bundle, tmp_path, target_overrides={"allow_spill": False})


@pytest.mark.parametrize("fmt,layer", [("dense", "conv1"), ({"fc1": "rows", "*": "csr16"}, "fc1"),
                                       ({"conv2": "pattern", "*": "csr16"}, "conv2")])
def test_format_cannot_represent_mask(bundle, tmp_path, fmt, layer):
    with pytest.raises(formats.FormatError, match=f"layer '{layer}'"):
        compile_(bundle, tmp_path, fmt=fmt)


def test_unknown_target_and_format(bundle, tmp_path):
    with pytest.raises(ValueError, match="unknown target"):
        compile_(bundle, tmp_path, target="esp32")
    with pytest.raises(ValueError, match="unknown format"):
        compile_(bundle, tmp_path, fmt="coo")


def test_weights_that_would_overflow_are_capped(tmp_path):
    """A layer with huge row sums gets a lower weight exponent: the accumulator cannot overflow."""
    from sparsenest.compiler import quantize
    b = lenet_bundle()
    w = b.arrays["fc1.weight"]
    b.arrays["fc1.weight"] = np.where(w != 0, np.sign(w) * 0.9, 0).astype(np.float32)
    qm = quantize.quantize(b, calib_images())
    q = qm.layers["fc1"]
    row = np.abs(q.w_q.astype(np.int64)).sum(1).max()
    assert 32768 * row + np.abs(q.bias_q.astype(np.int64)).max() < 2 ** 31
