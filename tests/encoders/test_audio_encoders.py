"""Audio encoders on log-mel spectrograms (N, 1, M, F): shapes over frame counts, the encoder
contract (gradients, channels_last, bf16), BYOL-A's layout, and BYOL / SimCLR / MAE / COLA
each training one step on (N, 1, 64, 96) random log-mels with them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from selfsup.encoders import create_encoder, list_encoders
from selfsup.encoders.audio import AUDIO_ENCODERS, AudioNTT, SpectrogramViT
from selfsup.encoders.vit import VisionTransformer, sincos_pos_embed_2d
from selfsup.methods import create_method

# Small sizes for the contract checks: (kwargs, (M, F) of an input they take).
SMALL = {
    "audio_ntt": ({"d": 32}, (64, 101)),
    "audio_resnet18": ({"width": 8}, (64, 101)),
    "audio_vit_tiny": ({"embed_dim": 32, "depth": 2, "num_heads": 2}, (64, 96)),
}


def _logmels(n: int, mels: int, frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, mels, frames, generator=torch.Generator().manual_seed(seed))


def test_audio_encoders_are_registered_and_listed() -> None:
    assert set(AUDIO_ENCODERS) == set(SMALL) <= set(list_encoders())


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("frames", [8, 96, 101, 250])
@pytest.mark.parametrize("mels", [64, 40])  # 1 s at 16 kHz / at 8 kHz
def test_audio_ntt_takes_any_number_of_frames(mels: int, frames: int) -> None:
    enc = create_encoder("audio_ntt", n_mels=mels, d=32).eval()
    x = _logmels(2, mels, frames)
    with torch.no_grad():
        assert enc.forward_features(x).shape == (2, frames // 8, 32)
        assert enc(x).shape == (2, enc.num_features) == (2, 32)


def test_audio_ntt_defaults_are_byol_as() -> None:
    """d = 2048 (config.yaml feature_d), 64 mels -> fc input 64 * 8, official module names."""
    with torch.device("meta"):
        enc = create_encoder("audio_ntt")
    assert enc.num_features == 2048 and enc.in_chans == 1 and enc.n_mels == 64
    assert enc.fc[0].in_features == 64 * 8 and enc.fc[3].out_features == 2048
    assert enc.fc[2].p == 0.3
    bn = [f"features.{i}.{k}" for i in (1, 5, 9) for k in ("weight", "bias", "running_mean")]
    names = set(enc.state_dict())
    assert {"features.0.weight", "features.0.bias", "fc.0.weight", "fc.3.weight"} <= names
    assert set(bn) <= names  # so a released BYOL-A state dict loads by name


def test_audio_ntt_flattens_each_frame_mel_major_and_pools_max_plus_mean() -> None:
    enc = AudioNTT(n_mels=16, d=8).eval()
    x = _logmels(3, 16, 40)
    with torch.no_grad():
        maps = enc.features(x)  # (3, 64, 2, 5)
        # frame t's vector: [channels at mel 0, channels at mel 1, ...] (BYOL-A's reshape)
        frames = torch.stack(
            [torch.cat([maps[:, :, m, t] for m in range(2)], dim=1) for t in range(5)], dim=1
        )
        per_frame = enc.fc(frames)
        torch.testing.assert_close(enc.forward_features(x), per_frame)
        torch.testing.assert_close(enc(x), per_frame.amax(1) + per_frame.mean(1))


def test_audio_ntt_refuses_other_mel_counts() -> None:
    enc = create_encoder("audio_ntt", d=8)
    with pytest.raises(ValueError, match="64"):
        enc(_logmels(2, 40, 96))


@pytest.mark.parametrize("frames", [32, 96, 101])
def test_audio_resnet18_is_the_resnet_with_one_channel(frames: int) -> None:
    enc = create_encoder("audio_resnet18", width=8).eval()
    assert enc.in_chans == 1 and enc.conv1.in_channels == 1 and enc.conv1.stride == (2, 2)
    x = _logmels(2, 64, frames)
    with torch.no_grad():  # ImageNet stem: stride 32 (64 x 101 -> 2 x 4)
        assert enc.forward_features(x).shape == (2, 64, 2, -(-frames // 32))
        assert enc(x).shape == (2, 64)
    with torch.device("meta"):
        assert create_encoder("audio_resnet18").num_features == 512


def test_audio_vit_tiny_patches_a_non_square_log_mel() -> None:
    with torch.device("meta"):
        full = create_encoder("audio_vit_tiny")
    assert (full.embed_dim, len(full.blocks), full.blocks[0].attn.num_heads) == (192, 12, 3)
    assert (full.grid_size, full.num_patches, full.patch_size) == ((8, 12), 96, 8)
    enc = create_encoder("audio_vit_tiny", **SMALL["audio_vit_tiny"][0])
    assert isinstance(enc, SpectrogramViT | VisionTransformer) and enc.in_chans == 1
    torch.testing.assert_close(enc.pos_embed[0], sincos_pos_embed_2d(32, (8, 12)))
    x = _logmels(2, 64, 96)
    assert enc.forward_features(x).shape == (2, 1 + 96, 32)
    assert enc(x).shape == (2, 32)
    ids = torch.tensor([[0, 5, 95], [1, 2, 3]])
    assert enc.forward_visible(x, ids).shape == (2, 1 + 3, 32)
    with pytest.raises(ValueError, match="64 mel bands x 96 frames"):
        enc(_logmels(2, 64, 101))
    with pytest.raises(ValueError, match="multiples of patch_size"):
        create_encoder("audio_vit_tiny", frames=101)


# --------------------------------------------------------------------------- contract


@pytest.mark.parametrize("name", sorted(SMALL))
def test_backward_reaches_every_parameter(name: str) -> None:
    kwargs, (mels, frames) = SMALL[name]
    enc = create_encoder(name, **kwargs)
    enc(_logmels(2, mels, frames)).square().mean().backward()
    missing = [k for k, p in enc.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_channels_last_and_bf16_autocast(name: str) -> None:
    kwargs, (mels, frames) = SMALL[name]
    enc = create_encoder(name, **kwargs).eval()
    x = _logmels(2, mels, frames)
    with torch.no_grad():
        ref = enc(x)
        enc = enc.to(memory_format=torch.channels_last)
        out = enc(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    enc.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(x.contiguous(memory_format=torch.channels_last))
    assert torch.isfinite(out).all()
    out.float().square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)


# --------------------------------------------------------------------------- methods

# (method, encoder, encoder kwargs, method overrides): BYOL-A is BYOL on audio_ntt, etc.
_BYOL = {"proj_hidden_dim": 32, "proj_dim": 16, "pred_hidden_dim": 32}
METHOD_CASES = [
    ("byol", "audio_ntt", {"d": 32}, _BYOL),
    ("byol", "audio_resnet18", {"width": 8}, _BYOL),
    ("simclr", "audio_ntt", {"d": 32}, {"proj_dim": 16}),
    ("simclr", "audio_resnet18", {"width": 8}, {"proj_dim": 16}),
    ("cola", "audio_ntt", {"d": 32}, {"proj_dim": 16}),
    ("mae", "audio_vit_tiny", {"embed_dim": 32, "depth": 2, "num_heads": 2},
     {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2}),
]  # fmt: skip


@pytest.mark.parametrize(("method_name", "encoder_name", "enc_kwargs", "overrides"), METHOD_CASES)
def test_method_trains_one_step_on_log_mels(
    method_name: str, encoder_name: str, enc_kwargs: dict, overrides: dict
) -> None:
    torch.manual_seed(0)
    method = create_method(method_name, create_encoder(encoder_name, **enc_kwargs), **overrides)
    x = _logmels(4, 64, 96, seed=1)
    views = [x] if method_name == "mae" else [x, x + 0.1 * _logmels(4, 64, 96, seed=2)]
    out = method.training_step(views)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    params = {k: p for k, p in method.named_parameters() if p.requires_grad}
    grads = torch.autograd.grad(out.loss, list(params.values()), allow_unused=True)
    backbone = [g for k, g in zip(params, grads, strict=True) if k.startswith("backbone.")]
    assert any(g is not None and g.abs().sum() > 0 for g in backbone)
    before = method.backbone.state_dict()
    before = {k: v.clone() for k, v in before.items()}
    with torch.no_grad():  # one plain SGD step (torch.optim's first use costs seconds)
        for p, g in zip(params.values(), grads, strict=True):
            if g is not None:
                p -= 0.05 * g
    after = method.backbone.state_dict()
    assert any(not torch.equal(after[k], before[k]) for k in before)
    method.after_step(1, 10)  # BYOL's EMA target follows; a no-op for the others
    assert isinstance(method.backbone, nn.Module) and method.encode(x).ndim == 2


def test_mae_reconstructs_a_non_square_log_mel() -> None:
    """MAE's decoder, patchify and unpatchify follow the 8 x 12 grid (64 x 96, patch 8)."""
    torch.manual_seed(0)
    encoder = create_encoder("audio_vit_tiny", embed_dim=32, depth=1, num_heads=2)
    mae = create_method("mae", encoder, decoder_dim=16, decoder_depth=1, decoder_heads=2)
    x = _logmels(2, 64, 96)
    pred, mask = mae.predict(x)
    assert pred.shape == (2, 96, 8 * 8 * 1) and mask.shape == (2, 96)
    assert mask.sum(1).tolist() == [72.0, 72.0]  # 75 % of 96 patches hidden
    images, _ = mae.reconstruct(x, torch.Generator().manual_seed(0))
    assert images.shape == x.shape and torch.isfinite(images).all()
