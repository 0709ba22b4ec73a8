"""InfoNCE-family and logistic losses against the naive loops in tests/reference."""

from __future__ import annotations

import math

import pytest
import torch

from selfsup.losses import functional as L
from tests.reference import losses_naive as naive

DTYPES = [torch.float32, torch.float64]
SHAPES = [(1, 3), (2, 3), (5, 32), (16, 32)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These tensors are tiny: a second OpenMP thread only adds scheduling latency (tens of ms
    # per op on a shared, loaded machine), so this module runs single-threaded.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _views(n: int, d: int, dtype: torch.dtype, seed: int = 0, v: int = 2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=dtype) for _ in range(v)]


def _check(got: torch.Tensor, want: float) -> None:
    assert got.dim() == 0 and torch.isfinite(got)
    torch.testing.assert_close(
        got, torch.tensor(want, dtype=got.dtype), **naive.tolerances(got.dtype)
    )


def _grads_finite(loss: torch.Tensor, *inputs: torch.Tensor) -> None:
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    assert all(g is None or torch.isfinite(g).all() for g in grads)


# --------------------------------------------------------------------------- NT-Xent


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [0.1, 0.5])
@pytest.mark.parametrize("n,d", SHAPES)
def test_nt_xent_matches_loop(n, d, temperature, dtype):
    z_a, z_b = _views(n, d, dtype)
    _check(L.nt_xent(z_a, z_b, temperature), naive.nt_xent(z_a, z_b, temperature))


def test_nt_xent_one_sample_is_zero_with_grad():
    z_a, z_b = (t.requires_grad_() for t in _views(1, 4, torch.float64))
    loss = L.nt_xent(z_a, z_b)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    _grads_finite(loss, z_a, z_b)


def test_nt_xent_bf16_finite_and_close():
    z_a, z_b = _views(16, 32, torch.float32)
    ref = L.nt_xent(z_a, z_b, 0.1)
    low = L.nt_xent(z_a.bfloat16(), z_b.bfloat16(), 0.1)
    assert torch.isfinite(low)
    assert abs(low.float().item() - ref.item()) < 0.05 * ref.item()


def test_nt_xent_rejects_bad_shapes():
    with pytest.raises(ValueError):
        L.nt_xent(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError):
        L.nt_xent(torch.randn(0, 4), torch.randn(0, 4))


# --------------------------------------------------------------------------- InfoNCE


INFO_NCE_MODES = [
    # (in_batch_negatives, n_queue, symmetric)
    (True, 0, False),
    (True, 0, True),
    (True, 7, False),
    (False, 7, False),
    (False, 7, True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", INFO_NCE_MODES)
@pytest.mark.parametrize("n,d", SHAPES)
def test_info_nce_matches_loop(n, d, mode, dtype):
    in_batch, n_queue, symmetric = mode
    q, k, queue = _views(max(n, n_queue), d, dtype, v=3)
    q, k, queue = q[:n], k[:n], (queue[:n_queue] if n_queue else None)
    for temperature in (0.07, 0.2):
        got = L.info_nce(q, k, temperature, queue, in_batch, symmetric)
        _check(got, naive.info_nce(q, k, temperature, queue, in_batch, symmetric))


@pytest.mark.parametrize("dtype", DTYPES)
def test_info_nce_unnormalized_matches_loop(dtype):
    q, k, queue = _views(5, 3, dtype, v=3)
    got = L.info_nce(q, k, 0.5, queue, symmetric=True, normalize=False)
    _check(got, naive.info_nce(q, k, 0.5, queue, True, True, normalize=False))


def test_info_nce_needs_negatives():
    q, k = _views(3, 4, torch.float32)
    with pytest.raises(ValueError):
        L.info_nce(q, k, in_batch_negatives=False)


def test_info_nce_moco_logits_layout():
    # MoCo's reference: logits = cat([l_pos, l_neg]) / T, label 0.
    q, k, queue = (
        torch.nn.functional.normalize(t, dim=1) for t in _views(6, 8, torch.float64, v=3)
    )
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], 1) / 0.07
    want = torch.nn.functional.cross_entropy(logits, torch.zeros(6, dtype=torch.long))
    torch.testing.assert_close(L.info_nce(q, k, 0.07, queue, in_batch_negatives=False), want)


# --------------------------------------------------------------------------- DCL


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sigma", [None, 0.5])
@pytest.mark.parametrize("n,d", SHAPES[1:])
def test_dcl_matches_loop(n, d, sigma, dtype):
    z_a, z_b = _views(n, d, dtype)
    weight_fn = None if sigma is None else (lambda a, b: L.vmf_weights(a, b, sigma))
    for temperature in (0.1, 0.5):
        got = L.dcl(z_a, z_b, temperature, weight_fn)
        _check(got, naive.dcl(z_a, z_b, temperature, sigma))


def test_dcl_one_sample_raises():
    z_a, z_b = _views(1, 4, torch.float32)
    with pytest.raises(ValueError):
        L.dcl(z_a, z_b)


def test_vmf_weights_average_one():
    z_a, z_b = (torch.nn.functional.normalize(t, dim=1) for t in _views(9, 5, torch.float64))
    assert L.vmf_weights(z_a, z_b).mean().item() == pytest.approx(1.0)


# --------------------------------------------------------------------------- SupCon


SUPCON_LABELS = [
    [0, 0, 1, 1, 2],  # a singleton class
    [3, 3, 3, 3, 3],  # no negatives
    [0, 1, 2, 3, 4],  # unique: positives only from other views
    [1, 0, 1, 0, 1, 1, 2, 2, 0, 3, 3, 1, 4, 4, 4, 0],
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("views", [1, 2, 3])
@pytest.mark.parametrize("labels", SUPCON_LABELS)
def test_supcon_matches_loop(labels, views, dtype):
    n = len(labels)
    z = torch.stack(_views(n, 32 if n > 5 else 3, dtype, v=views), dim=1)
    z = z[:, 0] if views == 1 else z
    lab = torch.tensor(labels)
    _check(L.supcon(z, lab, 0.1), naive.supcon(z, lab, 0.1))
    _check(L.supcon(z, lab, 0.5), naive.supcon(z, lab, 0.5))


@pytest.mark.parametrize("n,d", SHAPES)
def test_supcon_equals_nt_xent_for_unique_labels(n, d):
    z_a, z_b = _views(n, d, torch.float64)
    got = L.supcon(torch.stack([z_a, z_b], 1), torch.arange(n) * 3 + 1, 0.2)
    torch.testing.assert_close(got, L.nt_xent(z_a, z_b, 0.2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("labels", [[0, 1, 2], [7]])
def test_supcon_without_positives_is_zero_with_grad(labels):
    z = torch.randn(len(labels), 4, dtype=torch.float64, requires_grad=True)
    loss = L.supcon(z, torch.tensor(labels))
    assert loss.item() == 0.0
    (g,) = torch.autograd.grad(loss, z)
    assert torch.all(g == 0)


def test_supcon_singleton_class_no_nan():
    z = torch.randn(4, 3, 5, dtype=torch.float64)[:, 0].requires_grad_()
    loss = L.supcon(z, torch.tensor([0, 0, 1, 2]))
    assert torch.isfinite(loss)
    _grads_finite(loss, z)


# --------------------------------------------------------------------------- logistic


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d", SHAPES)
def test_logistic_pairwise_matches_loop(n, d, dtype):
    z_a, z_b = _views(n, d, dtype)
    for log_scale, bias in [(math.log(10.0), -10.0), (0.3, 1.5)]:
        got = L.logistic_pairwise(z_a, z_b, torch.tensor(log_scale, dtype=dtype), bias)
        _check(got, naive.siglip(z_a, z_b, log_scale, bias))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("n,d,k", [(1, 3, 1), (5, 3, 4), (16, 32, 5)])
def test_negative_sampling_matches_loop(n, d, k, shared, dtype):
    q, p = _views(n, d, dtype)
    g = torch.Generator().manual_seed(7)
    negs = torch.randn(*((k, d) if shared else (n, k, d)), generator=g, dtype=dtype) * 0.3
    _check(L.negative_sampling(q, p, negs), naive.negative_sampling(q, p, negs))


# --------------------------------------------------------------------------- gradcheck


def _gradcheck(fn, *inputs):
    inputs = tuple(t.detach().double().requires_grad_() for t in inputs)
    assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)


def test_gradcheck_contrastive_family():
    z_a, z_b, extra = _views(4, 3, torch.float64, v=3)
    _gradcheck(lambda a, b: L.nt_xent(a, b, 0.3), z_a, z_b)
    _gradcheck(lambda a, b, c: L.info_nce(a, b, 0.2, c, symmetric=True), z_a, z_b, extra)
    _gradcheck(lambda a, b, c: L.info_nce(a, b, 0.2, c, in_batch_negatives=False), z_a, z_b, extra)
    _gradcheck(lambda a, b: L.dcl(a, b, 0.3), z_a, z_b)
    _gradcheck(lambda a, b: L.dcl(a, b, 0.3, L.vmf_weights), z_a, z_b)
    labels = torch.tensor([0, 1, 0, 2])
    _gradcheck(lambda a, b: L.supcon(torch.stack([a, b], 1), labels, 0.3), z_a, z_b)
    _gradcheck(lambda a, b, t, c: L.logistic_pairwise(a, b, t, c), z_a, z_b,
               torch.tensor(0.5), torch.tensor(-1.0))  # fmt: skip
    _gradcheck(lambda a, b, c: L.negative_sampling(a, b, c.reshape(4, 1, 3)), z_a, z_b, extra)


def test_gather_without_process_group_is_a_no_op():
    z_a, z_b, extra = _views(6, 5, torch.float64, v=3)
    labels = torch.tensor([0, 1, 0, 2, 2, 1])
    pairs = [
        lambda g: L.nt_xent(z_a, z_b, 0.3, gather=g),
        lambda g: L.info_nce(z_a, z_b, 0.2, extra, symmetric=True, gather=g),
        lambda g: L.dcl(z_a, z_b, 0.3, L.vmf_weights, gather=g),
        lambda g: L.supcon(torch.stack([z_a, z_b], 1), labels, 0.3, gather=g),
        lambda g: L.logistic_pairwise(z_a, z_b, 1.0, -2.0, gather=g),
        lambda g: L.barlow_twins(z_a, z_b, gather=g),
        lambda g: L.vicreg(z_a, z_b, gather=g),
    ]
    for fn in pairs:
        assert fn(True).item() == fn(False).item()
