"""Barlow Twins and VICReg: the loss is the weighted sum of the terms they log."""

import pytest
import torch

from selfsup.build import build_barlow_twins, build_vicreg
from selfsup.encoders import create_encoder


def _views():
    return [torch.randn(16, 3, 16, 16), torch.randn(16, 3, 16, 16)]


def test_barlow_twins_logs_both_terms():
    torch.manual_seed(0)
    m = build_barlow_twins(create_encoder("convnet_small", width=8), 32, 24, lambd=0.01)
    out = m.training_step(_views())
    assert out.z[0].shape == (16, 24)
    expected = out.logs["on_diag"] + 0.01 * out.logs["off_diag"]
    assert torch.allclose(out.loss, expected)
    out.loss.backward()
    assert torch.isfinite(out.loss)


def test_vicreg_logs_three_terms():
    torch.manual_seed(0)
    m = build_vicreg(create_encoder("convnet_small", width=8), 32, 24)
    out = m.training_step(_views())
    assert set(out.logs) == {"invariance", "variance", "covariance"}
    t = out.logs
    assert out.loss.item() == pytest.approx(
        float(25 * t["invariance"] + 25 * t["variance"] + t["covariance"]), rel=1e-5
    )
    assert all(v.dim() == 0 and not v.requires_grad for v in t.values())
