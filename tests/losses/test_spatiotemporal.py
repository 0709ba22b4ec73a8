"""ST-DIM's global-local and local-local InfoNCE against hand-written loops (float64)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as torch_dist
import torch.nn.functional as F

from selfsup.losses.spatiotemporal import (
    STDIMLoss,
    global_local_infonce,
    local_local_infonce,
)
from tests.two_processes import WORLD, run_on_ranks

TOL = dict(rtol=1e-5, atol=1e-5)


def _log_softmax_at(scores: list[float], i: int) -> float:
    top = max(scores)
    return scores[i] - top - math.log(sum(math.exp(s - top) for s in scores))


def _naive(anchor_at, local: torch.Tensor) -> float:
    """-mean over (h, w, i) of log softmax_j(anchor_at(i, h, w) . local[j, h, w])[i], in loops.

    anchor_at(i, h, w) -> list of C floats; local (N, H, W, C) channels last.
    """
    loc = local.tolist()
    n, hh, ww, c = local.shape
    total = 0.0
    for h in range(hh):
        for w in range(ww):
            for i in range(n):
                a = anchor_at(i, h, w)
                scores = [sum(a[k] * loc[j][h][w][k] for k in range(c)) for j in range(n)]
                total -= _log_softmax_at(scores, i)
    return total / (hh * ww * n)


def _naive_global_local(anchors: torch.Tensor, local: torch.Tensor) -> float:
    a = anchors.tolist()
    return _naive(lambda i, h, w: a[i], local)


def _naive_local_local(anchors: torch.Tensor, local: torch.Tensor) -> float:
    a = anchors.tolist()
    return _naive(lambda i, h, w: a[i][h][w], local)


def _linear(x: list[float], weight: torch.Tensor, bias: torch.Tensor) -> list[float]:
    wt, b = weight.tolist(), bias.tolist()
    return [sum(wt[o][k] * x[k] for k in range(len(x))) + b[o] for o in range(len(b))]


def _maps(n: int, h: int, w: int, c: int, d: int, seed: int = 0):
    """global_next (N, D), local_next, local_now (N, H, W, C), float64."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, d, generator=g, dtype=torch.float64)
    f_next = torch.randn(n, h, w, c, generator=g, dtype=torch.float64)
    f_now = torch.randn(n, h, w, c, generator=g, dtype=torch.float64)
    return y, f_next, f_now


def _t(x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


SHAPES = [(1, 2, 2, 3), (2, 1, 1, 3), (5, 3, 2, 4), (7, 2, 3, 2)]


@pytest.mark.parametrize(("n", "h", "w", "c"), SHAPES)
def test_global_local_matches_the_naive_loop(n: int, h: int, w: int, c: int) -> None:
    anchors, _, local = _maps(n, h, w, c, c, seed=n)
    got = global_local_infonce(anchors, local)
    assert got.dim() == 0 and got.dtype == torch.float64
    torch.testing.assert_close(got, _t(_naive_global_local(anchors, local)), **TOL)


@pytest.mark.parametrize(("n", "h", "w", "c"), SHAPES)
def test_local_local_matches_the_naive_loop(n: int, h: int, w: int, c: int) -> None:
    _, anchors, local = _maps(n, h, w, c, 1, seed=n)
    got = local_local_infonce(anchors, local)
    assert got.dim() == 0 and got.dtype == torch.float64
    torch.testing.assert_close(got, _t(_naive_local_local(anchors, local)), **TOL)


def test_one_sample_gives_zero() -> None:
    y, f_next, f_now = _maps(1, 3, 2, 4, 4)
    assert global_local_infonce(y, f_now).item() == 0.0
    assert local_local_infonce(f_next, f_now).item() == 0.0


def test_module_is_the_sum_of_both_terms_through_its_linear_maps() -> None:
    """Anchors g(y) and h(f) computed by hand with the module's weights and biases."""
    torch.manual_seed(0)
    n, h, w, c, d = 4, 3, 2, 3, 5
    module = STDIMLoss(d, c).double()
    y, f_next, f_now = _maps(n, h, w, c, d, seed=1)
    g, hm = module.global_local, module.local_local
    ys, fs = y.tolist(), f_next.tolist()
    gl = _naive(lambda i, a, b: _linear(ys[i], g.weight, g.bias), f_now)
    ll = _naive(lambda i, a, b: _linear(fs[i][a][b], hm.weight, hm.bias), f_now)
    terms = module.terms(y, f_next, f_now)
    torch.testing.assert_close(terms[0], _t(gl), **TOL)
    torch.testing.assert_close(terms[1], _t(ll), **TOL)
    torch.testing.assert_close(module(y, f_next, f_now), _t(gl + ll), **TOL)


def test_module_matches_the_official_per_location_loop() -> None:
    """The official trainer's loop (stdim.py): per (y, x) cross-entropy of classifier(...) @
    positive.t(), summed then divided by sx * sy, loss1 + loss2."""
    torch.manual_seed(0)
    n, sy, sx, c, d = 6, 4, 3, 8, 16
    module = STDIMLoss(d, c).double()
    f_t, f_t_maps, f_t_prev = _maps(n, sy, sx, c, d, seed=2)
    target = torch.arange(n)
    loss1 = loss2 = 0.0
    for yy in range(sy):
        for xx in range(sx):
            positive = f_t_prev[:, yy, xx, :]
            logits = module.global_local(f_t) @ positive.t()
            loss1 = loss1 + F.cross_entropy(logits, target)
            logits = module.local_local(f_t_maps[:, yy, xx, :]) @ positive.t()
            loss2 = loss2 + F.cross_entropy(logits, target)
    want = loss1 / (sx * sy) + loss2 / (sx * sy)
    torch.testing.assert_close(module(f_t, f_t_maps, f_t_prev), want, rtol=1e-12, atol=1e-12)


def test_gradients_flow_to_inputs_and_both_maps() -> None:
    module = STDIMLoss(5, 3).double()
    y, f_next, f_now = (t.requires_grad_() for t in _maps(4, 2, 3, 3, 5, seed=3))
    module(y, f_next, f_now).backward()
    grads = [y.grad, f_next.grad, f_now.grad] + [p.grad for p in module.parameters()]
    assert len(grads) == 7
    for grad in grads:
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_pure_functions_match_finite_differences() -> None:
    y, f_next, f_now = (t.requires_grad_() for t in _maps(3, 2, 2, 2, 2, seed=4))
    assert torch.autograd.gradcheck(global_local_infonce, (y, f_now))
    assert torch.autograd.gradcheck(local_local_infonce, (f_next, f_now))


def test_permuting_the_batch_consistently_leaves_the_loss_unchanged() -> None:
    module = STDIMLoss(6, 4).double()
    y, f_next, f_now = _maps(7, 3, 2, 4, 6, seed=5)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(perm, torch.arange(7))
    torch.testing.assert_close(
        module(y[perm], f_next[perm], f_now[perm]), module(y, f_next, f_now), **TOL
    )
    torch.testing.assert_close(
        global_local_infonce(y[perm, :4], f_now[perm]), global_local_infonce(y[:, :4], f_now)
    )


def test_aligned_anchors_score_lower_than_random_ones() -> None:
    """Anchors pointing at their own sample's local features pick it out; random ones do not."""
    n, h, w, c = 8, 3, 3, 16
    g = torch.Generator().manual_seed(6)
    codes = torch.randn(n, c, generator=g, dtype=torch.float64)
    local = codes[:, None, None, :] + 0.1 * torch.randn(n, h, w, c, generator=g).double()
    random_global = torch.randn(n, c, generator=g, dtype=torch.float64)
    random_local = torch.randn(n, h, w, c, generator=g, dtype=torch.float64)
    aligned_gl = global_local_infonce(3.0 * codes, local)
    aligned_ll = local_local_infonce(3.0 * local, local)
    assert aligned_gl < 0.1 * global_local_infonce(random_global, local)
    assert aligned_ll < 0.1 * local_local_infonce(random_local, local)
    assert aligned_gl < 0.1 * math.log(n) and aligned_ll < 0.1 * math.log(n)


def test_bad_shapes_are_refused() -> None:
    y, f_next, f_now = _maps(4, 3, 2, 5, 6)
    with pytest.raises(ValueError, match=r"anchors must be \(N, C\) = \(4, 5\).*\(4, 6\)"):
        global_local_infonce(y, f_now)
    with pytest.raises(ValueError, match=r"anchors must be \(N, C\) = \(4, 5\).*\(3, 5\)"):
        global_local_infonce(y[:3, :5], f_now)
    with pytest.raises(ValueError, match=r"channels-last \(N, H, W, C\).*\(4, 3, 5\)"):
        global_local_infonce(y[:, :5], f_now[:, :, 0])
    with pytest.raises(ValueError, match=r"equal shape.*\(4, 3, 1, 5\), \(4, 3, 2, 5\)"):
        local_local_infonce(f_next[:, :, :1], f_now)
    with pytest.raises(ValueError, match="empty"):
        local_local_infonce(f_next[:0], f_now[:0])
    module = STDIMLoss(6, 5).double()
    with pytest.raises(ValueError, match=r"global_next must be \(N, 6\), got \(4, 5\)"):
        module(y[:, :5], f_next, f_now)
    with pytest.raises(ValueError, match=r"5 channels \(last dim\), got \(4, 3, 5, 2\)"):
        module(y, f_next.permute(0, 1, 3, 2), f_now.permute(0, 1, 3, 2))


def test_module_repr() -> None:
    assert "global_dim=256, local_dim=128, gather=True" in repr(STDIMLoss(256, 128, gather=True))


# --- gather: 2 gloo ranks equal one process with the full batch ---------------------------

N_LOCAL = 3


def _full_batch():
    return _maps(WORLD * N_LOCAL, 2, 2, 3, 4, seed=7)


def _loss_and_grads(y, f_next, f_now, gather: bool) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)  # the same linear maps on every rank and in the reference
    module = STDIMLoss(4, 3, gather=gather).double()
    inputs = [t.detach().requires_grad_() for t in (y, f_next, f_now)]
    loss = module(*inputs)
    grads = torch.autograd.grad(loss, [*inputs, *module.parameters()])
    return (loss.detach(), *grads)


def _rank_result(rank: int) -> tuple[torch.Tensor, ...]:
    rows = slice(rank * N_LOCAL, (rank + 1) * N_LOCAL)
    return _loss_and_grads(*(t[rows] for t in _full_batch()), gather=True)


@pytest.mark.skipif(not torch_dist.is_available(), reason="torch.distributed unavailable")
def test_gather_two_processes_equals_full_batch() -> None:
    ranks = run_on_ranks(_rank_result)
    full = _loss_and_grads(*_full_batch(), gather=False)
    torch.testing.assert_close(sum(r[0] for r in ranks) / WORLD, full[0])
    for k in (1, 2, 3):  # each rank's inputs: DDP would average the gathered-and-summed grads
        torch.testing.assert_close(torch.cat([r[k] for r in ranks]) / WORLD, full[k])
    for k in range(4, len(full)):  # the linear maps' grads: DDP's all-reduce mean
        torch.testing.assert_close(sum(r[k] for r in ranks) / WORLD, full[k])
