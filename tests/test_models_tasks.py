"""HAR-Net, OKG-Net and SqueezeNext-CIFAR: shapes, compiler graph, MCU budgets, learning on real slices,
BatchNorm folding."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sparsenest import data, models
from sparsenest.train.fold import FoldError, fold_batchnorm
from sparsenest.train.graph import UnsupportedLayerError, extract_graph, prunable_weight_keys

# name -> (dataset, split used for the slice, weight budget, largest activation in values)
SPECS = {
    "harnet": ("har", "train", 30_000, 4096),
    "okgnet": ("speech_commands", "train", 100_000, 4096),
    "squeezenext-cifar": ("cifar10", "test", 50_000, 4096),
}
SUPPORTED = {"conv1d", "conv2d", "linear", "relu", "maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d",
             "global_avgpool", "flatten", "add"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small CPU models on a 2-core box shared by several jobs: one intra-op thread is both faster and far
    steadier than oversubscribed OpenMP threads."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def slices():
    out = {}
    for name, (ds, split, _, _) in SPECS.items():
        d = data.load(ds, split, progress=False).subset(256, seed=0)
        out[name] = (torch.from_numpy(d.x), torch.from_numpy(d.y), d.num_classes)
    return out


@pytest.mark.parametrize("name", list(SPECS))
def test_forward_graph_and_budget(name, slices):
    x, y, num_classes = slices[name]
    shape = models.defaults(name)["input_shape"]
    assert tuple(x.shape[1:]) == tuple(shape)
    assert models.defaults(name)["dataset"] == SPECS[name][0]
    # as train.train_to_bundle builds it
    net = models.create(name, num_classes=num_classes, in_channels=shape[0])
    assert net(x[:4]).shape == (4, num_classes)
    g = extract_graph(net, shape)
    assert {n["op"] for n in g["nodes"]} <= SUPPORTED
    assert g["nodes"][-1]["shape"] == [num_classes]
    sd = net.state_dict()
    n_weights = sum(sd[k].numel() for k in prunable_weight_keys(g))
    largest = max(int(np.prod(n["shape"])) for n in g["nodes"])
    assert n_weights <= SPECS[name][2] and largest <= SPECS[name][3], (n_weights, largest)


def test_squeezenext_has_separable_blocks_and_residual_adds():
    g = extract_graph(models.create("squeezenext-cifar"), (3, 32, 32))
    kernels = {tuple(n["kernel"]) for n in g["nodes"] if n["op"] == "conv2d"}
    assert {(1, 1), (3, 1), (1, 3), (3, 3)} <= kernels
    adds = [n for n in g["nodes"] if n["op"] == "add"]
    assert len(adds) == 5 and all(len(n["inputs"]) == 2 for n in adds)


def _train(net, x, y, steps, lr=3e-3, bs=64, seed=0):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(y), (bs,), generator=gen)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()


@pytest.mark.parametrize("name", list(SPECS))
def test_a_few_steps_reduce_the_loss_on_real_data(name, slices):
    x, y, num_classes = slices[name]
    torch.manual_seed(0)
    net = models.create(name, num_classes=num_classes).eval()
    with torch.no_grad():
        before = F.cross_entropy(net(x), y).item()
    _train(net, x, y, steps=40)
    with torch.no_grad():
        after = F.cross_entropy(net(x), y).item()
    assert after < 0.85 * before, (before, after)


@pytest.mark.parametrize("name", list(SPECS))
def test_batchnorm_variant_folds_to_the_same_function(name, slices):
    x, y, num_classes = slices[name]
    shape = models.defaults(name)["input_shape"]
    torch.manual_seed(0)
    net = models.create(name, num_classes=num_classes, batchnorm=True)
    with pytest.raises(UnsupportedLayerError, match="BatchNorm"):
        extract_graph(net, shape)
    _train(net, x, y, steps=5)  # non-trivial running statistics and gammas
    with torch.no_grad():
        for m in net.modules():  # and non-trivial affine parameters everywhere (incl. zero-init gammas)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        first = next(m for m in net.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d)))
        first.weight[0].zero_()  # a pruned filter stays pruned
    folded = fold_batchnorm(net)
    assert any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in net.modules())  # original kept
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in folded.modules())
    with torch.no_grad():
        ref, out = net.eval()(x[:32]), folded(x[:32])
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    g = extract_graph(folded, shape)
    plain = extract_graph(models.create(name, num_classes=num_classes), shape)
    assert [n["op"] for n in g["nodes"]] == [n["op"] for n in plain["nodes"]]
    assert all(n["bias"] is not None for n in g["nodes"] if n["op"] in ("conv1d", "conv2d", "linear"))
    first_folded = next(m for m in folded.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d)))
    assert torch.count_nonzero(first_folded.weight[0]) == 0


def test_fold_refuses_a_batchnorm_that_follows_no_conv():
    net = nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2))
    with pytest.raises(FoldError, match="does not directly follow"):
        fold_batchnorm(net)
