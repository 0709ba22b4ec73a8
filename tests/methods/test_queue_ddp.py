"""Under 2 gloo processes, every rank's queue holds all ranks' keys in rank order: the same
queue as one process enqueueing the full batch."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as torch_dist

from selfsup.methods.queue import MemoryQueue
from tests.two_processes import WORLD, run_on_ranks

N_LOCAL, DIM, SIZE = 3, 4, 10


def _keys(step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(step)
    return torch.randn(WORLD * N_LOCAL, DIM, generator=g)  # the global batch of one step


def _rank_queue(rank: int) -> dict:
    torch.manual_seed(0)  # the same initial queue on every rank
    q = MemoryQueue(SIZE, DIM)
    for step in range(3):
        q.enqueue(_keys(step)[rank * N_LOCAL : (rank + 1) * N_LOCAL])
    return q.state_dict()


@pytest.mark.skipif(not torch_dist.is_available(), reason="torch.distributed unavailable")
def test_queue_is_identical_across_ranks_and_equals_one_process():
    ranks = run_on_ranks(_rank_queue)
    torch.manual_seed(0)
    single = MemoryQueue(SIZE, DIM)
    for step in range(3):
        single.enqueue(_keys(step))
    for state in ranks:
        torch.testing.assert_close(state["queue"], single.queue)
        assert int(state["ptr"]) == int(single.ptr)
