"""BYOL, SimSiam, Barlow Twins, VICReg and DINO losses against loops."""

from __future__ import annotations

import pytest
import torch

from selfsup.losses import functional as L
from tests.reference import losses_naive as naive

DTYPES = [torch.float32, torch.float64]
SHAPES = [(2, 3), (5, 32), (16, 32)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: a second OpenMP thread only adds scheduling latency on a loaded machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _views(n: int, d: int, dtype: torch.dtype, seed: int = 0, v: int = 2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=dtype) for _ in range(v)]


def _check(got: torch.Tensor, want: float) -> None:
    assert got.dim() == 0 and torch.isfinite(got)
    tol = naive.tolerances(got.dtype)
    torch.testing.assert_close(got, torch.tensor(want, dtype=got.dtype), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d", [(1, 3)] + SHAPES)
def test_byol_and_negative_cosine_match_loop(n, d, dtype):
    p, z = _views(n, d, dtype)
    _check(L.byol_loss(p, z), naive.byol(p, z))
    _check(L.negative_cosine(p, z), naive.negative_cosine(p, z))


def test_byol_is_2_plus_2_negative_cosine():
    p, z = _views(7, 5, torch.float64)
    torch.testing.assert_close(L.byol_loss(p, z), 2 + 2 * L.negative_cosine(p, z))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d", SHAPES)
def test_barlow_twins_matches_loop(n, d, dtype):
    z_a, z_b = _views(n, d, dtype)
    on, off = naive.barlow_twins_terms(z_a, z_b)
    terms = L.barlow_twins_terms(z_a, z_b)
    _check(terms.on_diag, on)
    _check(terms.off_diag, off)
    for lambd in (0.0051, 0.5):
        _check(L.barlow_twins(z_a, z_b, lambd), on + lambd * off)


def test_barlow_twins_matches_batchnorm_reference():
    # The reference code: c = bn(z1).T @ bn(z2) / N with BatchNorm1d(affine=False).
    z_a, z_b = _views(8, 6, torch.float64)
    bn = torch.nn.BatchNorm1d(6, affine=False).double()
    c = bn(z_a).T @ bn(z_b) / 8
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    torch.testing.assert_close(L.barlow_twins(z_a, z_b), on + 0.0051 * off)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d", SHAPES)
def test_vicreg_matches_loop(n, d, dtype):
    z_a, z_b = _views(n, d, dtype)
    z_b = z_b * 0.5  # some dimensions below the std target of 1, so the hinge is active
    inv, var, cov = naive.vicreg_terms(z_a, z_b)
    terms = L.vicreg_terms(z_a, z_b)
    _check(terms.invariance, inv)
    _check(terms.variance, var)
    _check(terms.covariance, cov)
    _check(L.vicreg(z_a, z_b), 25 * inv + 25 * var + cov)
    _check(L.vicreg(z_a, z_b, 1.0, 2.0, 3.0), inv + 2 * var + 3 * cov)


@pytest.mark.parametrize("fn", [L.barlow_twins, L.vicreg, L.barlow_twins_terms, L.vicreg_terms])
def test_batch_statistic_losses_reject_one_sample(fn):
    z_a, z_b = _views(1, 4, torch.float32)
    with pytest.raises(ValueError, match="2 samples"):
        fn(z_a, z_b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_global,n_local", [(2, 0), (2, 4), (1, 2)])
@pytest.mark.parametrize("n,k", [(1, 3), (5, 16)])
def test_dino_matches_loop(n, k, n_global, n_local, dtype):
    views = _views(n, k, dtype, v=2 * n_global + n_local + 1)
    teacher = views[:n_global]
    student = views[n_global : 2 * n_global + n_local]
    center = views[-1][:1] * 0.1
    for st, tt in [(0.1, 0.04), (0.2, 0.07)]:
        got = L.dino_loss(student, teacher, center, st, tt)
        _check(got, naive.dino(student, teacher, center, st, tt))
        _check(
            L.dino_loss(student, teacher, center[0], st, tt),
            naive.dino(student, teacher, center, st, tt),
        )


def test_dino_same_view_only_raises():
    (s,) = _views(2, 3, torch.float32, v=1)
    with pytest.raises(ValueError):
        L.dino_loss([s], [s], torch.zeros(3))


def test_dino_teacher_gets_no_gradient():
    s1, s2, t1, t2 = (t.requires_grad_() for t in _views(3, 5, torch.float64, v=4))
    loss = L.dino_loss([s1, s2], [t1, t2], torch.zeros(1, 5))
    loss.backward()
    assert t1.grad is None and t2.grad is None
    assert s1.grad is not None and torch.isfinite(s1.grad).all()


def test_dino_center_update():
    t1, t2 = _views(4, 6, torch.float64)
    center = torch.ones(1, 6, dtype=torch.float64)
    want = 0.9 * center + 0.1 * torch.cat([t1, t2]).mean(0, keepdim=True)
    torch.testing.assert_close(L.dino_center_update(center, [t1, t2]), want)


def test_gradcheck_noncontrastive():
    p, z, a, b = (t.requires_grad_() for t in _views(4, 3, torch.float64, v=4))
    for fn in (L.byol_loss, L.negative_cosine, L.barlow_twins, L.vicreg):
        assert torch.autograd.gradcheck(fn, (p, z), fast_mode=True)
    center = torch.zeros(1, 3, dtype=torch.float64)
    teacher = [a.detach().clone(), b.detach().clone()]  # gradcheck perturbs inputs in place
    assert torch.autograd.gradcheck(
        lambda s1, s2, s3: L.dino_loss([s1, s2, s3], teacher, center),
        (p, z, a),
        fast_mode=True,
    )
