"""A FIFO memory queue of past embeddings (MoCo's dictionary of negatives).

MoCo (He et al. 2020, Sec. 3.2): the keys of the current batch are enqueued *after* the loss,
so they are never negatives of themselves; the oldest keys are dequeued. Under DDP every rank
enqueues the keys of all ranks (gathered) in rank order, so all ranks hold the same queue.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup import dist


class MemoryQueue(nn.Module):
    """size rows of dim-d embeddings, a ring buffer with a write pointer (both in state_dict).

    Initialized with random unit vectors, as MoCo's code (`randn` then l2-normalize), so a
    fresh queue already provides (uninformative) negatives.
    """

    queue: torch.Tensor
    ptr: torch.Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"queue size must be >= 1, got {size}")
        self.register_buffer("queue", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.queue.shape[0]

    def items(self) -> torch.Tensor:
        """(size, dim) snapshot of the queue, detached (safe to use in a loss, then enqueue)."""
        return self.queue.clone()

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """keys: (N, dim) from this rank; all ranks' keys replace the oldest rows (FIFO).

        Batches need not divide the size: writes wrap around. With more keys than rows, only
        the newest `size` are kept.
        """
        keys = dist.gather(keys.detach()).to(self.queue.dtype)  # (W * N, dim), rank order
        keys = keys[-self.size :]
        n = keys.shape[0]
        idx = (self.ptr + torch.arange(n, device=keys.device)) % self.size
        self.queue[idx] = keys
        self.ptr.copy_((self.ptr + n) % self.size)
