"""2 gloo processes on half batches == 1 process on the full batch, for TS2Vec and CPC.

Each method wrapped in DistributedDataParallel as `fit` wraps it, float64, on a stand-in
per-timestep encoder (the series encoders' interface only). The mean of the ranks' losses must
equal the full-batch loss and DDP's averaged gradients the full-batch gradients (1e-10).
The ranks also see what per-rank view generators give them under torchrun: TS2Vec crops with
a different overlap on each rank (each uses the smallest, from the same timestamps), CPC
batches padded to different lengths, with different numbers of valid steps per rank.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as torch_dist
from torch import nn

from selfsup.methods import create_method
from tests.two_processes import WORLD, run_on_ranks

N, C, D = 8, 2, 6  # full batch; each rank holds N / WORLD
TOL = dict(rtol=1e-10, atol=1e-10)


class StandIn(nn.Module):
    """(N, C, T) -> (N, T, D) through a Conv1d (NaN steps read as 0); forward max-pools."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.num_features = D
        self.conv = nn.Conv1d(C, D, kernel, padding=kernel // 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.nan_to_num(0.0)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).amax(1)


def _method(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "ts2vec":  # kernel 1: a longer crop on one rank leaves the overlap's z unchanged
        return create_method("ts2vec", StandIn(kernel=1)).double()
    return create_method("cpc", StandIn(kernel=3), context_dim=5, prediction_steps=4).double()


def _series() -> torch.Tensor:
    return torch.randn(N, C, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _views(name: str, rank: int | None) -> list[torch.Tensor]:
    """The full batch's views (rank None) or rank `rank`'s share of them."""
    x = _series()
    rows = slice(0, N) if rank is None else slice(rank * N // WORLD, (rank + 1) * N // WORLD)
    if name == "ts2vec":  # the last 5 steps of x1 are the first 5 of x2
        l1, o = 7, 5
        if rank == 1:  # 2 more steps of x1 overlap x2: the first 5 are the full batch's
            l1, o = 9, 7
        return [x[rows, :, :l1], x[rows, :, 2:], torch.tensor(o)]
    x[1, :, 9:] = float("nan")  # variable lengths: rank 0 holds rows 0-3, rank 1 rows 4-7
    x[2, :, 4:] = float("nan")
    x[4:, :, 10:] = float("nan")  # rank 1's batch is padded to 10 steps only
    x[6, :, 7:] = float("nan")
    if rank == 1:
        return [x[rows, :, :10]]
    return [x[rows]]


def _loss_and_grads(name: str, rank: int | None) -> dict:
    method = _method(name)
    model = method if rank is None else nn.parallel.DistributedDataParallel(method)
    loss = model(_views(name, rank)).loss
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in method.named_parameters()}
    return {"loss": loss.detach(), "grads": grads}


def _rank_results(rank: int) -> dict:
    return {name: _loss_and_grads(name, rank) for name in ("ts2vec", "cpc")}


@pytest.fixture(scope="module")
def two_ranks() -> list[dict]:
    return run_on_ranks(_rank_results)


@pytest.mark.skipif(not torch_dist.is_available(), reason="torch.distributed unavailable")
@pytest.mark.parametrize("name", ["ts2vec", "cpc"])
def test_two_processes_equal_one_full_batch(two_ranks, name):
    full = _loss_and_grads(name, None)
    assert torch.isfinite(full["loss"]) and full["loss"] > 0
    mean_loss = sum(r[name]["loss"] for r in two_ranks) / WORLD
    torch.testing.assert_close(mean_loss, full["loss"], **TOL)
    assert not torch.allclose(two_ranks[0][name]["loss"], two_ranks[1][name]["loss"])
    for r in two_ranks:
        assert r[name]["grads"].keys() == full["grads"].keys()
        for k, g in full["grads"].items():
            assert g.abs().sum() > 0, k
            torch.testing.assert_close(r[name]["grads"][k], g, **TOL, msg=k)
