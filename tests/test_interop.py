"""Bring your own model: TFLite/ONNX import, the graph network, TFLite export, MLPerf Tiny's MFCC front end.

Real models: the MLPerf Tiny KWS DS-CNN and anomaly-detection autoencoder (../shared/data/models/mlperf-tiny).
Real inputs: tests/data/kws_mlperf_reference.npz holds 8 clips of the Speech Commands v0.02 test set (raw
int16 samples) and their MFCCs computed by TensorFlow 2.21 itself with MLPerf Tiny's parameters, made once
by tests/data/make_kws_mlperf_reference.py (its docstring says how).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sparsenest.data import kws_mlperf
from sparsenest.interop.mapping import UnsupportedOpError
from sparsenest.interop.torch_net import bundle_network

pytest.importorskip("ai_edge_litert.interpreter")

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent.parent / "shared" / "data" / "models" / "mlperf-tiny"
REF = np.load(HERE / "data" / "kws_mlperf_reference.npz")
needs_models = pytest.mark.skipif(not (MODELS / "kws_ref_model_float32.tflite").exists(),
                                  reason="MLPerf Tiny models not in ../shared/data/models/mlperf-tiny")


def _interpret(model, x: np.ndarray) -> np.ndarray:
    """ai-edge-litert's built-in reference kernels on a float batch (an int8 model's input quantised and
    output dequantised with the model's own parameters)."""
    from sparsenest.experiments.bench.kws import interpret
    return interpret(model, x, reference_kernels=True)


def _ours(bundle, x_nchw: np.ndarray, level: int | None = None, int8_rounding: bool = False) -> np.ndarray:
    """Our float network; int8_rounding: round every tensor to the int8 grid the manifest records (what
    the int8 interpreter computes, up to its fixed-point requantisation)."""
    fq = None
    if int8_rounding:
        q = bundle.manifest["source"]["quantization"]
        lo, hi = (0, 255) if q["activation_dtype"] == "uint8" else (-128, 127)
        fq = {k: (v["scale"][0], v["zero_point"][0], lo, hi) for k, v in q["activations"].items()}
    with torch.no_grad():
        net = bundle_network(bundle, level)
        x = torch.from_numpy(np.ascontiguousarray(x_nchw, np.float32))
        y = net.run(x, fq)[bundle.graph["output"]]
    if bundle.manifest["source"]["output_activation"] == "softmax":
        y = torch.softmax(y, 1)
    return y.numpy()


# -- MFCC front end ------------------------------------------------------------------------------

def test_mlperf_mfcc_matches_tensorflow_reference():
    waves = np.stack([kws_mlperf.scale_waveform(p[:n]) for p, n in zip(REF["pcm"], REF["lengths"])])
    got = kws_mlperf.mfcc(waves)
    assert got.shape == (8, 49, 10)
    # float64 here vs TensorFlow's float32: measured max difference 5.2e-5 on values up to ~40
    np.testing.assert_allclose(got, REF["mfcc"], rtol=0, atol=2e-4)


def test_mlperf_waveform_scaling_is_by_the_maximum_not_the_magnitude():
    pcm = np.array([-2000, 1000, 500], np.int16)
    w = kws_mlperf.scale_waveform(pcm)
    assert w[:3].tolist() == [-2.0, 1.0, 0.5] and w.shape == (16000,) and not w[3:].any()


# -- TFLite import ---------------------------------------------------------------------------------

@needs_models
def test_import_kws_float_reproduces_interpreter():
    from sparsenest.interop.tflite_import import import_tflite
    model = MODELS / "kws_ref_model_float32.tflite"
    b = import_tflite(model)
    ops = [n["op"] for n in b.graph["nodes"]]
    assert ops.count("conv2d") == 9 and ops[-1] == "linear" and "global_avgpool" in ops
    x = REF["mfcc"][:, :, :, None]  # NHWC, one channel: the same bytes as the graph's [N, 1, 49, 10]
    ref, ours = _interpret(model, x), _ours(b, x.transpose(0, 3, 1, 2))
    # This "float32" file stores its CONV_2D filters as int8 (dynamic-range quantisation): the interpreter
    # quantises activations on the fly, so agreement is to that rounding, not to float epsilon.
    assert np.abs(ref - ours).max() < 0.06
    assert (ref.argmax(1) == ours.argmax(1)).all()
    assert [kws_mlperf.CLASSES[i] for i in ours.argmax(1)] == [p.split("/")[0] for p in REF["names"]]
    assert b.manifest["source"]["quantization"]["weights"] == ["float", "per-tensor"]


@needs_models
def test_import_kws_int8_dequantises_with_the_model_scales():
    from sparsenest.interop.tflite_import import import_tflite
    model = MODELS / "kws_ref_model_int8.tflite"
    b = import_tflite(model)
    q = b.manifest["source"]["quantization"]
    assert q["input"]["zero_point"] == [83] and abs(q["input"]["scale"][0] - 0.5847029) < 1e-6
    x = REF["mfcc"][:, :, :, None]
    ref = _interpret(model, x)
    ours = _ours(b, x.transpose(0, 3, 1, 2), int8_rounding=True)
    assert (ref.argmax(1) == ours.argmax(1)).all()
    # output step 1/256; measured: mean 0.3 steps, max 8 steps (the interpreter's fixed-point
    # requantisation and average pooling round differently from float rounding to the same grid)
    assert np.abs(ref - ours).mean() < 1 / 256 and np.abs(ref - ours).max() < 0.05


def _ad_inputs() -> np.ndarray:
    """Real-ish autoencoder inputs: log-mel windows of the 8 real clips (bench_kws.ad_features)."""
    from sparsenest.experiments.bench.kws import ad_features
    return ad_features(REF["pcm"])


@needs_models
@pytest.mark.parametrize("name,tol", [("ad01_fp32", 1e-4), ("ad01_int8", None)])
def test_import_autoencoder_reproduces_interpreter(name, tol):
    from sparsenest.interop.tflite_import import import_tflite
    model = MODELS / f"{name}.tflite"
    b = import_tflite(model)
    assert [n["op"] for n in b.graph["nodes"]].count("linear") == 10
    x = _ad_inputs()
    ref, ours = _interpret(model, x), _ours(b, x, int8_rounding=tol is None)
    if tol is not None:
        np.testing.assert_allclose(ours, ref, rtol=0, atol=tol * max(1.0, np.abs(ref).max()))
    else:  # int8, every tensor rounded to the recorded grid: measured exactly equal
        step = b.manifest["source"]["quantization"]["output"]["scale"][0]
        assert np.abs(ref - ours).mean() < 0.5 * step and np.abs(ref - ours).max() <= 4 * step + 1e-6


def _tanh_model() -> bytes:
    from sparsenest.interop.tflite_export import _Writer
    w = _Writer()
    x = w.tensor([1, 4], "features")
    y = w.tensor([1, 4], "squashed_output")
    w.op("TANH", [x], [y])
    return w.finish([x], [y], "unsupported op")


def test_unsupported_tflite_op_is_named_with_its_tensor(tmp_path):
    from sparsenest.cli import main
    from sparsenest.interop.tflite_import import import_tflite
    path = tmp_path / "tanh.tflite"
    path.write_bytes(_tanh_model())
    with pytest.raises(UnsupportedOpError, match=r"op TANH \(output tensor 'squashed_output'\)"):
        import_tflite(path)
    assert main(["import", str(path), "-o", str(tmp_path / "t.nest")]) == 2
    assert not (tmp_path / "t.nest").exists()


def test_garbage_file_is_refused(tmp_path, capsys):
    from sparsenest.cli import main
    path = tmp_path / "bad.tflite"
    path.write_bytes(b"not a flatbuffer at all")
    assert main(["import", str(path), "-o", str(tmp_path / "b.nest")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a TFLite flatbuffer" in err and len(err.splitlines()) == 1


# -- ONNX round trip -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lenet_round_trip(tmp_path_factory):
    """A PyTorch LeNet-5 (seeded random weights), its ONNX file by the project's export, and the import."""
    from sparsenest import models
    from sparsenest.bundle import Bundle
    from sparsenest.interop.onnx_export import export_level
    from sparsenest.interop.onnx_import import import_onnx
    from sparsenest.train.graph import extract_graph

    tmp = tmp_path_factory.mktemp("lenet")
    torch.manual_seed(0)
    net = models.create("lenet5").eval()
    graph = extract_graph(net, (1, 28, 28))
    keys = [n["weight"] for n in graph["nodes"] if n["op"] in ("conv2d", "linear")]
    b = Bundle.from_model(net, {k: np.ones(net.state_dict()[k].shape, np.uint8) for k in keys}, graph=graph,
                          levels=[{"level": 1, "target_sparsity": 0.0, "sparsity": 0.0, "float_accuracy": None}],
                          prune={"method": "none", "mode": "none"}, dataset={"name": "mnist"}, train_config={},
                          model_spec={"name": "lenet5", "kwargs": {}})
    onnx_path = export_level(b, 1, tmp / "lenet.onnx")
    return net, graph, onnx_path, import_onnx(onnx_path)


def test_pytorch_onnx_import_round_trip(lenet_round_trip):
    """PyTorch -> the project's ONNX export -> import -> bundle computes what PyTorch computes."""
    from sparsenest import data
    net, graph, _, imported = lenet_round_trip
    x = data.load("mnist", "test").subset(32, seed=1).x
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
        got = bundle_network(imported)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert [n["op"] for n in imported.graph["nodes"]] == [n["op"] for n in graph["nodes"]]


def test_train_from_an_imported_bundle(lenet_round_trip, tmp_path):
    """`sparsenest import` + `train --from`: nested levels of a network that has no zoo class."""
    from sparsenest.bundle import Bundle
    from sparsenest.cli import main
    _, _, onnx_path, _ = lenet_round_trip
    src, out = tmp_path / "lenet.nest", tmp_path / "lenet3.nest"
    assert main(["import", str(onnx_path), "-o", str(src), "--dataset", "mnist"]) == 0
    assert main(["train", "--from", str(src), "--levels", "0.8,0.5", "--scope", "layer", "--epochs-retrain", "1",
                 "--train-limit", "512", "-o", str(out)]) == 0
    b = Bundle.load(out)
    assert b.manifest["model"]["name"] == "graph" and b.manifest["source"]["format"] == "onnx"
    assert [round(lv["sparsity"], 2) for lv in b.levels] == [0.8, 0.5]
    assert all(lv["float_accuracy"] is not None for lv in b.levels)
    assert b.manifest["train_config"]["dense_test_accuracy"] is not None
    intro = b.intro["layer0.weight"]
    assert ((intro == 1).mean() < (intro >= 1).mean())  # level 1 inside level 2
    assert main(["train", "--from", str(src), "--levels", "0.5", "-o", str(out)]) == 2  # never overwrites


# -- TFLite export ---------------------------------------------------------------------------------

@needs_models
def test_export_tflite_every_level_matches_our_float_model(tmp_path):
    from sparsenest.bundle import Bundle
    from sparsenest.interop.tflite_export import export_level_tflite
    from sparsenest.interop.tflite_import import import_tflite
    from sparsenest.interop.torch_net import GraphNet
    from sparsenest.train.nested import derive_intro

    src = import_tflite(MODELS / "kws_ref_model_float32.tflite")
    net = GraphNet(src.graph, src.weights)
    intro = derive_intro(net, [0.6, 0.3], "irregular", scope="layer")  # no-retrain levels, no data needed
    levels = [{"level": i + 1, "target_sparsity": s, "sparsity": s, "float_accuracy": None}
              for i, s in enumerate([0.6, 0.3])]
    b = Bundle.from_model(net, intro, graph=src.graph, levels=levels, prune={"method": "irregular"},
                          dataset=src.dataset, train_config={}, model_spec={"name": "graph", "kwargs": {}})
    b.manifest["source"] = src.manifest["source"]
    x = REF["mfcc"][:, None]
    for lv in (1, 2):
        data = export_level_tflite(b, lv, tmp_path / f"level{lv}.tflite")
        ref = _interpret(data, x.transpose(0, 2, 3, 1))
        ours = _ours(b, x, lv)
        np.testing.assert_allclose(ref, ours, rtol=0, atol=1e-5)
        assert (ref.argmax(1) == ours.argmax(1)).all()
    # the levels really differ: the sparse level's weights are zero where the dense level's are not
    assert not np.allclose(_ours(b, x, 1), _ours(b, x, 2))
    for lv in (1, 2):  # int8, calibrated on these clips: measured mean |diff| 0.003, max 0.046
        data = export_level_tflite(b, lv, calib=x)
        ref, ours = _interpret(data, x.transpose(0, 2, 3, 1)), _ours(b, x, lv)
        assert (ref.argmax(1) == ours.argmax(1)).all()
        assert np.abs(ref - ours).mean() < 0.02 and np.abs(ref - ours).max() < 0.15
        assert len(data) < 0.6 * (tmp_path / f"level{lv}.tflite").stat().st_size  # int8 weights
