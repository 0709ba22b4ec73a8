"""MAE: the step contract, what the encoder may see, the decoder's un-shuffle, reconstructions."""

from __future__ import annotations

import pytest
import torch

from selfsup.encoders.patches import patchify, unpatchify
from selfsup.encoders.registry import create_encoder
from selfsup.heads.mae_decoder import MAEDecoder
from selfsup.methods.base import StepOutput
from selfsup.methods.mae import MAE


def _mae(**kw) -> MAE:
    torch.manual_seed(0)
    enc = create_encoder("vit_micro_cifar", depth=2)
    return MAE(enc, decoder_dim=32, decoder_depth=1, decoder_heads=4, **kw)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("norm_pix", [False, True])
def test_training_step_and_backward(norm_pix):
    mae = _mae(norm_pix=norm_pix)
    out = mae.training_step([torch.randn(4, 3, 32, 32)])
    assert isinstance(out, StepOutput) and out.z is None
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert torch.equal(out.logs["reconstruction"], out.loss.detach())
    out.loss.backward()
    for name, p in mae.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_masks_the_requested_fraction_per_sample():
    mae = _mae(mask_ratio=0.75)
    pred, mask = mae.predict(torch.randn(5, 3, 32, 32), generator=_gen())
    assert pred.shape == (5, 64, 4 * 4 * 3)
    assert (mask.sum(dim=1) == 48).all()


def test_prediction_never_depends_on_hidden_pixels():
    mae = _mae().eval()
    x = torch.randn(3, 3, 32, 32)
    pred, mask = mae.predict(x, generator=_gen(1))
    patches = patchify(x, 4)
    patches[mask.bool()] = torch.randn(int(mask.sum()), 48) * 10  # rewrite only hidden patches
    pred2, mask2 = mae.predict(unpatchify(patches, 4), generator=_gen(1))
    assert torch.equal(mask, mask2)
    torch.testing.assert_close(pred, pred2, atol=1e-5, rtol=1e-5)


def test_decoder_puts_mask_tokens_at_hidden_positions():
    n, length, k, dim = 2, 16, 5, 8
    dec = MAEDecoder(encoder_dim=dim, grid_size=(4, 4), patch_dim=3, dim=dim, depth=0)
    dec.pos_embed.zero_()  # with no blocks and no position, each output sees only its own token
    ids_shuffle = torch.stack([torch.randperm(length) for _ in range(n)])
    ids_restore = ids_shuffle.argsort(dim=1)
    tokens = torch.randn(n, 1 + k, dim)
    pred = dec(tokens, ids_restore)
    alone = dec.pred(dec.norm(dec.embed(tokens[:, 1:])))  # (N, K, 3): visible tokens by themselves
    for i in range(n):
        torch.testing.assert_close(pred[i, ids_shuffle[i, :k]], alone[i])
        hidden = pred[i, ids_shuffle[i, k:]]
        assert torch.allclose(hidden, hidden[:1].expand_as(hidden))  # all the same mask token


@pytest.mark.parametrize("norm_pix", [False, True])
def test_reconstruct_shapes(norm_pix):
    mae = _mae(norm_pix=norm_pix)
    images, mask = mae.reconstruct(torch.randn(2, 3, 32, 32), generator=_gen())
    assert images.shape == (2, 3, 32, 32) and mask.shape == (2, 64)


def test_timm_vit_through_the_registry():
    pytest.importorskip("timm")
    enc = create_encoder(
        "timm/vit_tiny_patch16_224", img_size=32, patch_size=4, depth=1, num_heads=3
    )
    mae = MAE(enc, decoder_dim=32, decoder_depth=1, decoder_heads=4)
    out = mae.training_step([torch.randn(2, 3, 32, 32)])
    out.loss.backward()
    assert mae.backbone.model is enc.model  # same weights: the trained encoder is the timm model
    assert enc.model.blocks[0].attn.qkv.weight.grad is not None


def test_bad_mask_ratio():
    with pytest.raises(ValueError):
        MAE(create_encoder("vit_micro_cifar", depth=1), mask_ratio=1.0)
