"""The reconstruction figure: original | masked | reconstruction."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.image import imread

from selfsup.augment.normalize import CIFAR10_MEAN, CIFAR10_STD
from selfsup.augment.recipes import eval_view
from selfsup.encoders.registry import create_encoder
from selfsup.methods.mae import MAE
from selfsup.report.reconstructions import (
    mask_to_pixels,
    reconstruction_data,
    reconstruction_figure,
    save_reconstruction_grid,
    write_reconstructions,
)


def test_mask_to_pixels():
    mask = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    px = mask_to_pixels(mask, 2, (2, 2))
    assert px.shape == (1, 1, 4, 4)
    assert px[0, 0, :2, :2].eq(1).all() and px[0, 0, :2, 2:].eq(0).all()
    assert px[0, 0, 2:, 2:].eq(1).all()


def test_write_reconstructions_png(tmp_path):
    mae = MAE(create_encoder("vit_micro_cifar", depth=1), decoder_dim=32, decoder_depth=1)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    path = write_reconstructions(mae, images, tmp_path / "r" / "mae.png", CIFAR10_MEAN, CIFAR10_STD)
    assert path.exists() and imread(path).ndim == 3
    assert mae.training  # the mode is restored


def test_grayscale_grid(tmp_path):
    x = torch.rand(2, 1, 16, 16)
    mask = torch.zeros(2, 16)
    mask[:, ::2] = 1
    path = save_reconstruction_grid(tmp_path / "g.png", x, x, mask, 4, [0.0], [1.0])
    assert path.exists()


def test_reconstruction_data_is_seeded_and_drawn(tmp_path):
    torch.manual_seed(0)
    mae = MAE(create_encoder("vit_micro_cifar", depth=1), decoder_dim=32, decoder_depth=1)
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)
    a = reconstruction_data(mae, images, eval_view(32), n=4, seed=3)
    b = reconstruction_data(mae, images, eval_view(32), n=4, seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["recon_pred"].shape == (4, 3, 32, 32) and a["recon_mask"].shape == (4, 64)
    assert reconstruction_figure(a, tmp_path / "r.png").exists()
    assert reconstruction_figure({}, tmp_path / "none.png") is None  # not an MAE run
