"""Grouped (depthwise) convolutions as one table of matrix structs per layer (codegen_place.group_table):
the generated C holds one array per grouped layer and dispatches its groups with one range test instead
of a struct and a switch case per group, and host C == golden at every level, direct and im2col."""
import re

import numpy as np
import pytest

from sparsenest.compiler import golden
from sparsenest.compiler.build import compile_bundle
from sparsenest.targets.host import HostSim
from test_relu6_inplace import SPARSITIES, ds_bundle


@pytest.mark.parametrize("conv", ["direct", "im2col"])
def test_grouped_layers_are_one_table_and_equal_golden(conv, tmp_path):
    bundle, x = ds_bundle(seed=1)
    info = compile_bundle(bundle, tmp_path / conv, target="host", fmt="csr16", calib=x, conv=conv)
    text = (tmp_path / conv / "model.c").read_text()
    grouped = [n for n in bundle.graph["nodes"] if int(n.get("groups", 1) or 1) > 1]
    tables = re.findall(r"static const sn_csr16_matrix (\w+_matrices)\[(\d+)\] = \{", text)
    assert len(tables) == len(grouped) == 2 and all(int(n) == 8 for _, n in tables)
    assert not re.search(r"_g\d+_matrix\b", text), "a group kept its own struct"
    assert not re.search(r"case \d+: /\* [^*]* group \d+", text), "a group kept its own switch case"
    kernel = "sn_conv_csr16" if conv == "direct" else "sn_spmv_csr16"
    assert all(f"{kernel}(&{name}[matrix - " in text for name, _ in tables)
    sim = HostSim(info["out_dir"])
    for lv in range(1, len(SPARSITIES) + 1):
        sim.set_level(lv)
        c, g = sim.infer(x[:50]), golden.predict(info["qmodel"], x[:50], lv)
        assert np.array_equal(c, g), f"{conv} level {lv}: {int((c != g).sum())} logits differ"
