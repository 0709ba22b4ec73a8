"""`gather=True` across 2 gloo processes equals the single-process full-batch loss and gradient.

Each rank holds N of the 2N samples. The mean of the ranks' losses must equal the full-batch
loss, and each rank's gradient w.r.t. its local inputs (which the autograd-aware gather has
summed over ranks) divided by the world size, as DDP's gradient average does, must equal the
full-batch gradient of that slice.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as torch_dist

from selfsup.losses import functional as L
from tests.two_processes import WORLD, run_on_ranks

N_LOCAL = 5
DIM = 6


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: a second OpenMP thread only adds scheduling latency on a loaded machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Full batch (2N): two views, an extra-negatives queue, labels (every anchor of the
    two-view SupCon has a positive, so each rank averages over the same anchor count)."""
    g = torch.Generator().manual_seed(0)
    z_a, z_b = (torch.randn(WORLD * N_LOCAL, DIM, generator=g, dtype=torch.float64) for _ in "ab")
    queue = torch.randn(7, DIM, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 3, 1, 4, 4, 2, 5])
    return z_a, z_b, queue, labels


def _losses(z_a, z_b, queue, labels, gather: bool) -> dict[str, torch.Tensor]:
    return {
        "nt_xent": L.nt_xent(z_a, z_b, 0.3, gather=gather),
        "info_nce": L.info_nce(z_a, z_b, 0.2, gather=gather),
        "info_nce_sym_queue": L.info_nce(z_a, z_b, 0.2, queue, symmetric=True, gather=gather),
        "dclw": L.dcl(z_a, z_b, 0.3, L.vmf_weights, gather=gather),
        "supcon": L.supcon(torch.stack([z_a, z_b], 1), labels, 0.3, gather=gather),
        "siglip": L.logistic_pairwise(z_a, z_b, 1.0, -2.0, gather=gather),
        "barlow": L.barlow_twins(z_a, z_b, 0.1, gather=gather),
        "vicreg": L.vicreg(z_a, z_b, gather=gather),
    }


def _loss_and_grads(z_a, z_b, queue, labels, gather: bool) -> dict[str, tuple]:
    out = {}
    for name in _losses(z_a, z_b, queue, labels, gather):
        a, b = z_a.detach().requires_grad_(), z_b.detach().requires_grad_()
        loss = _losses(a, b, queue, labels, gather)[name]
        grad_a, grad_b = torch.autograd.grad(loss, (a, b))
        out[name] = (loss.detach(), grad_a, grad_b)
    return out


def _rank_result(rank: int) -> dict:
    z_a, z_b, queue, labels = _inputs()
    rows = slice(rank * N_LOCAL, (rank + 1) * N_LOCAL)
    return _loss_and_grads(z_a[rows], z_b[rows], queue, labels[rows], gather=True)


@pytest.mark.skipif(not torch_dist.is_available(), reason="torch.distributed unavailable")
def test_gather_two_processes_equals_full_batch():
    ranks = run_on_ranks(_rank_result)
    z_a, z_b, queue, labels = _inputs()
    full = _loss_and_grads(z_a, z_b, queue, labels, gather=False)
    for name, (loss, grad_a, grad_b) in full.items():
        mean_loss = sum(r[name][0] for r in ranks) / WORLD
        torch.testing.assert_close(mean_loss, loss, msg=f"{name}: loss")
        got_a = torch.cat([r[name][1] for r in ranks]) / WORLD
        got_b = torch.cat([r[name][2] for r in ranks]) / WORLD
        torch.testing.assert_close(got_a, grad_a, msg=f"{name}: grad z_a")
        torch.testing.assert_close(got_b, grad_b, msg=f"{name}: grad z_b")
