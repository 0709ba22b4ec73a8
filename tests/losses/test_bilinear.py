"""COLA's bilinear contrastive loss against a hand-written loop (float64, 1e-10)."""

from __future__ import annotations

import math

import pytest
import torch

import selfsup.losses as losses
from selfsup.losses import BilinearContrastiveLoss, bilinear_contrastive_loss

TOL = dict(rtol=1e-10, atol=1e-10)


def _naive(z_a: torch.Tensor, z_b: torch.Tensor, w: torch.Tensor) -> float:
    """-1/N sum_i log softmax_j(s(a_i, b_j))[i], s(x, y) = sum_k sum_l x_k W_kl y_l, in loops."""
    a, b, w_ = z_a.tolist(), z_b.tolist(), w.tolist()
    n, d = len(a), len(a[0])

    def s(x: list[float], y: list[float]) -> float:
        return sum(x[k] * w_[k][m] * y[m] for k in range(d) for m in range(d))

    total = 0.0
    for i in range(n):
        scores = [s(a[i], b[j]) for j in range(n)]
        top = max(scores)
        log_z = top + math.log(sum(math.exp(v - top) for v in scores))
        total += log_z - scores[i]
    return total / n


def _inputs(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z_a, z_b, w = (
        torch.randn(*s, generator=g, dtype=torch.float64) for s in ((n, d), (n, d), (d, d))
    )
    return z_a, z_b, w


@pytest.mark.parametrize(("n", "d"), [(1, 3), (2, 3), (5, 8), (12, 6)])
def test_matches_the_naive_loop(n: int, d: int) -> None:
    z_a, z_b, w = _inputs(n, d, seed=n)
    got = bilinear_contrastive_loss(z_a, z_b, w)
    assert got.dim() == 0
    torch.testing.assert_close(got, torch.tensor(_naive(z_a, z_b, w), dtype=torch.float64), **TOL)


def test_one_sample_gives_zero() -> None:
    z_a, z_b, w = _inputs(4, 5)
    assert bilinear_contrastive_loss(z_a[:1], z_b[:1], w).item() == 0.0


def test_one_direction_anchors_to_positives() -> None:
    """As COLA's code: anchors pick among positives; swapping the views is another loss."""
    z_a, z_b, w = _inputs(6, 4, seed=2)
    swapped = bilinear_contrastive_loss(z_b, z_a, w)
    torch.testing.assert_close(
        swapped, torch.tensor(_naive(z_b, z_a, w), dtype=torch.float64), **TOL
    )
    assert not torch.allclose(swapped, bilinear_contrastive_loss(z_a, z_b, w))


def test_gradients_match_finite_differences() -> None:
    z_a, z_b, w = (t.requires_grad_() for t in _inputs(4, 3, seed=1))
    assert torch.autograd.gradcheck(bilinear_contrastive_loss, (z_a, z_b, w))


def test_module_holds_w_with_the_official_init_and_delegates() -> None:
    torch.manual_seed(0)
    module = BilinearContrastiveLoss(256).double()
    assert module.weight.shape == (256, 256) and module.weight.requires_grad
    assert abs(module.weight.std().item() - 0.05) < 0.002  # Keras random_normal, COLA's code
    assert abs(module.weight.mean().item()) < 0.002
    z_a, z_b, _ = _inputs(6, 256)
    torch.testing.assert_close(
        module(z_a, z_b), bilinear_contrastive_loss(z_a, z_b, module.weight), **TOL
    )
    assert "BilinearContrastiveLoss" in losses.__all__
    assert "bilinear_contrastive_loss" in losses.__all__


def test_w_learns_to_pick_the_positive() -> None:
    """A few steps on W alone lower the loss on fixed embeddings (the positive's logit rises)."""
    z_a, z_b, _ = _inputs(8, 8, seed=3)
    module = BilinearContrastiveLoss(8).double()
    first = module(z_a, z_b).item()
    for _ in range(20):  # plain gradient descent: torch.optim's first use costs seconds
        (grad,) = torch.autograd.grad(module(z_a, z_b), module.weight)
        with torch.no_grad():
            module.weight -= 0.5 * grad
    assert module(z_a, z_b).item() < 0.5 * first


def test_bad_shapes_are_refused() -> None:
    z_a, z_b, w = _inputs(4, 3)
    with pytest.raises(ValueError, match="equal shape"):
        bilinear_contrastive_loss(z_a, z_b[:3], w)
    with pytest.raises(ValueError, match=r"w must be \(3, 3\)"):
        bilinear_contrastive_loss(z_a, z_b, w[:2])
    with pytest.raises(ValueError, match="empty"):
        bilinear_contrastive_loss(z_a[:0], z_b[:0], w)
