"""LEA-shaped nested block pruning (train/block_shapes.py, issue #16): the shapes each layer gets, masks
that nest and tile with partial edges at every level in every training mode, a bundle that compiles in
the `block` format with the recorded shapes and runs bit-exact on the host board, and clear errors."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from sn_compile_helpers import calib_images
from sparsenest import cli, data, models
from sparsenest.compiler import formats, golden
from sparsenest.compiler.build import compile_bundle
from sparsenest.targets.host import HostSim
from sparsenest.train import block_shapes, prune
from sparsenest.train.block_shapes import BlockShapeError, bundle_format_opts, resolve_block_shapes
from sparsenest.train.loop import train_to_bundle
from sparsenest.train.nested import TrainConfig, derive_intro, masks_from_intro, output_row_keys, train_nested

LEVELS = (0.7, 0.5, 0.25)
LEA = {"block_shape": "lea"}


def _shapes(net):
    return {k: tuple(w.shape) for k, w in prune.prunable_weights(net).items()}


def test_lea_shapes_per_layer_kind():
    got = resolve_block_shapes(_shapes(models.create("lenet5")), "lea")
    assert got == {"conv1.weight": (1, 5), "conv2.weight": (1, 5), "fc1.weight": block_shapes.LEA_LINEAR_BLOCK,
                   "fc2.weight": block_shapes.LEA_LINEAR_BLOCK, "fc3.weight": block_shapes.LEA_LINEAR_BLOCK}
    assert block_shapes.lea_block_shape(nn.Conv1d(3, 4, 7).weight.shape) == (1, 7)   # a kernel row
    # per layer by module name or weight key, "*" for the rest; a uniform shape as before
    mixed = resolve_block_shapes(_shapes(models.create("lenet5")),
                                 {"fc1": [4, 8], "conv2.weight": [2, 5], "*": [1, 25]})
    assert mixed["fc1.weight"] == (4, 8) and mixed["conv2.weight"] == (2, 5) and mixed["fc3.weight"] == (1, 25)
    assert set(resolve_block_shapes({"a": (3, 4)}, np.array([2, 2])).values()) == {(2, 2)}


@pytest.mark.parametrize("spec,says", [
    ([0, 4], "within 1..255"), ([4], "two ints"), ("x4", "two ints"), ([2.5, 4], "whole numbers"),
    ([256, 1], "within 1..255"), ([True, 4], "whole numbers"), ({"fc9": [2, 2]}, "'fc9', not a prunable layer"),
    ({"fc1": "big"}, "block_shape of fc1"),
])
def test_bad_shape_is_a_clear_error(spec, says):
    with pytest.raises(BlockShapeError, match="block_shape") as e:
        resolve_block_shapes(_shapes(models.create("lenet5")), spec)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_bad_shape_on_the_command_line(tmp_path, capsys):
    rc = cli.main(["train", "--model", "lenet5-small", "--method", "block", "--method-opts",
                   '{"block_shape": [0, 4]}', "--train-limit", "64", "-o", str(tmp_path / "x.nest")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "within 1..255" in err, err
    assert not (tmp_path / "x.nest").exists()


def test_partial_edge_blocks_tile_and_nest():
    w = torch.randn(13, 37, generator=torch.Generator().manual_seed(1))   # 2 x 3 blocks of 8 x 16, all edges partial
    masks = prune.nested_masks(w, "block", LEVELS, block_shape=(8, 16))
    for s, m in zip(LEVELS, masks):
        assert prune.check_structure(m, "block", block_shape=(8, 16))
        assert abs((1 - m.float().mean().item()) - s) <= 8 * 16 / w.numel()   # within one block
    for sparser, denser in zip(masks, masks[1:]):
        assert not (sparser & ~denser).any()


def _assert_lea_nested(net, intro):
    shapes = resolve_block_shapes(_shapes(net), "lea")
    for k, it in intro.items():
        ms = masks_from_intro(it, len(LEVELS))
        for lv, m in enumerate(ms, 1):
            assert prune.check_structure(m, "block", block_shape=shapes[k]), f"{k} level {lv}"
        for lv in range(1, len(ms)):
            assert not (ms[lv - 1] & ~ms[lv]).any(), f"{k}: level {lv} not inside level {lv + 1}"
        # every block has one introducing level: the compiler's block format encodes it as trained
        formats.encode("block", np.zeros(it.reshape(it.shape[0], -1).shape, np.int16),
                       it.reshape(it.shape[0], -1), len(LEVELS), block_shape=shapes[k])


def test_derived_masks_nest_at_every_level():
    torch.manual_seed(0)
    net = models.create("lenet5-small")   # fc1 200 columns, conv2 8 x 100: partial 16-wide edge blocks
    protected = output_row_keys(net, (1, 28, 28), "block", prune_output_rows=False)
    intro = derive_intro(net, list(LEVELS), "block", scope="global", method_opts=LEA, protected=protected)
    _assert_lea_nested(net, intro)
    kept = [sum(int(((a >= 1) & (a <= lv)).sum()) for a in intro.values()) for lv in (1, 2, 3)]
    assert kept[0] < kept[1] < kept[2]


def test_layer_sparsity_fixes_a_layer_at_every_level_and_the_rest_share_the_zeros():
    """method_opts layer_sparsity (the LEA engine's lever: prune the convolutions' kernel rows, which
    global scope keeps): that layer gets one mask at the given ratio, nested trivially; the model still
    reaches each level's sparsity; the output layer stays whole; bad specs are clear errors."""
    torch.manual_seed(0)
    net = models.create("lenet5-small")
    protected = output_row_keys(net, (1, 28, 28), "block", prune_output_rows=False)
    opts = {**LEA, "layer_sparsity": {"conv2": 0.6}}
    intro = derive_intro(net, list(LEVELS), "block", scope="global", method_opts=opts, protected=protected)
    _assert_lea_nested(net, intro)
    c2 = intro["conv2.weight"]
    assert set(np.unique(c2)) <= {0, 1} and abs(float((c2 == 0).mean()) - 0.6) < 0.05   # kernel-row blocks
    n = sum(a.size for a in intro.values())
    for lv, sp in enumerate(LEVELS, 1):
        zeros = sum(int(((a == 0) | (a > lv)).sum()) for a in intro.values())
        assert abs(zeros / n - sp) < 0.02, lv
    assert all(np.all(intro[k] == 1) for k in protected)
    for bad, says in [({"nope": 0.5}, "name prunable layers"), ({"conv2": 1.0}, "in \\[0, 1\\)"),
                      ({"conv1": 0.0, "conv2": 0.0, "fc1": 0.0, "fc2": 0.0}, "cannot be reached")]:
        with pytest.raises(ValueError, match=says):
            derive_intro(net, list(LEVELS), "block", scope="global", method_opts={**LEA, "layer_sparsity": bad},
                         protected=protected)


@pytest.fixture(scope="module")
def mnist_slice():
    tr = data.load("mnist", "train").subset(512, seed=5)
    return torch.from_numpy(tr.x), torch.from_numpy(tr.y)


@pytest.mark.parametrize("mode,admm", [("progressive", 0), ("no-retrain", 1)])
def test_other_modes_keep_lea_blocks(mnist_slice, mode, admm):
    torch.manual_seed(0)
    net = models.create("lenet5-small")
    cfg = TrainConfig(epochs_dense=1, epochs_retrain=1, admm_epochs=admm, batch_size=128, method_opts=LEA)
    res = train_nested(net, *mnist_slice, sparsities=LEVELS, method="block", mode=mode, cfg=cfg,
                       log=lambda *a: None)
    _assert_lea_nested(net, res.intro)


@pytest.fixture(scope="module")
def joint_bundle(mnist_slice, tmp_path_factory):
    """Joint training into a bundle (what `sparsenest train --recipe lenet5-lea-block` does, tiny)."""
    torch.manual_seed(0)
    return train_to_bundle(tmp_path_factory.mktemp("lea") / "b.nest", model=models.create("lenet5-small"),
                           dataset=mnist_slice, levels=LEVELS, method="block", mode="joint",
                           cfg=TrainConfig(epochs_dense=1, epochs_retrain=1, method_opts=LEA), log=lambda *a: None)


def test_bundle_compiles_in_block_format_bit_exact(joint_bundle, tmp_path):
    b = joint_bundle
    opts = bundle_format_opts(b)
    assert opts == {"conv1": {"block_shape": (1, 5)}, "conv2": {"block_shape": (1, 5)},
                    **{f: {"block_shape": block_shapes.LEA_LINEAR_BLOCK} for f in ("fc1", "fc2", "fc3")}}
    info = compile_bundle(b, tmp_path / "build", fmt="block", format_opts=opts, calib=calib_images(64))
    assert {lay["format"] for lay in info["meta"]["layers"].values() if "format" in lay} == {"block"}
    qm, sim = info["qmodel"], HostSim(info["out_dir"])
    x = data.load("mnist", "test").subset(64, seed=2).x
    for level in range(1, len(LEVELS) + 1):
        sim.set_level(level)
        assert np.array_equal(sim.infer(x), golden.predict(qm, x, level)), f"level {level}"
    # shared weights are the same bits: a denser level's Q15 matrix equals the sparser one where that keeps
    for name in ("conv2", "fc1", "fc2"):
        w, it = qm.layers[name].matrix()
        enc = formats.encode("block", w, it, len(LEVELS), **opts[name])
        dec = [enc.decode(lv) for lv in range(1, len(LEVELS) + 1)]
        for lv in range(1, len(LEVELS)):
            kept = (it >= 1) & (it <= lv)
            assert np.array_equal(dec[lv - 1][kept], dec[lv][kept]) and not dec[lv - 1][~kept].any()
