"""Compact networks trained from scratch: a small CNN for images, an MLP for tables."""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """A compact CNN trained from scratch; works from 8×8 digits up to 128 px uploads.

    Three stages of conv-BN-ReLU (32, 64, 128 channels) with 2× pooling between them, a global
    average pool and a linear head. Images larger than 32 px get stride-2 stems first so the cost
    stays close to that of a 32 px image.
    """

    def __init__(self, in_channels: int, n_classes: int, *, image_px: int = 32) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        stem, c, px = [], in_channels, image_px
        while px > 32:  # downsample big inputs early
            stem.append(block(c, 32, stride=2))
            c, px = 32, (px + 1) // 2
        self.features = nn.Sequential(
            *stem,
            block(c, 32),
            block(32, 32),
            nn.MaxPool2d(2, ceil_mode=True),
            block(32, 64),
            block(64, 64),
            nn.MaxPool2d(2, ceil_mode=True),
            block(64, 128),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(128, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    def __init__(self, d_in: int, n_classes: int, *, hidden: tuple[int, ...] = (256, 128), dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(d_in, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            d_in = h
        layers.append(nn.Linear(d_in, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
