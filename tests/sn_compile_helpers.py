"""Shared by the compiler/runtime tests: small bundles built quickly (a briefly trained LeNet with
magnitude-nested masks, and random graphs exercising every op), cached per test session (in memory)."""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn as nn

from sparsenest import data, models
from sparsenest.bundle import Bundle
from sparsenest.train.graph import extract_graph, prunable_weight_keys

SPARSITIES = (0.8, 0.6, 0.3)


def magnitude_intro(w: np.ndarray, sparsities) -> np.ndarray:
    """Nested masks by |w| rank (sparsest first) as an intro array."""
    order = np.argsort(-np.abs(w).ravel(), kind="stable")
    intro = np.zeros(w.size, np.uint8)
    for lv, s in reversed(list(enumerate(sparsities, 1))):
        intro[order[: int(round((1 - s) * w.size))]] = lv
    return intro.reshape(w.shape)


def bundle_from(net: nn.Module, input_shape, sparsities=SPARSITIES, *, dense_keys=(), dataset="mnist",
                name="custom") -> Bundle:
    graph = extract_graph(net, tuple(input_shape))
    sd = net.state_dict()
    intro = {}
    for k in prunable_weight_keys(graph):
        w = sd[k].numpy()
        intro[k] = np.ones(w.shape, np.uint8) if k in dense_keys else magnitude_intro(w, sparsities)
    levels = [{"level": i + 1, "target_sparsity": s, "sparsity": s, "float_accuracy": None}
              for i, s in enumerate(sparsities)]
    return Bundle.from_model(net, intro, graph=graph, levels=levels, prune={"method": "magnitude"},
                             dataset={"name": dataset}, train_config={},
                             model_spec={"name": name, "kwargs": {}})


@functools.lru_cache(maxsize=None)
def trained_net(model_name: str = "lenet5-small", steps: int = 600) -> nn.Module:
    """600 SGD steps on 10,000 real MNIST training images (a few seconds), kept for the session only:
    nothing is read from or written to the user's cache, so every run trains the same net. (300 steps
    left the magnitude-pruned 80 % level at 55 % on MNIST, 600 give 72 / 90 / 95 % at 80 / 60 / 30 %.)

    torch is seeded before the network is created, so its initial weights (and hence the trained ones)
    are the same in every process; an unseeded init left this fixture at 39 % on MNIST in some runs."""
    tr = data.load("mnist", "train").subset(10000, seed=3)
    x, y = torch.from_numpy(tr.x), torch.from_numpy(tr.y)
    # fork_rng: the first caller's global RNG state is not changed (lru_cache would make that order-dependent)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = models.create(model_name)
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        g = torch.Generator().manual_seed(0)
        for _ in range(steps):
            idx = torch.randint(0, len(x), (64,), generator=g)
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@functools.lru_cache(maxsize=None)
def calib_images(n: int = 256) -> np.ndarray:
    """Calibration slice of MNIST training images (data.calibration.calibration_inputs, fewer of them)."""
    from sparsenest.data.calibration import calibration_inputs
    return calibration_inputs("mnist", n)


def lenet_bundle(model_name: str = "lenet5-small", dense_keys=()) -> Bundle:
    return bundle_from(trained_net(model_name), (1, 28, 28), dense_keys=dense_keys, name=model_name)


class SmallNet(nn.Module):
    """conv 3x3 (4 channels) -> relu -> linear 144 -> 24 -> relu -> linear 24 -> 10 on 1x8x8."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc1 = nn.Linear(4 * 6 * 6, 24)
        self.fc2 = nn.Linear(24, 10)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.fc2(torch.relu(self.fc1(torch.flatten(h, 1))))


def written_bytes(log) -> dict[str, set]:
    """Region -> the byte offsets a host-board write log touched (no write may fall outside a region)."""
    out: dict[str, set] = {}
    for rec in log:
        assert rec.region != "?", "a write outside every known region"
        out.setdefault(rec.region, set()).update(range(rec.offset, rec.offset + rec.written))
    return out


def small_net_bundle():
    """SmallNet (seed 0) nested at 80 / 60 / 30 % and 16 random 1x8x8 inputs: the staged-switch tests' model."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = SmallNet().eval()
    x = np.random.default_rng(0).normal(0, 1, (16, 1, 8, 8)).astype(np.float32)
    return bundle_from(net, (1, 8, 8), sparsities=(0.8, 0.6, 0.3), dataset="random", name="small"), x


# ----------------------------------------------------------------------------- random graphs

class Conv1dNet(nn.Module):
    """conv1d -> relu -> avgpool1d -> conv1d (grouped) -> residual add -> global avgpool -> linear."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(3, 8, 5, padding=2)
        self.pool = nn.AvgPool1d(2)
        self.c2 = nn.Conv1d(8, 8, 3, padding=1, groups=2)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        h = self.pool(torch.relu(self.c1(x)))
        h = h + torch.relu(self.c2(h))
        return self.fc(torch.flatten(self.gap(h), 1))


class Conv2dNet(nn.Module):
    """conv2d (stride 2, dilation) -> relu -> depthwise conv -> add -> avgpool 3x3 (non power of two)
    -> maxpool (padded) -> flatten -> linear -> relu -> linear."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 6, 3, stride=2, padding=2, dilation=2)
        self.dw = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.avg = nn.AvgPool2d(3, stride=1)
        self.mp = nn.MaxPool2d(3, stride=2, padding=1)
        self.fc1 = nn.Linear(6 * 3 * 3, 12)
        self.fc2 = nn.Linear(12, 4)

    def forward(self, x):
        h = torch.relu(self.c1(x))
        h = h + self.dw(h)
        h = self.mp(self.avg(h))
        return self.fc2(torch.relu(self.fc1(torch.flatten(h, 1))))


class TinyMLP(nn.Module):
    """linear -> relu -> linear on 8 inputs, 3 outputs: the smallest model that compiles (a second)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 6)
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def tiny_bundle(**kw) -> tuple[Bundle, np.ndarray]:
    """A TinyMLP bundle (fixed init) and 32 random calibration inputs; kw go to bundle_from."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = TinyMLP().eval()
    x = np.random.default_rng(0).normal(0, 1, (32, 8)).astype(np.float32)
    return bundle_from(net, (8,), **({"name": "tiny"} | kw)), x


RANDOM_NETS = {"conv1d": (Conv1dNet, (3, 32)), "conv2d": (Conv2dNet, (2, 13, 13))}


def random_bundle(kind: str, seed: int = 0) -> tuple[Bundle, np.ndarray]:
    """A random model of kind 'conv1d' / 'conv2d' and 300 random calibration/test inputs."""
    torch.manual_seed(seed)
    cls, shape = RANDOM_NETS[kind]
    net = cls().eval()
    x = np.random.default_rng(seed).normal(0, 1, (300, *shape)).astype(np.float32)
    return bundle_from(net, shape, dataset="random", name=kind), x
