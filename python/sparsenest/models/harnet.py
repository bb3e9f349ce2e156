"""HAR-Net: a small 1-D CNN for human-activity windows (9 inertial channels x 128 samples at 50 Hz).

    [conv1d k5 (pad 2) -> ReLU -> maxpool 2] x 3 (16, 32, 48 channels) -> global average pool -> linear 6

About 11k weights (22 KB at int16), activations at most 16x128 = 2,048 values (4 KB at int16) per layer:
sized for an MSP430FR5994 (256 KB FRAM, 8 KB SRAM). Only ops the compiler supports (Conv1d, ReLU,
MaxPool1d, AdaptiveAvgPool1d(1), Flatten, Linear). `batchnorm=True` adds BatchNorm1d after every conv
(conv bias off) for training; fold it with `sparsenest.train.fold.fold_batchnorm` before `extract_graph`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from . import register_model


class HARNet(nn.Module):
    def __init__(self, num_classes: int = 6, in_channels: int = 9, widths: tuple[int, ...] = (16, 32, 48),
                 kernel: int = 5, batchnorm: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers.append(nn.Conv1d(c, w, kernel, padding=kernel // 2, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(w))
            layers += [nn.ReLU(), nn.MaxPool1d(2)]
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c, num_classes)
        for m in self.features:  # He init: keeps activations at scale through a BN-free ReLU stack
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.features(x))))


@register_model("harnet", input_shape=(9, 128), dataset="har")
def harnet(num_classes: int = 6, in_channels: int = 9, widths=(16, 32, 48), kernel: int = 5,
           batchnorm: bool = False) -> HARNet:
    return HARNet(num_classes, in_channels, tuple(widths), kernel, batchnorm)
