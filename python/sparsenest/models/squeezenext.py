"""SqueezeNext (Gholami et al. 2018) scaled for CIFAR-10 (3x32x32) and a 256 KB-FRAM MCU at int16.

Block (input C_in, output C):  1x1 -> C/2 (carries the block's stride) -> 1x1 -> C/4 -> 3x1 -> C/2 ->
1x3 -> C/2 -> 1x1 expand -> C, plus the shortcut (identity, or a strided 1x1 conv when the shape
changes), ReLU after every conv but the expand, ReLU after the add.

`squeezenext-cifar`: stem conv 3x3 stride 2 (16) -> stages of widths (16, 48, 96) with depths (2, 2, 1)
(stages 2 and 3 start with stride 2: 16x16 -> 8x8 -> 4x4) -> global average pool -> linear 10.
About 36k weights (72 KB at int16). Sized by the FR5994's lower FRAM, where activations must live (the
runtime addresses data with 16-bit pointers; upper FRAM holds streamed weights only): a 16x16 block
keeps its input (shortcut), its 1x3 output and its expand output live at once, 8 + 4 + 8 KB at int16.
Twice those widths (32, 64, 128) need 40 KB of live activations there, more than the 36 KB budget.
The stride-2 stem is the price of the same bound; `stem_stride=1` gives 4x larger activations.

Without BatchNorm (the default, which is what the compiler and nested training take) every block's
expand conv starts at zero, so each block starts as its shortcut (as zero-init-residual does for
BN-ResNets) and the deep stack trains without normalisation. `batchnorm=True` adds BatchNorm2d after
every conv (bias off; the expand BN's gamma starts at zero); fold with `sparsenest.train.fold.fold_batchnorm`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from . import register_model


def _conv(cin: int, cout: int, kernel, stride=1, padding=0, batchnorm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding,
                                         bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


class SqueezeNextBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, batchnorm: bool = False):
        super().__init__()
        c2, c4 = max(1, cout // 2), max(1, cout // 4)
        self.squeeze1 = _conv(cin, c2, 1, stride, batchnorm=batchnorm)
        self.squeeze2 = _conv(c2, c4, 1, batchnorm=batchnorm)
        self.sep_kx1 = _conv(c4, c2, (3, 1), padding=(1, 0), batchnorm=batchnorm)
        self.sep_1xk = _conv(c2, c2, (1, 3), padding=(0, 1), batchnorm=batchnorm)
        self.expand = _conv(c2, cout, 1, batchnorm=batchnorm)
        self.shortcut = (_conv(cin, cout, 1, stride, batchnorm=batchnorm)
                         if stride != 1 or cin != cout else None)
        self.relu1, self.relu2, self.relu3, self.relu4, self.relu_out = (nn.ReLU() for _ in range(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.squeeze1(x))
        out = self.relu2(self.squeeze2(out))
        out = self.relu3(self.sep_kx1(out))
        out = self.relu4(self.sep_1xk(out))
        out = self.expand(out)
        sc = self.shortcut(x) if self.shortcut is not None else x
        return self.relu_out(out + sc)


class SqueezeNext(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, stem: int = 16, stem_stride: int = 2,
                 widths: tuple[int, ...] = (16, 48, 96), depths: tuple[int, ...] = (2, 2, 1),
                 batchnorm: bool = False):
        super().__init__()
        if len(widths) != len(depths):
            raise ValueError("squeezenext: widths and depths must have the same length")
        self.stem = _conv(in_channels, stem, 3, stem_stride, 1, batchnorm=batchnorm)
        self.stem_relu = nn.ReLU()
        blocks: list[nn.Module] = []
        c = stem
        for i, (w, d) in enumerate(zip(widths, depths)):
            for j in range(d):
                blocks.append(SqueezeNextBlock(c, w, 2 if (i > 0 and j == 0) else 1, batchnorm))
                c = w
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():  # He init: keeps activations at scale through a BN-free ReLU stack
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for b in self.blocks:  # start every block as its shortcut: residual branch outputs 0
            with torch.no_grad():
                (b.expand[1] if batchnorm else b.expand[0]).weight.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem_relu(self.stem(x)))
        return self.fc(self.flatten(self.pool(x)))


@register_model("squeezenext-cifar", input_shape=(3, 32, 32), dataset="cifar10")
def squeezenext_cifar(num_classes: int = 10, in_channels: int = 3, stem: int = 16, stem_stride: int = 2,
                      widths=(16, 48, 96), depths=(2, 2, 1), batchnorm: bool = False) -> SqueezeNext:
    return SqueezeNext(num_classes, in_channels, stem, stem_stride, tuple(widths), tuple(depths), batchnorm)
