"""Every registered ViT: output shapes, visible-only forward, backward; the position embedding."""

from __future__ import annotations

import pytest
import torch

from selfsup.encoders.registry import create_encoder, list_encoders
from selfsup.encoders.vit import (
    TimmViT,
    VisionTransformer,
    as_masked_encoder,
    gather_tokens,
    sincos_pos_embed_2d,
)

VITS = [n for n in list_encoders() if n.startswith("vit_")]  # image ViTs (not audio_vit_*)


def test_the_three_sizes_are_registered():
    assert {"vit_micro_cifar", "vit_tiny_cifar", "vit_small_cifar"} <= set(VITS)


@pytest.mark.parametrize("name", VITS)
def test_shapes(name):
    # On the meta device: shapes without the compute (ViT-S is ~3 GFLOP per image).
    with torch.device("meta"):
        vit = create_encoder(name)
        d, length = vit.num_features, vit.num_patches
        x = torch.randn(2, 3, 32, 32)
        ids_keep = torch.randint(0, length, (2, length // 4))
        assert vit(x).shape == (2, d)
        assert vit.forward_features(x).shape == (2, 1 + length, d)
        assert vit.forward_visible(x, ids_keep).shape == (2, 1 + length // 4, d)


def test_real_forward_shapes():
    vit = create_encoder("vit_micro_cifar")
    x = torch.randn(2, 3, 32, 32)
    ids_keep = torch.stack([torch.randperm(64)[:16] for _ in range(2)])
    assert vit(x).shape == (2, 128) and vit.forward_features(x).shape == (2, 65, 128)
    assert vit.forward_visible(x, ids_keep).shape == (2, 17, 128)


def test_tiny_and_small_widths():
    with torch.device("meta"):
        assert create_encoder("vit_tiny_cifar").num_features == 192
        assert create_encoder("vit_small_cifar").num_features == 384


@pytest.mark.parametrize("pool", ["cls", "avg"])
def test_backward_reaches_every_parameter(pool):
    vit = create_encoder("vit_micro_cifar", global_pool=pool, depth=2)
    vit(torch.randn(2, 3, 32, 32)).square().mean().backward()
    for name, p in vit.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_any_channel_count_and_patch_size():
    vit = VisionTransformer(
        img_size=16, patch_size=2, in_chans=1, embed_dim=32, depth=1, num_heads=2
    )
    assert vit.forward_features(torch.randn(2, 1, 16, 16)).shape == (2, 1 + 64, 32)
    with pytest.raises(ValueError, match="expected 16x16"):
        vit(torch.randn(2, 1, 32, 32))


def test_visible_forward_equals_full_forward_when_all_patches_are_kept():
    vit = create_encoder("vit_micro_cifar", depth=2).eval()
    x = torch.randn(2, 3, 32, 32)
    perm = torch.stack([torch.randperm(vit.num_patches) for _ in range(2)])
    full = vit.forward_features(x)
    visible = vit.forward_visible(x, perm)
    # Attention is permutation-equivariant: the same tokens come out, in the kept order.
    torch.testing.assert_close(visible[:, 0], full[:, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        visible[:, 1:], gather_tokens(full[:, 1:], perm), atol=1e-5, rtol=1e-5
    )


def test_sincos_pos_embed():
    pos = sincos_pos_embed_2d(16, (3, 5))
    assert pos.shape == (15, 16)
    # Patches in one row share the row half; patches in one column share the column half.
    assert torch.equal(pos[0, :8], pos[4, :8]) and not torch.equal(pos[0, 8:], pos[4, 8:])
    assert torch.equal(pos[0, 8:], pos[5, 8:]) and not torch.equal(pos[0, :8], pos[5, :8])
    assert torch.allclose(pos[0], torch.tensor([0.0, 0, 0, 0, 1, 1, 1, 1] * 2))  # sin 0, cos 0
    with pytest.raises(ValueError):
        sincos_pos_embed_2d(6, (2, 2))


def test_timm_vision_transformer_runs_on_visible_patches():
    timm = pytest.importorskip("timm")
    model = timm.create_model(
        "vit_tiny_patch16_224", img_size=32, patch_size=4, depth=2, num_classes=0
    ).eval()
    enc = as_masked_encoder(model)
    assert isinstance(enc, TimmViT) and (enc.patch_size, enc.grid_size) == (4, (8, 8))
    x = torch.randn(2, 3, 32, 32)
    perm = torch.stack([torch.randperm(64) for _ in range(2)])
    full, visible = enc.forward_features(x), enc.forward_visible(x, perm)
    torch.testing.assert_close(
        visible[:, 1:], gather_tokens(full[:, 1:], perm), atol=1e-5, rtol=1e-5
    )
    assert enc.forward_visible(x, perm[:, :16]).shape == (2, 17, 192)
    assert enc(x).shape == (2, 192)


def test_encoders_without_visible_forward_are_refused():
    with pytest.raises(TypeError, match="visible patches"):
        as_masked_encoder(torch.nn.Linear(3, 3))
