"""ReLU6 through the Q15 golden model and the generated C (fused into conv/linear and stand-alone), and
convolutions that write over their input (compiler/inplace.py): a small random depthwise-separable graph,
host C == golden at every level, and the in-place plan needs one activation map less."""
import numpy as np
import pytest
import torch

from sn_compile_helpers import magnitude_intro
from sparsenest.bundle import Bundle
from sparsenest.compiler import golden, quantize
from sparsenest.compiler.build import compile_bundle
from sparsenest.compiler.codegen_lower import lower_layers
from sparsenest.compiler.planner import get_target, plan_memory
from sparsenest.interop.mapping import GraphBuilder
from sparsenest.interop.torch_net import GraphNet
from sparsenest.targets.host import HostSim

SPARSITIES = (0.7, 0.5, 0.2)


def ds_bundle(seed: int = 0) -> tuple[Bundle, np.ndarray]:
    """conv 3x3 s2 -> relu6 -> [depthwise 3x3 (padded) -> relu6 -> pointwise 1x1 -> relu6] x2 -> add
    -> relu6 (stand-alone) -> global avgpool -> linear. Weights scaled so activations pass 6."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder("test")
    x = b.set_input([1, 12, 8])
    h = b.activation(b.conv(x, rng.normal(0, 1.2, (8, 1, 3, 3)), rng.normal(0, 1, 8), stride=[2, 2],
                            pad_before=[1, 1], pad_after=[1, 1], dilation=[1, 1]), "relu6")
    first = h
    for _ in range(2):
        h = b.activation(b.conv(h, rng.normal(0, 0.9, (8, 1, 3, 3)), rng.normal(0, 1, 8), stride=[1, 1],
                                pad_before=[1, 1], pad_after=[1, 1], dilation=[1, 1], groups=8), "relu6")
        h = b.activation(b.conv(h, rng.normal(0, 0.5, (8, 8, 1, 1)), rng.normal(0, 1, 8), stride=[1, 1],
                                pad_before=[0, 0], pad_after=[0, 0], dilation=[1, 1]), "relu6")
    h = b.activation(b.add(h, first), "relu6")
    out = b.linear(b.flatten(b.global_avgpool(h)), rng.normal(0, 0.6, (5, 8)), rng.normal(0, 0.1, 5))
    g = b.graph(out)
    net = GraphNet(g, b.arrays)
    intro = {n["weight"]: magnitude_intro(b.arrays[n["weight"]], SPARSITIES)
             for n in g["nodes"] if n["op"] in ("conv2d", "linear")}
    levels = [{"level": i + 1, "target_sparsity": s, "sparsity": s, "float_accuracy": None}
              for i, s in enumerate(SPARSITIES)]
    bundle = Bundle.from_model(net, intro, graph=g, levels=levels, prune={"method": "magnitude"},
                               dataset={"name": "random"}, train_config={}, model_spec={"name": "graph", "kwargs": {}})
    return bundle, rng.normal(0, 2, (200, 1, 12, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def ds():
    return ds_bundle()


def test_relu6_golden_clamps_and_tracks_float(ds):
    bundle, x = ds
    qm = quantize.quantize(bundle, x)
    relu6 = [n["name"] for n in bundle.graph["nodes"] if n["op"] == "relu6"]
    for lv in (1, 3):
        vals = golden.forward(qm, qm.quantize_input(x), lv)
        hit = 0
        for name in relu6:
            top = quantize.relu6_bound(qm.exps[name])
            assert vals[name].min() >= 0 and vals[name].max() <= top, name
            hit += int((vals[name] == top).sum())
        assert hit > 0, "no activation reached 6: the test would not see a missing clamp"
        ref = GraphNet(bundle.graph, bundle.level_weights(lv))(torch.from_numpy(x)).detach().numpy()
        q = golden.predict(qm, x, lv).astype(np.float64) * 2.0 ** -qm.output_exp
        assert np.abs(q - ref).max() < 0.05 * np.abs(ref).max(), f"level {lv}: Q15 far from float"


def test_relu6_host_c_equals_golden_every_level(ds, tmp_path):
    bundle, x = ds
    info = compile_bundle(bundle, tmp_path / "b", target="host", fmt="csr16", calib=x)
    text = (tmp_path / "b" / "model.c").read_text()
    assert "SN_OP_RELU" in text and ".relu = 2" in text   # a stand-alone and fused ReLU6 steps
    sim = HostSim(info["out_dir"])
    for lv in range(1, len(SPARSITIES) + 1):
        sim.set_level(lv)
        c, g = sim.infer(x), golden.predict(info["qmodel"], x, lv)
        assert np.array_equal(c, g), f"level {lv}: {int((c != g).sum())} logits differ"


def test_depthwise_and_pointwise_run_in_place(ds):
    bundle, x = ds
    qm = quantize.quantize(bundle, x)
    t = get_target("msp430fr5994")
    low_in, _ = lower_layers(qm, fmt="csr16")
    low_out, _ = lower_layers(qm, fmt="csr16", conv_in_place=False)
    kinds = {st.node.get("groups", 1) for st in low_in.steps if st.op == "conv" and st.output == st.inputs[0]}
    assert kinds == {1, 8}, "both the depthwise and the pointwise convolutions should write over their input"
    # the first depthwise conv's input is read again by the add: 3 of the 4 body convolutions in place
    assert len(low_in.tensors) == len(low_out.tensors) - 3
    assert plan_memory(low_in, t).sram_bytes < plan_memory(low_out, t).sram_bytes
    # an im2col depthwise (no padded copy) would read outputs it already wrote: it stays out of place
    low_im, _ = lower_layers(qm, fmt="csr16", conv="im2col")
    assert not any(st.op == "conv" and st.output == st.inputs[0] and st.node["groups"] > 1 for st in low_im.steps)
