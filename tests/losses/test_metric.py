"""Label-based metric-learning losses (triplet, N-pair, margin contrastive) against loops."""

from __future__ import annotations

import pytest
import torch

from selfsup.losses import functional as L
from tests.reference import losses_naive as naive

DTYPES = [torch.float32, torch.float64]
LABELS = [
    [0, 0, 1, 1, 2],  # a singleton class
    [1, 0, 1, 0, 1, 1, 2, 2, 0, 3, 3, 1, 4, 4, 4, 0],
    [4, 4, 4, 4],  # all the same: no negative
    [0, 1, 2, 3],  # all different: no positive
    [9],  # one sample
    [2, 5],
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: a second OpenMP thread only adds scheduling latency on a loaded machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _z(labels, d: int, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(len(labels), d, generator=g, dtype=dtype), torch.tensor(labels)


def _check(got: torch.Tensor, want: float) -> None:
    assert got.dim() == 0 and torch.isfinite(got)
    tol = naive.tolerances(got.dtype)
    torch.testing.assert_close(got, torch.tensor(want, dtype=got.dtype), **tol)


def _zero_with_grad(loss: torch.Tensor, z: torch.Tensor) -> None:
    assert loss.item() == 0.0
    (g,) = torch.autograd.grad(loss, z)
    assert torch.all(g == 0)


# --------------------------------------------------------------------------- triplet

TRIPLET_OPTIONS = [
    # (squared, soft, normalize, nonzero_mean, margin)
    (False, False, True, False, 0.2),
    (True, False, True, False, 0.2),
    (False, True, True, False, 0.2),
    (False, False, False, True, 1.0),
    (True, False, False, False, 4.0),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("miner", ["all", "batch_hard", "semi_hard"])
@pytest.mark.parametrize("labels", LABELS[:2])
def test_triplet_matches_loop(labels, miner, dtype):
    for d in (3, 32):
        z, lab = _z(labels, d, dtype, seed=d)
        for squared, soft, normalize, nonzero_mean, margin in TRIPLET_OPTIONS:
            kw = dict(
                margin=margin,
                miner=miner,
                squared=squared,
                soft=soft,
                normalize=normalize,
                nonzero_mean=nonzero_mean,
            )
            _check(L.triplet_margin(z, lab, **kw), naive.triplet_margin(z, lab, **kw))


@pytest.mark.parametrize("miner", ["all", "batch_hard", "semi_hard"])
@pytest.mark.parametrize("labels", LABELS[2:])
def test_triplet_without_triplets_is_zero_with_grad(labels, miner):
    z, lab = _z(labels, 3, torch.float64)
    z.requires_grad_()
    _zero_with_grad(L.triplet_margin(z, lab, miner=miner), z)
    _zero_with_grad(L.triplet_margin(z, lab, miner=miner, nonzero_mean=True), z)


def test_triplet_nonzero_mean_all_satisfied_is_zero_with_grad():
    # Two tight, far-apart clusters: every triplet satisfies the margin.
    z = torch.tensor([[0.0, 0.0], [0.01, 0.0], [5.0, 5.0], [5.0, 5.01]], requires_grad=True)
    lab = torch.tensor([0, 0, 1, 1])
    _zero_with_grad(L.triplet_margin(z, lab, normalize=False, nonzero_mean=True), z)


def test_triplet_duplicate_points_grad_finite():
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    loss = L.triplet_margin(z, torch.tensor([0, 0, 1, 1]), miner="batch_hard")
    (g,) = torch.autograd.grad(loss, z)
    assert torch.isfinite(loss) and torch.isfinite(g).all()


def test_triplet_unknown_miner():
    z, lab = _z([0, 0, 1], 3, torch.float32)
    with pytest.raises(ValueError, match="batch_hard"):
        L.triplet_margin(z, lab, miner="hardest")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- N-pair


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("labels", [LABELS[0], LABELS[1], [3, 1, 3, 2, 1, 2, 0, 0]])
def test_npair_matches_loop(labels, dtype):
    for d in (3, 32):
        z, lab = _z(labels, d, dtype, seed=d)
        z = z * 0.3  # keep raw inner products in a range where the softmax is not saturated
        for l2_reg in (0.0, 0.02):
            _check(L.npair(z, lab, l2_reg), naive.npair(z, lab, l2_reg))


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [9]])
def test_npair_without_pairs_is_zero_with_grad(labels):
    z, lab = _z(labels, 3, torch.float64)
    z.requires_grad_()
    _zero_with_grad(L.npair(z, lab), z)


def test_npair_one_class_is_only_the_regulariser():
    z, lab = _z([4, 4, 4], 3, torch.float64)
    want = 0.02 * (z[0].pow(2).sum() + z[1].pow(2).sum()) / 2
    torch.testing.assert_close(L.npair(z, lab), want)


# --------------------------------------------------------------------------- margin contrastive


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("labels", LABELS[:4] + [LABELS[5]])
def test_margin_contrastive_matches_loop(labels, dtype):
    for d in (3, 32):
        z, lab = _z(labels, d, dtype, seed=d)
        for pos_margin, neg_margin in [(0.0, 1.0), (0.3, 8.0)]:
            for squared in (True, False):
                for normalize in (False, True):
                    kw = dict(
                        pos_margin=pos_margin,
                        neg_margin=neg_margin,
                        squared=squared,
                        normalize=normalize,
                    )
                    got = L.margin_contrastive(z, lab, **kw)
                    _check(got, naive.margin_contrastive(z, lab, **kw))


def test_margin_contrastive_one_sample_is_zero_with_grad():
    z, lab = _z([1], 3, torch.float64)
    z.requires_grad_()
    _zero_with_grad(L.margin_contrastive(z, lab), z)


def test_margin_contrastive_identical_positives_grad_finite():
    z = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    loss = L.margin_contrastive(z, torch.tensor([0, 0, 1]), pos_margin=0.0)
    (g,) = torch.autograd.grad(loss, z)
    assert torch.isfinite(g).all()


# --------------------------------------------------------------------------- gradcheck


def test_gradcheck_metric_losses():
    z, lab = _z([0, 1, 0, 1, 2], 3, torch.float64, seed=3)
    z.requires_grad_()
    for miner in ("all", "batch_hard", "semi_hard"):
        for squared in (False, True):
            assert torch.autograd.gradcheck(
                lambda x, m=miner, s=squared: L.triplet_margin(x, lab, 1.0, m, s),
                (z,),
                fast_mode=True,
            )
    assert torch.autograd.gradcheck(
        lambda x: L.triplet_margin(x, lab, miner="batch_hard", soft=True), (z,), fast_mode=True
    )
    assert torch.autograd.gradcheck(lambda x: L.npair(x, lab), (z,), fast_mode=True)
    assert torch.autograd.gradcheck(
        lambda x: L.margin_contrastive(x, lab, 0.1, 2.0), (z,), fast_mode=True
    )
