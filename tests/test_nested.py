"""Nested shared-weight training on real MNIST slices: nesting, bit-identical shared weights, modes."""
import numpy as np
import pytest
import torch

from sparsenest import models
from sparsenest.train.nested import (NestingError, TrainConfig, evaluate, intro_from_masks, masks_from_intro,
                               train_nested)

FAST = TrainConfig(epochs_dense=4, epochs_retrain=2, batch_size=64, seed=0)


def test_intro_round_trip_and_nesting_error():
    m1 = np.array([1, 0, 0, 0], bool)
    m2 = np.array([1, 1, 0, 0], bool)
    m3 = np.array([1, 1, 0, 1], bool)
    intro = intro_from_masks([m1, m2, m3])
    assert intro.tolist() == [1, 2, 0, 3]
    assert all(np.array_equal(a, b) for a, b in zip(masks_from_intro(intro, 3), [m1, m2, m3]))
    with pytest.raises(NestingError, match="level 1.s mask keeps 1 weights that level 2 prunes"):
        intro_from_masks([np.array([1, 0, 1, 0], bool), m2, m3])


@pytest.fixture(scope="module")
def test_slice(mnist_test):
    s = mnist_test.subset(1000, seed=2)
    return torch.from_numpy(s.x), torch.from_numpy(s.y)


@pytest.mark.parametrize("mode", ["no-retrain", "progressive", "joint"])
@pytest.mark.parametrize("method", ["irregular", "row"])
def test_modes_nest_and_share(mode, method, mnist_slice, test_slice):
    torch.manual_seed(0)
    net = models.create("lenet5-small")
    x, y = mnist_slice
    res = train_nested(net, x, y, sparsities=[0.8, 0.6, 0.3], method=method, mode=mode, cfg=FAST,
                       x_val=test_slice[0], y_val=test_slice[1], log=lambda s: None)
    params = dict(net.named_parameters())
    for key, intro in res.intro.items():
        w = params[key].detach().numpy()
        assert np.all(w[intro == 0] == 0), f"{key}: weights pruned at every level must be exactly 0"
    # measured sparsity near the targets (global allocation: within a few %)
    assert np.allclose(res.level_sparsity, [0.8, 0.6, 0.3], atol=0.03)
    accs = [h["val_accuracy"] for h in res.history if h["phase"] == "final"]
    # Real learning on 3k real images. Without retraining the sparsest level may collapse (the seed
    # report accepts that drop); retrained levels must not.
    assert accs[-1] > 0.8, accs
    if mode != "no-retrain":
        assert min(accs) > 0.75, accs
    if mode == "progressive":
        # Frozen sparser levels: level 1's accuracy measured right after its phase is unchanged at the end.
        after_phase = [h["val_accuracy"] for h in res.history if h["phase"] == "progressive"]
        assert after_phase[0] == accs[0] and after_phase[1] == accs[1]


def test_shared_weights_bit_identical_through_bundle(tmp_path, mnist_slice):
    """Level k's weights at level j's positions (j < k) are the same bits, in the saved bundle."""
    from sparsenest.bundle import Bundle
    from sparsenest.train.graph import extract_graph
    torch.manual_seed(0)
    net = models.create("lenet5-small")
    res = train_nested(net, *mnist_slice, sparsities=[0.9, 0.5], mode="progressive", cfg=FAST,
                       log=lambda s: None)
    b = Bundle.from_model(net, res.intro, graph=extract_graph(net, (1, 28, 28)),
                          levels=[{"level": 1, "target_sparsity": 0.9, "sparsity": 0.9},
                                  {"level": 2, "target_sparsity": 0.5, "sparsity": 0.5}],
                          prune={}, dataset={"name": "mnist"}, train_config={}, model_spec={})
    b = Bundle.load(b.save(tmp_path / "b.nest"))
    for key in b.intro:
        m1 = b.mask(key, 1)
        w1, w2 = b.level_weights(1)[key], b.level_weights(2)[key]
        assert np.array_equal(w1[m1].view(np.uint32), w2[m1].view(np.uint32))
        assert np.count_nonzero(w1[~m1]) == 0 and (b.mask(key, 2) >= m1).all()


def test_structured_levels_nest_as_units(mnist_slice):
    torch.manual_seed(0)
    net = models.create("lenet5-small")
    res = train_nested(net, *mnist_slice, sparsities=[0.7, 0.4], method="row", mode="no-retrain",
                       cfg=FAST, log=lambda s: None)
    for key, intro in res.intro.items():
        rows = intro.reshape(intro.shape[0], -1)
        # every row is kept whole from one level on: a single intro value per row
        assert all(len(set(r.tolist())) == 1 for r in rows), key


def test_admm_then_pattern_levels(mnist_slice):
    """ADMM towards the sparsest level, then PCONV levels: 5x5 kernels keeping 8 weights cannot go below
    68 % sparsity, so those layers are floored there while the fc layers are pruned irregularly."""
    from sparsenest.train import prune
    torch.manual_seed(0)
    net = models.create("lenet5-small")
    cfg = TrainConfig(epochs_dense=4, epochs_retrain=1, admm_epochs=2, admm_rho=0.05, batch_size=64,
                      method_opts={"n": 8})
    res = train_nested(net, *mnist_slice, sparsities=[0.9, 0.75, 0.5], method="pattern", mode="joint",
                       cfg=cfg, x_val=mnist_slice[0][:500], y_val=mnist_slice[1][:500], log=lambda s: None)
    admm = next(h for h in res.history if h["phase"] == "admm")
    assert admm["distance"]["overall"] < 0.9 * admm["distance_before"]["overall"]
    assert admm["val_accuracy"] > 0.7
    for key in ("conv1.weight", "conv2.weight"):
        for lv in (1, 2, 3):
            mask = torch.from_numpy((res.intro[key] >= 1) & (res.intro[key] <= lv))
            assert prune.check_structure(mask, "pattern", n=8), (key, lv)
    assert min(h["val_accuracy"] for h in res.history if h["phase"] == "final") > 0.7
