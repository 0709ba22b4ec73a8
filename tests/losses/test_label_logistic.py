"""label_logistic (SigLIP's sigmoid loss with same-label pairs positive) vs a naive loop."""

import math

import pytest
import torch

from selfsup.losses.label_logistic import LabelLogisticLoss, label_logistic
from tests.reference import label_logistic_naive as naive


def _z(n, d, dtype=torch.float64, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n,d,classes", [(2, 3, 1), (7, 4, 3), (16, 8, 5), (12, 5, 12)])
@pytest.mark.parametrize("log_scale,bias", [(math.log(10.0), -10.0), (0.0, 0.0), (1.5, 2.0)])
def test_matches_naive_loop(dtype, n, d, classes, log_scale, bias):
    z = _z(n, d, dtype, seed=n)
    labels = torch.randint(classes, (n,), generator=torch.Generator().manual_seed(d))
    ours = label_logistic(z, labels, log_scale, bias)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert ours.dtype == dtype
    assert ours.item() == pytest.approx(naive.label_logistic(z, labels, log_scale, bias), rel=tol)


def test_edge_cases():
    z = _z(5, 4)
    # one sample: no pair -> 0 (no NaN)
    assert label_logistic(z[:1], torch.tensor([0])).item() == 0.0
    # all-same labels (no negative) and all-distinct labels (no positive) are finite
    for labels in (torch.zeros(5, dtype=torch.long), torch.arange(5)):
        value = label_logistic(z, labels, 0.3, -1.0)
        assert torch.isfinite(value)
        assert value.item() == pytest.approx(naive.label_logistic(z, labels, 0.3, -1.0))


def test_gradcheck_including_scale_and_bias():
    z = _z(6, 3).requires_grad_()
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    t = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, t, b: label_logistic(z, labels, t, b), (z, t, b))


def test_module_learns_scale_and_bias_with_siglip_init():
    loss = LabelLogisticLoss()
    assert loss.log_scale.item() == pytest.approx(math.log(10.0))
    assert loss.bias.item() == -10.0
    out = loss(_z(6, 4, torch.float32), torch.tensor([0, 0, 1, 1, 2, 2]))
    out.backward()
    assert loss.log_scale.grad is not None and loss.bias.grad is not None


def test_shape_errors():
    with pytest.raises(ValueError, match="expected z"):
        label_logistic(torch.randn(4, 3), torch.zeros(3, dtype=torch.long))
