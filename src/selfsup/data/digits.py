"""scikit-learn's bundled handwritten digits (UCI optdigits test set, 1,797 8x8 images).

The offline default data set: no download. Upscaled to `size` so image augmentations
(crops, blur) have pixels to work on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.data.memory import InMemoryDataset, stratified_split


def load_digits(size: int = 16, test_fraction: float = 0.3, seed: int = 0):
    """Return (train, test) InMemoryDatasets of uint8 (N, 3, size, size) images, 10 classes.

    The split is stratified and seeded; 8x8 intensities 0..16 are scaled to 0..255 and
    resized bilinearly; the grey image is repeated to 3 channels so every encoder sees RGB.
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    ds = InMemoryDataset(
        inputs=x,
        targets=torch.as_tensor(bunch.target, dtype=torch.long),
        classes=[str(i) for i in range(10)],
        name="digits",
        sources=[f"digits[{i}]" for i in range(len(x))],
    )
    return stratified_split(ds, test_fraction, seed)
