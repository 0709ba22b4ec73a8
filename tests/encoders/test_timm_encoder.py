"""The timm adapter, offline: random-init models only (pretrained=False never downloads)."""

from __future__ import annotations

import pytest
import torch

from selfsup.encoders import create_encoder


@pytest.mark.parametrize(
    ("name", "kwargs", "feature_shape"),
    [
        ("resnet10t", {}, (2, 512, 1, 1)),  # conv net: (N, D, h, w)
        ("vit_tiny_patch16_224", {"img_size": 32}, (2, 5, 192)),  # ViT: (N, 1 + 2x2, D)
    ],
)
def test_timm_models_follow_the_contract(name: str, kwargs: dict, feature_shape: tuple) -> None:
    enc = create_encoder(f"timm/{name}", **kwargs)
    x = torch.randn(2, 3, 32, 32)
    out = enc(x)
    assert out.shape == (2, enc.num_features)
    with torch.no_grad():
        assert enc.forward_features(x).shape == feature_shape
    out.square().mean().backward()
    assert all(p.grad is not None for p in enc.parameters() if p.requires_grad)
    # recorded like registered encoders, so checkpoints can rebuild it
    assert enc.encoder_name == f"timm/{name}" and enc.encoder_kwargs == kwargs


def test_num_features_is_the_pooled_width() -> None:
    # MobileNetV3 pools its 288-d map, then a 1024-d pre-logits layer: forward returns 1024.
    enc = create_encoder("timm/mobilenetv3_small_050")
    with torch.no_grad():
        out, feats = enc(torch.randn(2, 3, 32, 32)), enc.forward_features(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, enc.num_features) == (2, 1024)
    assert feats.shape[1] == enc.model.num_features != enc.num_features


def test_in_chans_and_channels_last_bf16() -> None:
    enc = create_encoder("timm/resnet10t", in_chans=1).to(memory_format=torch.channels_last)
    x = torch.randn(2, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(x)
    assert out.shape == (2, 512) and torch.isfinite(out).all()


def test_unknown_timm_name_raises() -> None:
    with pytest.raises(RuntimeError, match="Unknown model"):
        create_encoder("timm/not_a_model_name")
