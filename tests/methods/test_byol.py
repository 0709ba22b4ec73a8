"""BYOL: online predictor vs EMA target, symmetric normalized MSE, cosine momentum."""

import torch

from selfsup.build import build_byol
from selfsup.encoders import create_encoder
from selfsup.losses.functional import byol_loss
from selfsup.methods.momentum import cosine_momentum


def _byol():
    torch.manual_seed(0)
    enc = create_encoder("convnet_small", width=8)
    return build_byol(enc, proj_hidden_dim=32, proj_dim=16, pred_hidden_dim=32)


def test_loss_is_the_symmetric_normalized_mse_against_the_target():
    m = _byol()
    x_a, x_b = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)
    out = m.training_step([x_a, x_b])
    with torch.no_grad():
        x = torch.cat([x_a, x_b])
        p_a, p_b = m.predictor(m.projector(m.backbone(x))).chunk(2)
        t_a, t_b = m.target_projector(m.target_backbone(x)).chunk(2)
    assert out.z[0].shape == (8, 16)
    assert torch.allclose(out.loss, byol_loss(p_a, t_b) + byol_loss(p_b, t_a), atol=1e-5)


def test_target_gets_no_gradient_and_moves_by_the_cosine_ema():
    m = _byol()
    m.training_step([torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)]).loss.backward()
    assert all(p.grad is None for p in m.target_backbone.parameters())
    assert all(p.grad is not None for p in m.predictor.parameters())
    with torch.no_grad():
        for p in m.projector.parameters():
            p.mul_(2.0)
    old = [p.clone() for p in m.target_projector.parameters()]
    m.after_step(3, 10)
    mom = cosine_momentum(3, 10, 0.996, 1.0)
    for p_t, p_o, p_old in zip(
        m.target_projector.parameters(), m.projector.parameters(), old, strict=True
    ):
        assert torch.allclose(p_t, mom * p_old + (1 - mom) * p_o, atol=1e-6)
