"""Run a function on 2 gloo ranks in forked processes and collect what each rank returns."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

WORLD = 2


def run_on_ranks(fn: Callable[[int], object], world: int = WORLD) -> list:
    """[fn(0), ..., fn(world - 1)], each computed in its own process of one gloo group.

    fn returns tensors / containers of tensors (saved and loaded with weights_only). Fork: the
    children reuse the imported torch instead of re-importing it (seconds each); 1 thread each.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as out:
        try:
            args = (fn, _free_port(), out, world)
            mp.start_processes(_worker, args=args, nprocs=world, start_method="fork")
        finally:
            torch.set_num_threads(before)
        return [torch.load(Path(out) / f"rank{r}.pt", weights_only=True) for r in range(world)]


def _worker(rank: int, fn: Callable[[int], object], port: int, out: str, world: int) -> None:
    torch.set_num_threads(1)
    torch_dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        torch.save(fn(rank), Path(out) / f"rank{rank}.pt")
    finally:
        torch_dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
