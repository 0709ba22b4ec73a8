"""CIFAR-10 (Krizhevsky 2009) through torchvision's downloader, held in memory as uint8."""

from __future__ import annotations

from pathlib import Path

import torch

from selfsup.data.memory import InMemoryDataset


def load_cifar10(root: str | Path, download: bool = True):
    """Return (train 50k, test 10k) InMemoryDatasets of uint8 (N, 3, 32, 32) images.

    Uses torchvision.datasets.CIFAR10, which downloads the archive to `root` when absent and
    `download` is True (needs internet; for an offline copy use an image folder instead).
    """
    from torchvision.datasets import CIFAR10

    out = []
    for train in (True, False):
        tv = CIFAR10(root=str(root), train=train, download=download)
        images = torch.from_numpy(tv.data).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32)
        split = "train" if train else "test"
        out.append(
            InMemoryDataset(
                inputs=images,
                targets=torch.as_tensor(tv.targets, dtype=torch.long),
                classes=list(tv.classes),
                name=f"cifar10-{split}",
                sources=[f"cifar10/{split}[{i}]" for i in range(len(images))],
            )
        )
    return out[0], out[1]
