import pytest
import torch
import torch.nn as nn

from sparsenest import models
from sparsenest.train.graph import UnsupportedLayerError, extract_graph, prunable_weight_keys


def test_lenet5_graph():
    g = extract_graph(models.create("lenet5"), (1, 28, 28))
    ops = [n["op"] for n in g["nodes"]]
    assert ops == ["conv2d", "relu", "maxpool2d", "conv2d", "relu", "maxpool2d", "flatten",
                   "linear", "relu", "linear", "relu", "linear"]
    assert g["nodes"][0]["shape"] == [6, 28, 28] and g["nodes"][0]["padding"] == [2, 2]
    assert g["output"] == "fc3"
    assert prunable_weight_keys(g) == ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight",
                                       "fc3.weight"]


class Residual1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv1d(3, 4, 3, padding=1)
        self.b = nn.Conv1d(3, 4, 1)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        y = torch.relu(self.a(x)) + self.b(x)
        return self.fc(torch.flatten(self.pool(y), 1))


def test_residual_and_global_pool():
    g = extract_graph(Residual1d(), (3, 16))
    by = {n["name"]: n for n in g["nodes"]}
    add = next(n for n in g["nodes"] if n["op"] == "add")
    assert sorted(add["inputs"]) == ["b", "relu"]
    assert by["pool"]["op"] == "global_avgpool" and by["pool"]["shape"] == [4]
    assert by["fc"]["inputs"] == ["pool"]  # the no-op flatten is folded away


def test_unsupported_layer_named():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(UnsupportedLayerError, match="'1'.*BatchNorm2d"):
        extract_graph(m, (1, 8, 8))
    with pytest.raises(UnsupportedLayerError, match="Sigmoid"):
        extract_graph(nn.Sequential(nn.Linear(2, 2), nn.Sigmoid()), (2,))
