"""Generated C a person can read: named buffers instead of arena arithmetic, layer descriptors that list
the fields their op reads, no empty switch; and the host board still equals golden bit for bit."""
from __future__ import annotations

import re

import numpy as np
import pytest

from sn_compile_helpers import calib_images, lenet_bundle, random_bundle
from sparsenest import data
from sparsenest.compiler import golden
from sparsenest.compiler.build import compile_bundle
from sparsenest.compiler.codegen_place import OP_FIELDS
from sparsenest.targets.host import HostSim

EMPTY_SWITCH = re.compile(r"switch\s*\([^)]*\)\s*\{\s*(default:\s*break;\s*)?\}")
DESCRIPTOR = re.compile(r"/\* (\d+) ([^*]*?):.*?\*/\s*\{(.*?)\n    \},", re.S)
BUFFER_FIELDS = ("in0", "in1", "out", "acc", "patch", "pad")


def _descriptors(c: str) -> dict[str, dict[str, str]]:
    """Layer name -> {field: C expression} from sn_layers."""
    table = c[c.index("sn_layers["):c.index("};", c.index("sn_layers["))]
    return {name: dict(f.strip().lstrip(".").split(" = ") for f in body.replace("\n", " ").split(",")
                       if f.strip())
            for _, name, body in DESCRIPTOR.findall(table)}


def _check_readable(out_dir, meta) -> dict[str, dict[str, str]]:
    c = (out_dir / "model.c").read_text()
    assert "SN_AT(" not in c and not EMPTY_SWITCH.search(c)
    desc = _descriptors(c)
    assert list(desc) == meta["steps"]
    buffers = set(meta["buffers"])
    for name, fields in desc.items():
        op = meta["layers"][name]["op"]
        allowed = {f for line in OP_FIELDS[op] for f in line}
        assert set(fields) <= allowed, (name, set(fields) - allowed)
        for f in BUFFER_FIELDS:
            if f in fields:
                assert fields[f] in buffers, (name, f, fields[f])
        for b in buffers & {fields.get(f) for f in BUFFER_FIELDS}:
            assert f"#define {b} " in c
    code = [ln for ln in c.splitlines() if not re.match(r"\s+-?\d", ln)]   # array data aside
    assert max(map(len, code)) <= 110, max(code, key=len)
    return desc


def _equals_golden(info, x):
    sim = HostSim(info["out_dir"])
    for level in range(1, info["meta"]["n_levels"] + 1):
        sim.set_level(level)
        assert np.array_equal(sim.infer(x), golden.predict(info["qmodel"], x, level)), level


@pytest.mark.parametrize("opts", [{"fmt": {"conv1": "bitmap", "conv2": "rel4", "fc1": "csr16", "*": "rel8"},
                                   "switching": "staged"},
                                  {"fmt": "csr16", "target_overrides": {"upper_fram_bytes": 200000,
                                                                        "fram_bytes": 9000}}],
                         ids=["staged-direct-bitmap-rel4", "direct-far"])
def test_demo_model_reads_and_equals_golden(tmp_path, opts):
    """LeNet-5-small staged with bitmap/rel4 convolutions (direct, offset tables) and with csr16 direct
    convolutions whose weights stream from upper FRAM (one switch of each dispatch function holds every matrix)."""
    info = compile_bundle(lenet_bundle(), tmp_path / "m", calib=calib_images(), **opts)
    desc = _check_readable(info["out_dir"], info["meta"])
    assert desc["conv1"]["in0"] == "act_x" and desc["conv1"]["out"] == "act_conv1"
    assert desc["pool1"]["in0"] == "act_conv1" and "bias" not in desc["pool1"] and "k_h" not in desc["fc1"]
    _equals_golden(info, data.load("mnist", "test").subset(16, seed=5).x)


@pytest.mark.parametrize("kind", ["conv1d", "conv2d"])
def test_every_op_reads_and_equals_golden(tmp_path, kind):
    """Grouped/dilated/strided convolutions, avg pools, adds in place, global avg pool, intermittent
    (every activation in FRAM, no step in place)."""
    b, x = random_bundle(kind)
    for name, kw in (("cont", {}), ("imt", {"intermittent": True, "checkpoint": "row"})):
        info = compile_bundle(b, tmp_path / name, calib=x[:100], **kw)
        desc = _check_readable(info["out_dir"], info["meta"])
        adds = [d for n, d in desc.items() if info["meta"]["layers"][n]["op"] == "add"]
        assert adds and all({"in1", "shift0", "shift1"} <= set(d) for d in adds)
        _equals_golden(info, x[:16])
