"""Distances and miners against loops over pairs and triplets."""

from __future__ import annotations

import pytest
import torch

from selfsup.losses import mining
from selfsup.losses.distances import cosine_similarity_matrix, pairwise_distance
from tests.reference import losses_naive as naive

DTYPES = [torch.float32, torch.float64]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These tensors are tiny: a second OpenMP thread only adds scheduling latency (tens of ms
    # per op on a shared, loaded machine), so this module runs single-threaded.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _z(n: int, d: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("n,d", [(1, 3), (5, 32), (12, 3)])
def test_pairwise_distance_matches_loop(n, d, squared, dtype):
    x, y = _z(n, d, dtype), _z(n + 2, d, dtype, seed=1)
    got = pairwise_distance(x, y, squared=squared)
    want = [[naive.euclid(u, v, squared) for v in naive.rows(y)] for u in naive.rows(x)]
    torch.testing.assert_close(got, torch.tensor(want, dtype=dtype), **naive.tolerances(dtype))
    self_d = pairwise_distance(x, squared=squared)
    assert torch.all(torch.diagonal(self_d) == 0)
    want_self = [[naive.euclid(u, v, squared) for v in naive.rows(x)] for u in naive.rows(x)]
    torch.testing.assert_close(
        self_d, torch.tensor(want_self, dtype=dtype), **naive.tolerances(dtype)
    )


@pytest.mark.parametrize("squared", [False, True])
def test_pairwise_distance_gradient_at_zero_is_finite(squared):
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    d = pairwise_distance(x, squared=squared)
    assert d[0, 1] == 0 and d[1, 0] == 0
    d.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_pairwise_distance_gradcheck():
    x = _z(4, 3, torch.float64).requires_grad_()
    y = _z(3, 3, torch.float64, seed=2).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: pairwise_distance(a, b), (x, y), fast_mode=True)
    assert torch.autograd.gradcheck(lambda a: pairwise_distance(a), (x,), fast_mode=True)


def test_cosine_similarity_matrix():
    x, y = _z(4, 5, torch.float64), _z(3, 5, torch.float64, seed=3)
    want = [[naive.cos(u, v) for v in naive.rows(y)] for u in naive.rows(x)]
    torch.testing.assert_close(cosine_similarity_matrix(x, y), torch.tensor(want, dtype=x.dtype))
    zero = torch.zeros(2, 5)
    assert torch.all(cosine_similarity_matrix(zero) == 0)


LABELS = [
    [0, 0, 1, 1, 2, 2, 2],
    [3, 1, 3, 1, 1, 0, 7, 7],
    [0, 0, 0, 0],  # no negatives
    [0, 1, 2, 3],  # no positives
    [5],  # one sample
]


@pytest.mark.parametrize("labels", LABELS)
def test_pair_masks(labels):
    lab = torch.tensor(labels)
    pos, neg = mining.pair_masks(lab)
    for i in range(len(labels)):
        for j in range(len(labels)):
            assert pos[i, j] == (i != j and labels[i] == labels[j])
            assert neg[i, j] == (labels[i] != labels[j])


@pytest.mark.parametrize("labels", LABELS)
@pytest.mark.parametrize("miner", ["all", "batch_hard", "semi_hard"])
def test_miners_match_loop(labels, miner):
    lab = torch.tensor(labels)
    z = _z(len(labels), 3, torch.float64, seed=len(labels))
    d = pairwise_distance(z)
    margin = 0.8
    if miner == "all":
        got = mining.all_triplets(lab)
    elif miner == "batch_hard":
        got = mining.batch_hard(d, lab)
    else:
        got = mining.semi_hard(d, lab, margin)
    want = naive.triplet_indices(d.tolist(), labels, miner, margin)
    assert sorted(zip(*(t.tolist() for t in got), strict=True)) == sorted(want)
    assert all(t.dtype == torch.long for t in got)


def test_semi_hard_band():
    # anchor 0, positive 1 at distance 1; negatives at 0.5 (hard), 1.2 and 1.1 (semi-hard),
    # 3.0 (easy).
    z = torch.tensor([[0.0], [1.0], [0.5], [1.2], [-1.1], [3.0]])
    lab = torch.tensor([0, 0, 1, 1, 2, 2])
    a, p, n = mining.semi_hard(pairwise_distance(z), lab, margin=0.5)
    first = [(ai, pi, ni) for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist(), strict=True)]
    assert (0, 1, 4) in first  # the closest negative inside (1, 1.5)


@pytest.mark.parametrize(
    "labels,want",
    [
        ([2, 0, 2, 1, 0, 2], [(1, 4), (0, 2)]),  # classes 0 and 2; class 1 is a singleton
        ([0, 1, 2], []),
        ([4, 4], [(0, 1)]),
    ],
)
def test_first_pairs(labels, want):
    a, p = mining.first_pairs(torch.tensor(labels))
    assert list(zip(a.tolist(), p.tolist(), strict=True)) == want
