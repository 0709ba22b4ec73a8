"""Under 2 gloo processes, every rank's queue holds all ranks' keys in rank order: the same
queue as one process enqueueing the full batch."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from selfsup.methods.queue import MemoryQueue

WORLD, N_LOCAL, DIM, SIZE = 2, 3, 4, 10


def _keys(step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(step)
    return torch.randn(WORLD * N_LOCAL, DIM, generator=g)  # the global batch of one step


def _worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    torch_dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        torch.manual_seed(0)  # the same initial queue on every rank
        q = MemoryQueue(SIZE, DIM)
        for step in range(3):
            q.enqueue(_keys(step)[rank * N_LOCAL : (rank + 1) * N_LOCAL])
        torch.save(q.state_dict(), Path(out_dir) / f"rank{rank}.pt")
    finally:
        torch_dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch_dist.is_available(), reason="torch.distributed unavailable")
def test_queue_is_identical_across_ranks_and_equals_one_process(tmp_path):
    mp.start_processes(
        _worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, start_method="fork"
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    torch.manual_seed(0)
    single = MemoryQueue(SIZE, DIM)
    for step in range(3):
        single.enqueue(_keys(step))
    for state in ranks:
        torch.testing.assert_close(state["queue"], single.queue)
        assert int(state["ptr"]) == int(single.ptr)
