"""OKG-Net: a small keyword-spotting CNN over MFCC frames (input [1, 49, 10]: 49 frames x 10 MFCCs).

    conv 3x3 stride 2x2 (16) -> conv 3x3 stride 2x1 (32) -> conv 3x3 stride 2x2 (64) -> conv 3x3 (64)
    (each padding 1, ReLU) -> global average pool -> linear 12

Strided convolutions instead of pooling keep every activation small for a 16-bit MCU: the largest is
32x13x5 = 2,080 values (about 4 KB at int16); weights about 61k (about 120 KB at int16, fits the
MSP430FR5994's 256 KB FRAM). Ops: Conv2d, ReLU, AdaptiveAvgPool2d(1), Flatten, Linear.
`batchnorm=True` adds BatchNorm2d after every conv for training; fold with `sparsenest.train.fold`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from . import register_model


class OKGNet(nn.Module):
    def __init__(self, num_classes: int = 12, in_channels: int = 1,
                 widths: tuple[int, ...] = (16, 32, 64, 64),
                 strides: tuple[tuple[int, int], ...] = ((2, 2), (2, 1), (2, 2), (1, 1)),
                 batchnorm: bool = False):
        super().__init__()
        if len(widths) != len(strides):
            raise ValueError("okgnet: widths and strides must have the same length")
        layers: list[nn.Module] = []
        c = in_channels
        for w, s in zip(widths, strides):
            layers.append(nn.Conv2d(c, w, 3, stride=tuple(s), padding=1, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.ReLU())
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c, num_classes)
        for m in self.features:  # He init: keeps activations at scale through a BN-free ReLU stack
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.features(x))))


@register_model("okgnet", input_shape=(1, 49, 10), dataset="speech_commands")
def okgnet(num_classes: int = 12, in_channels: int = 1, widths=(16, 32, 64, 64),
           strides=((2, 2), (2, 1), (2, 2), (1, 1)), batchnorm: bool = False) -> OKGNet:
    return OKGNet(num_classes, in_channels, tuple(widths), tuple(tuple(s) for s in strides), batchnorm)
