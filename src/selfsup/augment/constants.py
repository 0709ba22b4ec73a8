"""Small constant tensors made once per device, so a training step never copies them again.

`torch.tensor(values, device="cuda")` copies from pageable host memory, which blocks the host
until the GPU's queue has drained: one such call in the augmentation costs a full host sync per
step and leaves the GPU idle while Python launches the next step's kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch


def device_constant(
    values: Sequence[float], dtype: torch.dtype, device: torch.device | str | None
) -> torch.Tensor:
    """(len(values),) tensor of `values` on `device`, cached: do not modify it in place."""
    if torch.compiler.is_compiling():  # traced once into the graph as a constant: no cache
        return torch.tensor([float(v) for v in values], dtype=dtype, device=device)
    return _cached(tuple(float(v) for v in values), dtype, torch.device(device or "cpu"))


@lru_cache(maxsize=256)
def _cached(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=device)
