"""Masked reconstruction loss against a hand-written loop; visible patches do not count."""

from __future__ import annotations

import torch

from selfsup.losses.reconstruction import MaskedReconstructionLoss, masked_reconstruction_loss


def _loop_loss(pred, target, mask, norm_pix):
    total, count = 0.0, 0
    for n in range(pred.shape[0]):
        for i in range(pred.shape[1]):
            if mask[n, i]:
                t = target[n, i]
                if norm_pix:
                    t = (t - t.mean()) / (t.var(unbiased=True) + 1e-6) ** 0.5
                total += ((pred[n, i] - t) ** 2).mean().item()
                count += 1
    return total / count


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    pred, target = torch.randn(3, 10, 12, generator=g), torch.randn(3, 10, 12, generator=g) * 2 + 1
    mask = (torch.rand(3, 10, generator=g) < 0.7).float()
    return pred, target, mask


def test_matches_loop():
    pred, target, mask = _data()
    for norm_pix in (False, True):
        got = masked_reconstruction_loss(pred, target, mask, norm_pix)
        assert got.ndim == 0
        assert abs(got.item() - _loop_loss(pred, target, mask, norm_pix)) < 1e-5


def test_visible_patches_change_nothing():
    pred, target, mask = _data(1)
    visible = mask == 0
    changed = pred.clone()
    changed[visible] = torch.randn(int(visible.sum()), 12) * 100
    for norm_pix in (False, True):
        a = masked_reconstruction_loss(pred, target, mask, norm_pix)
        b = masked_reconstruction_loss(changed, target, mask, norm_pix)
        assert torch.equal(a, b)
    p = pred.clone().requires_grad_()
    masked_reconstruction_loss(p, target, mask).backward()
    assert (p.grad[visible] == 0).all() and (p.grad[~visible] != 0).any()


def test_bool_mask_and_module():
    pred, target, mask = _data(2)
    a = masked_reconstruction_loss(pred, target, mask.bool(), True)
    assert torch.equal(a, MaskedReconstructionLoss(norm_pix=True)(pred, target, mask))
