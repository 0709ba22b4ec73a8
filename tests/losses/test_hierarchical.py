"""TS2Vec's hierarchical contrastive loss against a naive loop and the official code.

The naive loop writes every -log softmax entry one at a time (Python loops over scales,
anchors and candidates); the official functions (github.com/yuezhihan/ts2vec,
models/losses.py, MIT licence, Copyright (c) 2022 Zhihan Yue) are copied verbatim below as a
second reference. float64, 1e-10.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from selfsup.losses import (
    HierarchicalContrastiveLoss,
    hierarchical_contrastive_loss,
    instance_contrastive_loss,
    temporal_contrastive_loss,
)

TOL = dict(rtol=1e-10, atol=1e-10)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: a second OpenMP thread only adds scheduling latency on a shared machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ naive reference


def _neg_log_softmax_at(scores: list[float], positive: int) -> float:
    """-log(exp(s_pos) / sum_j exp(s_j)), written out (shifted by the max for exp's range)."""
    top = max(scores)
    return -(scores[positive] - top - math.log(sum(math.exp(s - top) for s in scores)))


def _naive_contrast(views: list[list[list[float]]]) -> float:
    """views: [view 1, view 2], each a list of n vectors; anchor j of one view against the 2n
    vectors of both views except itself, positive: j of the other view. Mean over 2n."""
    n = len(views[0])
    pool = [(v, j) for v in range(2) for j in range(n)]
    total = 0.0
    for v, j in pool:
        a = views[v][j]
        others = [(w, k) for w, k in pool if (w, k) != (v, j)]
        scores = [sum(x * y for x, y in zip(a, views[w][k], strict=True)) for w, k in others]
        total += _neg_log_softmax_at(scores, others.index((1 - v, j)))
    return total / (2 * n)


def _naive_pool(z: list[list[list[float]]]) -> list[list[list[float]]]:
    """(B, T, D) nested lists -> (B, T // 2, D): max over timesteps (2s, 2s + 1)."""
    return [
        [
            [max(a, b) for a, b in zip(s[2 * i], s[2 * i + 1], strict=True)]
            for i in range(len(s) // 2)
        ]
        for s in z
    ]


def naive_instance(z1, z2) -> float:
    b, t = len(z1), len(z1[0])
    if b == 1:
        return 0.0
    return (
        sum(
            _naive_contrast([[z1[i][s] for i in range(b)], [z2[i][s] for i in range(b)]])
            for s in range(t)
        )
        / t
    )


def naive_temporal(z1, z2) -> float:
    return sum(_naive_contrast([z1[i], z2[i]]) for i in range(len(z1))) / len(z1)


def naive_hierarchical(z1: torch.Tensor, z2: torch.Tensor, alpha=0.5, temporal_unit=0) -> float:
    a, b = z1.tolist(), z2.tolist()
    total, scales = 0.0, 0
    while True:
        total += alpha * naive_instance(a, b)
        if len(a[0]) > 1 and scales >= temporal_unit:
            total += (1 - alpha) * naive_temporal(a, b)
        scales += 1
        if len(a[0]) == 1:
            return total / scales
        a, b = _naive_pool(a), _naive_pool(b)


# ------------------------------------------------------------------ the official code (verbatim)


def official_hierarchical(z1, z2, alpha=0.5, temporal_unit=0):
    loss = torch.tensor(0.0, device=z1.device, dtype=z1.dtype)  # dtype: float64 here
    d = 0
    while z1.size(1) > 1:
        if alpha != 0:
            loss += alpha * official_instance(z1, z2)
        if d >= temporal_unit:
            if 1 - alpha != 0:
                loss += (1 - alpha) * official_temporal(z1, z2)
        d += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), kernel_size=2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), kernel_size=2).transpose(1, 2)
    if z1.size(1) == 1:
        if alpha != 0:
            loss += alpha * official_instance(z1, z2)
        d += 1
    return loss / d


def official_instance(z1, z2):
    B = z1.size(0)
    if B == 1:
        return z1.new_tensor(0.0)
    z = torch.cat([z1, z2], dim=0)
    z = z.transpose(0, 1)
    sim = torch.matmul(z, z.transpose(1, 2))
    logits = torch.tril(sim, diagonal=-1)[:, :, :-1]
    logits += torch.triu(sim, diagonal=1)[:, :, 1:]
    logits = -F.log_softmax(logits, dim=-1)
    i = torch.arange(B, device=z1.device)
    return (logits[:, i, B + i - 1].mean() + logits[:, B + i, i].mean()) / 2


def official_temporal(z1, z2):
    T = z1.size(1)
    if T == 1:
        return z1.new_tensor(0.0)
    z = torch.cat([z1, z2], dim=1)
    sim = torch.matmul(z, z.transpose(1, 2))
    logits = torch.tril(sim, diagonal=-1)[:, :, :-1]
    logits += torch.triu(sim, diagonal=1)[:, :, 1:]
    logits = -F.log_softmax(logits, dim=-1)
    t = torch.arange(T, device=z1.device)
    return (logits[:, t, T + t - 1].mean() + logits[:, T + t, t].mean()) / 2


# ------------------------------------------------------------------ tests


def _views(b: int, t: int, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, t, d, generator=g, dtype=torch.float64) for _ in range(2))


# T = 7, 5, 3: odd lengths, where max-pooling drops the last step (as the official code).
CASES = [(3, 8), (2, 7), (4, 5), (1, 6), (3, 1), (1, 1), (2, 2), (5, 3)]


@pytest.mark.parametrize(("b", "t"), CASES)
@pytest.mark.parametrize(("alpha", "unit"), [(0.5, 0), (0.3, 1), (1.0, 0), (0.0, 2)])
def test_matches_naive_loop_and_official_code(b, t, alpha, unit):
    z1, z2 = _views(b, t)
    got = hierarchical_contrastive_loss(z1, z2, alpha, unit)
    assert got.dim() == 0 and got.dtype == torch.float64
    want = naive_hierarchical(z1, z2, alpha, unit)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), **TOL)
    torch.testing.assert_close(got, official_hierarchical(z1, z2, alpha, unit), **TOL)


@pytest.mark.parametrize(("b", "t"), [(3, 4), (1, 5), (4, 1)])
def test_single_scale_terms_match(b, t):
    z1, z2 = _views(b, t, seed=1)
    a, c = z1.tolist(), z2.tolist()
    inst, temp = instance_contrastive_loss(z1, z2), temporal_contrastive_loss(z1, z2)
    torch.testing.assert_close(inst, torch.tensor(naive_instance(a, c), dtype=z1.dtype), **TOL)
    torch.testing.assert_close(inst, official_instance(z1, z2), **TOL)
    want = naive_temporal(a, c) if t > 1 else 0.0
    torch.testing.assert_close(temp, torch.tensor(want, dtype=z1.dtype), **TOL)
    torch.testing.assert_close(temp, official_temporal(z1, z2), **TOL)


def test_gradients_match_official_code():
    z1, z2 = (z.requires_grad_() for z in _views(4, 6, seed=2))
    ours = torch.autograd.grad(hierarchical_contrastive_loss(z1, z2), (z1, z2))
    theirs = torch.autograd.grad(official_hierarchical(z1, z2), (z1, z2))
    for g, h in zip(ours, theirs, strict=True):
        torch.testing.assert_close(g, h, **TOL)


def test_one_sample_one_step_is_an_exact_zero_in_the_graph():
    """B = 1 has no instance negative and T = 1 no temporal one: TS2Vec returns 0 for both."""
    z1, z2 = (z.requires_grad_() for z in _views(1, 1))
    loss = hierarchical_contrastive_loss(z1, z2)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(z1.grad, torch.zeros_like(z1))


def test_stable_for_large_scores():
    """Unnormalized dot products in the thousands: log_softmax keeps the loss finite."""
    z1, z2 = _views(3, 4, d=8)
    loss = hierarchical_contrastive_loss(100 * z1, 100 * z2)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, official_hierarchical(100 * z1, 100 * z2), **TOL)


def test_module_and_bad_inputs():
    z1, z2 = _views(3, 4)
    module = HierarchicalContrastiveLoss(alpha=0.25, temporal_unit=1)
    torch.testing.assert_close(module(z1, z2), official_hierarchical(z1, z2, 0.25, 1), **TOL)
    assert "alpha=0.25" in repr(module)
    with pytest.raises(ValueError, match="equal shape"):
        hierarchical_contrastive_loss(z1, z2[:, :3])
    with pytest.raises(ValueError, match="equal shape"):
        hierarchical_contrastive_loss(z1[0], z2[0])
    with pytest.raises(ValueError, match="empty"):
        hierarchical_contrastive_loss(z1[:, :0], z2[:, :0])
    with pytest.raises(ValueError, match="alpha"):
        hierarchical_contrastive_loss(z1, z2, alpha=1.5)
