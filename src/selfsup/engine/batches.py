"""Which samples go into step s: a pure function of (seed, step, rank), so resume is exact.

The dataset lives in memory (or on the device), so a batch is one index operation: no
DataLoader workers competing with the training step for the cores.
"""

from __future__ import annotations

import torch


class EpochBatches:
    """Shuffled batches without replacement; each epoch has its own seeded permutation.

    n: dataset size; batch_size: global batch; the last incomplete batch is dropped (contrastive
    losses depend on the batch size). Rank r of W takes rows [r*b, (r+1)*b) of the global batch,
    b = batch_size / W, so W processes see exactly the samples one process would.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1):
        if batch_size % world:
            fix = max(world, batch_size // world * world)
            raise ValueError(
                f"batch_size={batch_size} is the global batch and must be divisible by the "
                f"{world} processes; use a multiple of {world}, e.g. batch_size={fix}."
            )
        if n < batch_size:
            raise ValueError(
                f"dataset has {n} samples but batch_size={batch_size}; lower batch_size to <= {n}"
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.local = rank, batch_size // world
        self.steps_per_epoch = n // batch_size
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def indices(self, step: int) -> torch.Tensor:
        """(batch_size / world,) long: this rank's sample indices for global step `step`."""
        epoch, it = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        start = it * self.batch_size + self.rank * self.local
        return self._perm[start : start + self.local]


def indices_to(idx: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Batch indices to the data's device without a host sync: a copy from pageable memory
    waits for the GPU's queue to drain; from pinned memory it is queued (docs/performance.md:
    removing this and two other per-step syncs took an H100 step from 20.1 k to 21.3 k img/s)."""
    if device.type == "cpu":
        return idx
    return idx.pin_memory().to(device, non_blocking=True)


class MemoryBatches:
    """Batches of an in-memory dataset: one index operation on data moved to the device once.

    Data larger than half the accelerator's free memory stays on the host: each batch is
    gathered there, pinned and copied without blocking (the caching host allocator keeps a
    pinned block until its copy has finished, so the next step cannot overwrite it).
    next(step) -> (inputs (B, ...) on `device`, targets (B,) or None, B).
    """

    def __init__(self, train, batches: EpochBatches, device: torch.device) -> None:
        self.batches, self.device = batches, device
        on_device = device.type != "cpu" and fits_on(device, train.inputs)
        self.inputs = train.inputs.to(device) if on_device else train.inputs
        self.targets = None if train.targets is None else train.targets.to(self.inputs.device)
        self.pin = device.type == "cuda" and not on_device

    def next(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        idx = indices_to(self.batches.indices(step), self.inputs.device)
        y = None if self.targets is None else self._to_device(self.targets[idx])
        return self._to_device(self.inputs[idx]), y, len(idx)

    def _to_device(self, rows: torch.Tensor) -> torch.Tensor:
        # From pageable memory a copy would wait for the accelerator's queue; pinned, it queues.
        return (rows.pin_memory() if self.pin else rows).to(self.device, non_blocking=True)


def fits_on(device: torch.device, data: torch.Tensor, share: float = 0.5) -> bool:
    """Whether `data` takes at most `share` of the device's free memory (the rest: the model,
    its activations and the views). Devices other than CUDA (no free-memory query) fit."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return data.numel() * data.element_size() <= share * free


class _StepKeys:
    """Batch sampler for a DataLoader: step s's indices, each paired with s (the crop seed key)."""

    def __init__(self, batches: EpochBatches, start: int, steps: int) -> None:
        self.batches, self.start, self.steps = batches, start, steps

    def __iter__(self):
        for step in range(self.start, self.steps):
            yield [(i, step) for i in self.batches.indices(step).tolist()]

    def __len__(self) -> int:
        return self.steps - self.start


def _collate(samples: list) -> tuple[list[torch.Tensor], torch.Tensor]:
    """[(crops, target, index)] -> ([(B, C, s_k, s_k) per view], targets (B,))."""
    views = [torch.stack(v) for v in zip(*(s[0] for s in samples), strict=True)]
    return views, torch.tensor([s[1] for s in samples])


class StreamBatches:
    """Batches read from files by DataLoader workers (`data.stream.ImageFiles`).

    The same indices as `EpochBatches` gives the in-memory path, step by step; the workers
    decode and crop (the dataset's transform), the batch arrives pinned and is copied without
    blocking. next(step) must be called for consecutive steps from `start`.
    next(step) -> (list of per-view tensors on `device`, targets (B,) or None, B).
    """

    def __init__(
        self, train, batches: EpochBatches, device: torch.device, start: int, steps: int,
        workers: int,
    ) -> None:  # fmt: skip
        from torch.utils.data import DataLoader

        self.device, self.labeled = device, train.targets is not None
        loader = DataLoader(
            train,
            batch_sampler=_StepKeys(batches, start, steps),
            num_workers=workers,
            collate_fn=_collate,
            pin_memory=device.type == "cuda",
            prefetch_factor=4 if workers else None,  # a step's worth of decoding can straggle
        )
        self._it = iter(loader)

    def next(self, step: int) -> tuple[list[torch.Tensor], torch.Tensor | None, int]:
        views, y = next(self._it)
        views = [v.to(self.device, non_blocking=True) for v in views]
        y = y.to(self.device, non_blocking=True) if self.labeled else None
        return views, y, len(views[0])
