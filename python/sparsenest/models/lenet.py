"""LeNet-5 (LeCun et al. 1998) for 28x28 inputs: conv 6@5x5 (pad 2) - pool - conv 16@5x5 - pool -
fc 120 - fc 84 - fc 10, ReLU and max-pooling as in modern re-implementations."""
from __future__ import annotations

import torch
import torch.nn as nn

from . import register_model


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1,
                 c1: int = 6, c2: int = 16, f1: int = 120, f2: int = 84):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, c1, 5, padding=2)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(c2 * 5 * 5, f1)
        self.fc2 = nn.Linear(f1, f2)
        self.fc3 = nn.Linear(f2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(torch.relu(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


@register_model("lenet5", input_shape=(1, 28, 28), dataset="mnist")
def lenet5(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    return LeNet5(num_classes, in_channels)


@register_model("lenet5-small", input_shape=(1, 28, 28), dataset="mnist")
def lenet5_small(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """A narrow LeNet (4-8-48-24) whose every level fits the 64 KB mspdebug simulator."""
    return LeNet5(num_classes, in_channels, c1=4, c2=8, f1=48, f2=24)
