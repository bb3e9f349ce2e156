"""Row and block pruning keep every row of the output layer (one row per class) unless asked
(`--prune-output-rows`): a removed row is a class the model can never predict (issue #11)."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from sparsenest import cli, data, models
from sparsenest.train.graph import extract_graph, output_row_weights
from sparsenest.train.nested import TrainConfig, derive_intro, output_row_keys, train_nested


class GapHead(nn.Module):
    """conv -> relu -> global average pool -> flatten: the last conv's channels are the classes; the
    residual add makes a second conv feed the output through elementwise ops only."""

    def __init__(self):
        super().__init__()
        self.body = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 5, 1)
        self.skip = nn.Conv2d(4, 5, 1)
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        h = torch.relu(self.body(x))
        return torch.flatten(self.gap(torch.relu(self.head(h)) + self.skip(h)), 1)


def test_output_row_weights_follow_elementwise_ops():
    assert output_row_weights(extract_graph(models.create("lenet5"), (1, 28, 28))) == ["fc3.weight"]
    assert output_row_weights(extract_graph(GapHead(), (1, 8, 8))) == ["head.weight", "skip.weight"]


@pytest.mark.parametrize("method,opts", [("row", {}), ("block", {"block_shape": [2, 2]})])
def test_default_keeps_every_output_row(method, opts):
    net = models.create("lenet5-small")
    sp = [0.9, 0.75, 0.5]
    protected = output_row_keys(net, (1, 28, 28), method, prune_output_rows=False)
    assert protected == {"fc3.weight"}
    intro = derive_intro(net, sp, method, scope="layer", method_opts=opts, protected=protected)
    assert (intro["fc3.weight"] == 1).all()               # every weight of every class, at every level
    total = sum(a.size for a in intro.values())
    for lv, s in enumerate(sp, 1):                         # the other layers carry the level's zeros
        kept = sum(int(((a >= 1) & (a <= lv)).sum()) for a in intro.values())
        assert abs((1 - kept / total) - s) < 0.02
    # asked to: the same pruning removes whole classes (what the default prevents)
    assert output_row_keys(net, (1, 28, 28), method, prune_output_rows=True) == frozenset()
    bare = derive_intro(net, sp, method, scope="layer", method_opts=opts)
    assert ((bare["fc3.weight"] == 1).sum(1) == 0).any()


def test_other_methods_are_unchanged():
    net = models.create("lenet5-small")
    assert output_row_keys(net, (1, 28, 28), "irregular", False) == frozenset()
    assert output_row_keys(net, (1, 28, 28), "column", False) == frozenset()


@pytest.fixture(scope="module")
def fashion_slice():
    tr = data.load("fashion-mnist", "train").subset(1000, seed=0)
    return torch.from_numpy(tr.x), torch.from_numpy(tr.y)


@pytest.mark.parametrize("mode", ["joint", "progressive"])
def test_fashion_mnist_row_pruning_keeps_every_class(fashion_slice, mode):
    x, y = fashion_slice
    net = models.create("lenet5-small")
    cfg = TrainConfig(epochs_dense=1, epochs_retrain=1, batch_size=64)
    res = train_nested(net, x, y, sparsities=[0.9, 0.75, 0.5], method="row", mode=mode, cfg=cfg,
                       log=lambda *a: None)
    fc3 = res.intro["fc3.weight"]
    for lv in range(1, 4):
        kept = (fc3 >= 1) & (fc3 <= lv)
        assert kept.any(axis=1).all(), f"level {lv} lost a class"
        w = net.fc3.weight.detach().numpy() * kept
        assert (np.abs(w).sum(axis=1) > 0).all()
    assert res.level_sparsity[0] > 0.85            # the level is still about as sparse as asked


def test_help_states_the_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--prune-output-rows" in text and "default: off" in text
