"""The report's two networks and its data loading, written plainly as the report describes them:
the references the benchmarks measure zoo against. Not used by zoo itself."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.block(x)


class ReportUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder1, self.encoder2 = Block(3, 64), Block(64, 128)
        self.encoder3, self.encoder4 = Block(128, 256), Block(256, 512)
        self.pool = nn.MaxPool2d(2, 2)
        self.bottleneck = Block(512, 1024)
        self.upconv4, self.decoder4 = nn.ConvTranspose2d(1024, 512, 2, 2), Block(1024, 512)
        self.upconv3, self.decoder3 = nn.ConvTranspose2d(512, 256, 2, 2), Block(512, 256)
        self.upconv2, self.decoder2 = nn.ConvTranspose2d(256, 128, 2, 2), Block(256, 128)
        self.upconv1, self.decoder1 = nn.ConvTranspose2d(128, 64, 2, 2), Block(128, 64)
        self.outconv, self.bn, self.sigmoid = nn.Conv2d(64, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid()

    def forward(self, x):
        e1 = self.encoder1(x)
        e2 = self.encoder2(self.pool(e1))
        e3 = self.encoder3(self.pool(e2))
        e4 = self.encoder4(self.pool(e3))
        b = self.bottleneck(self.pool(e4))
        d4 = self.decoder4(torch.cat((e4, self.upconv4(b)), 1))
        d3 = self.decoder3(torch.cat((e3, self.upconv3(d4)), 1))
        d2 = self.decoder2(torch.cat((e2, self.upconv2(d3)), 1))
        d1 = self.decoder1(torch.cat((e1, self.upconv1(d2)), 1))
        return self.sigmoid(self.bn(self.outconv(d1)))


class Bottleneck(nn.Module):  # the report's name for a basic residual block, one BatchNorm shared
    def __init__(self, cin, cout, skip):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 2 if skip else 1, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.bn, self.relu, self.skip = nn.BatchNorm2d(cout), nn.ReLU(inplace=True), skip
        if skip:
            self.skipconv, self.skipbn = nn.Conv2d(cin, cout, 1, 2, 0), nn.BatchNorm2d(cout)

    def forward(self, x):
        residual = x
        x = self.relu(self.bn(self.conv1(x)))
        x = self.relu(self.bn(self.conv2(x)))
        if self.skip:
            residual = self.skipbn(self.skipconv(residual))
        return self.relu(x + residual)


def _layer(cin, cout, n, skip):
    return nn.Sequential(Bottleneck(cin, cout, skip), *[Bottleneck(cout, cout, 0) for _ in range(n - 1)])


class ReportResNet34UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn1, self.relu = nn.Conv2d(3, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.encoder1, self.encoder2 = _layer(64, 64, 3, 0), _layer(64, 128, 4, 1)
        self.encoder3, self.encoder4 = _layer(128, 256, 6, 1), _layer(256, 512, 3, 1)
        self.bottleneck = Block(512, 256)
        self.upconv4, self.decoder4 = nn.ConvTranspose2d(768, 384, 2, 2), Block(384, 32)
        self.upconv3, self.decoder3 = nn.ConvTranspose2d(288, 144, 2, 2), Block(144, 32)
        self.upconv2, self.decoder2 = nn.ConvTranspose2d(160, 80, 2, 2), Block(80, 32)
        self.upconv1, self.decoder1 = nn.ConvTranspose2d(96, 48, 2, 2), Block(48, 32)
        self.outconv = nn.Sequential(nn.ConvTranspose2d(32, 32, 2, 2), Block(32, 32), Block(32, 1))
        self.bn, self.sigmoid = nn.BatchNorm2d(1), nn.Sigmoid()

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv(x))))
        e1 = self.encoder1(x)
        e2 = self.encoder2(e1)
        e3 = self.encoder3(e2)
        e4 = self.encoder4(e3)
        b = self.bottleneck(e4)
        d4 = self.decoder4(self.upconv4(torch.cat((e4, b), 1)))
        d3 = self.decoder3(self.upconv3(torch.cat((e3, d4), 1)))
        d2 = self.decoder2(self.upconv2(torch.cat((e2, d3), 1)))
        d1 = self.decoder1(self.upconv1(torch.cat((e1, d2), 1)))
        return self.sigmoid(self.bn(self.outconv(d1)))


class ReportDataset(torch.utils.data.Dataset):
    """As the report: PIL decode and resize per sample, float64 numpy normalization, per item."""

    MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

    def __init__(self, pairs, size=256):
        self.pairs, self.size = pairs, size  # (image path, trimap path)

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        from PIL import Image

        image = np.array(Image.open(self.pairs[i][0]).convert("RGB").resize((self.size, self.size), Image.BILINEAR))
        trimap = np.array(Image.open(self.pairs[i][1]).resize((self.size, self.size), Image.NEAREST))
        mask = (trimap != 2).astype(np.float32)[None]
        image = (np.moveaxis(image, -1, 0) / 255.0).astype(float)
        for c in range(3):
            image[c] = ((image[c] - self.MEAN[c]) / self.STD[c]).astype(float)
        return {"image": image, "mask": mask}
