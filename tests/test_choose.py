"""The cost-driven layout choice (compiler/choose.py) on LeNet-5-small with seeded weights and
magnitude-nested 90/75/50 % masks (costs and bytes depend on the masks' sizes, not on the values)."""
from dataclasses import replace

import numpy as np
import pytest

from sparsenest.analysis.cost import layers_from_build
from sparsenest.compiler import choose, formats
from sparsenest.compiler.build import compile_bundle
from sparsenest.compiler.planner import PlanError, get_target
from sparsenest.compiler.quantize import quantize
from sparsenest.experiments.bench.mcu import seeded_bundle


@pytest.fixture(scope="module")
def small():
    b = seeded_bundle("lenet5-small", (1, 28, 28), "mnist", (0.9, 0.75, 0.5))
    x = np.random.default_rng(0).random((8, 1, 28, 28)).astype(np.float32)
    qm = quantize(b, x)
    return b, x, qm, choose.layers_from_qmodel(qm)


def _mean(o, objective):
    return o.score(objective, [1 / 3] * 3)


def test_bytes_picks_the_smallest(small):
    _, _, _, layers = small
    ch = choose.choose(layers, "bytes")
    for ly in layers:
        chosen = ch.layers[ly.name]["chosen"]
        every = [o.bytes for o in ch.layers[ly.name]["options"]]
        assert chosen.bytes == min(every)
        # never larger than the old `auto` (smallest of AUTO_FORMATS); hbitmap may be smaller still
        old = formats.encode("auto", ly.w, ly.intro, ly.n_levels, **{k: v for k, v in ly.opts.items()
                                                                       if k == "kernel_size"}).total_bytes
        assert chosen.bytes <= old


def test_time_is_no_slower_than_smallest(small):
    _, _, _, layers = small
    t, b = choose.choose(layers, "time"), choose.choose(layers, "bytes")
    for ly in layers:   # per layer where both are measured-model predictions (a fallback guess ranks last)
        fast, small_ = t.layers[ly.name]["chosen"], b.layers[ly.name]["chosen"]
        assert fast.calibrated
        if small_.calibrated:
            assert _mean(fast, "time") <= _mean(small_, "time")
    assert sum(t.totals()["cycles"]) < sum(b.totals()["cycles"])   # LeNet-5-small: strictly faster
    e = choose.choose(layers, "energy")
    assert sum(e.totals()["energy_uj"]) <= sum(b.totals()["energy_uj"])


def test_tight_budget_never_overflows(small):
    _, _, qm, layers = small
    host = get_target("host")
    free = choose.planner_fits(qm, replace(host, fram_bytes=1 << 30))
    fast, tiny = choose.choose(layers, "time"), choose.choose(layers, "bytes")
    over_fast = choose.planner_fits(qm, replace(host, fram_bytes=0))(fast.formats(), fast.conv_methods())
    over_tiny = choose.planner_fits(qm, replace(host, fram_bytes=0))(tiny.formats(), tiny.conv_methods())
    assert free(fast.formats(), fast.conv_methods()) == 0
    assert over_tiny < over_fast   # FRAM bytes each layout needs (budget 0: all of it is over)
    budget = (over_tiny + over_fast) // 2
    tgt = replace(host, fram_bytes=budget)
    ch = choose.choose(layers, "time", fits=choose.planner_fits(qm, tgt))
    assert ch.fallbacks and ch.over_bytes == 0
    assert choose.planner_fits(qm, tgt)(ch.formats(), ch.conv_methods()) == 0
    # below the smallest layout: the chooser says so, and the planner refuses (the host has no upper FRAM)
    low = replace(host, fram_bytes=over_tiny - 1)
    ch = choose.choose(layers, "time", fits=choose.planner_fits(qm, low))
    assert ch.over_bytes == 1 and "smallest layout" in ch.fallbacks[-1]


def test_compile_within_budget(small, tmp_path):
    """compile --format auto --objective time under a tight budget: the build fits, its formats and conv
    methods are the choice's, and the table lists every layer."""
    b, x, qm, layers = small
    host = get_target("host")
    need = lambda ch: choose.planner_fits(qm, replace(host, fram_bytes=0))(ch.formats(), ch.conv_methods())  # noqa
    budget = (need(choose.choose(layers, "bytes")) + need(choose.choose(layers, "time"))) // 2
    info = compile_bundle(b, tmp_path / "m", calib=x, target=replace(host, fram_bytes=budget), objective="time",
                          build=False)
    assert info["meta"]["memory"]["fram_total_estimate"] <= budget
    ch = info["choice"]
    assert ch.fallbacks and info["meta"]["choice"]["layers"].keys() == {ly.name for ly in layers}
    text = choose.format_choice(ch)
    for ly in layers:
        assert ly.name in text
        lm = info["meta"]["layers"][ly.name]
        assert lm["format"] == ch.layers[ly.name]["chosen"].format
        if "conv" in lm:
            assert lm["conv"] == ch.layers[ly.name]["chosen"].method
    with pytest.raises(PlanError):
        compile_bundle(b, tmp_path / "n", calib=x, objective="time", build=False,
                       target=replace(host, fram_bytes=need(choose.choose(layers, "bytes")) - 64))


def test_predicted_counts_are_the_host_counters(small, tmp_path):
    """What the chooser costs is what the C does: its counts equal the host board's counters at every
    level, for a direct convolution, an im2col one and linear layers."""
    from sparsenest.targets.host import HostSim
    b, x, qm, layers = small
    fmt = {"conv1": "csr16", "conv2": "rel4", "fc1": "bitmap", "*": "csr16"}
    conv = {"conv1": "direct", "conv2": "im2col"}
    info = compile_bundle(b, tmp_path / "m", calib=x, fmt=fmt, conv=conv)
    assert info["meta"]["layers"]["conv1"]["conv"] == "direct" and info["meta"]["layers"]["conv2"]["conv"] == "im2col"
    sim = HostSim(info["out_dir"])
    for lv in (1, 2, 3):
        sim.set_level(lv)
        sim.reset_counters()
        sim.infer(x[:1])
        got = sim.layer_counters()
        # sn_graph.c counts the copy of the model input as the first step's writes: not the layer's work
        got[layers[0].name]["act_bytes_written"] -= 2 * x[0].size
        # the cost model's derived features (calls, decode_bytes) from the build equal the chooser's
        built = {r["name"]: r["counts"] for r in layers_from_build(info["meta"], got, lv)}
        for ly in layers:
            f = fmt.get(ly.name, fmt["*"])
            pred = choose.ENGINES["cpu"].counts(ly, ly.encode(f), conv.get(ly.name, "-"), lv)
            derived = ("calls", "decode_bytes")
            assert {k: got[ly.name][k] for k in pred if k not in derived} == \
                {k: v for k, v in pred.items() if k not in derived}, (ly.name, f, lv)
            assert {k: built[ly.name][k] for k in derived} == pytest.approx({k: pred[k] for k in derived})
            assert (pred["decode_bytes"] > 0) == (conv.get(ly.name) == "direct"), ly.name


def test_engine_registry_and_errors(small):
    _, _, _, layers = small
    with pytest.raises(choose.ChooseError, match="objective"):
        choose.choose(layers, "speed")
    with pytest.raises(choose.ChooseError, match="unknown engine"):
        choose.choose(layers, "time", engines=["gpu"])
    with pytest.raises(choose.ChooseError, match="level_weights"):
        choose.choose(layers, "time", level_weights=[1, 0])
    # a second engine slots in with one registration and competes per layer
    cpu = choose.ENGINES["cpu"]
    half = choose.Engine("half", lambda ly: [("csr16", "direct" if ly.is_conv else "-")], cpu.counts,
                         lambda ly, f, m: cpu.kernel_key(ly, f, m))
    choose.register_engine(half)
    try:
        ch = choose.choose(layers, "time", engines=["cpu", "half"])
        assert all(d["options"][0].engine in ("cpu", "half") for d in ch.layers.values())
        assert any(o.engine == "half" for d in ch.layers.values() for o in d["options"])
    finally:
        del choose.ENGINES["half"]


def test_analyze_prints_and_stores_the_table(small, tmp_path, capsys):
    import json

    from sparsenest import cli
    b, _, _, layers = small
    path = b.save(tmp_path / "s.nest")
    assert cli.main(["analyze", str(path), "--objective", "bytes", "--json", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    table = out[out.index("objective bytes"):]
    for ly in layers:
        assert f"\n{ly.name} " in table
    rep = json.loads((tmp_path / "a.json").read_text())["choice"]
    assert rep["objective"] == "bytes" and set(rep["layers"]) == {ly.name for ly in layers}
    assert all(d["chosen"]["bytes"] <= d["runner_up"]["bytes"] for d in rep["layers"].values())
