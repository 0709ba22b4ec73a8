"""NNCLR's support set: a queue of past projections queried for nearest neighbours.

Dwibedi et al. 2021 (arXiv:2104.14548, Sec. 3.1): NN(z, Q) = argmax_{q in Q} cos(z, q); the
nearest neighbour of a view's projection replaces it as the anchor of the contrastive loss.
The set is a FIFO queue (98,304 rows in the paper) updated with the current batch after the
loss, gathered across ranks so all ranks share it (see `MemoryQueue`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.methods.queue import MemoryQueue


class SupportSet(MemoryQueue):
    """MemoryQueue plus a cosine nearest-neighbour lookup."""

    @torch.no_grad()
    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """z: (N, dim) -> (N, dim) the support-set row with the highest cosine to each z_i
        (unit norm rows, as stored; no gradient: NNCLR's NN is outside the graph)."""
        support = F.normalize(self.queue, dim=1)  # (Q, dim)
        sim = F.normalize(z.detach().to(support.dtype), dim=1) @ support.T  # (N, Q)
        return support[sim.argmax(dim=1)]
