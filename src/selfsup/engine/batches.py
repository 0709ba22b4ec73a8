"""Which samples go into step s: a pure function of (seed, step, rank), so resume is exact.

The dataset lives in memory (or on the device), so a batch is one index operation: no
DataLoader workers competing with the training step for the cores. Files (`StreamBatches`) and
a user's own map-style dataset (`DatasetBatches`) are read by DataLoader workers instead, with
the same indices step by step.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
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
            # Its own generator: without one the DataLoader draws from the global RNG and
            # shifts dropout after a resume (the crops are seeded per sample and step anyway).
            generator=torch.Generator().manual_seed(0),
        )
        self._it = iter(loader)

    def next(self, step: int) -> tuple[list[torch.Tensor], torch.Tensor | None, int]:
        views, y = next(self._it)
        views = [v.to(self.device, non_blocking=True) for v in views]
        y = y.to(self.device, non_blocking=True) if self.labeled else None
        return views, y, len(views[0])


def check_map_dataset(train: object) -> None:
    """TypeError unless `train` is a map-style dataset: `len(train)` and `train[i]` (a
    `torch.utils.data.Dataset`, or any object with `__len__` and `__getitem__`)."""
    from torch.utils.data import IterableDataset

    kind = type(train)
    if (
        isinstance(train, IterableDataset)
        or not hasattr(kind, "__len__")
        or not hasattr(kind, "__getitem__")
    ):
        raise TypeError(
            f"fit() cannot train on a {kind.__module__}.{kind.__qualname__}: it takes an "
            "InMemoryDataset (selfsup.data.memory), ImageFiles (selfsup.data.stream), or a "
            "map-style dataset, any object with __len__ and __getitem__(i) returning one sample "
            "tensor or a tuple (sample, target), e.g. a torch.utils.data.Dataset subclass. "
            "Step s reads the indices a seeded permutation picks (exact resume), so an "
            "IterableDataset or a generator cannot be used; index it (a list of samples works)."
        )


class _StepIndices:
    """Batch sampler for a DataLoader: `batches.indices(step)` for steps start..steps-1."""

    def __init__(self, batches: EpochBatches, start: int, steps: int) -> None:
        self.batches, self.start, self.steps = batches, start, steps

    def __iter__(self):
        for step in range(self.start, self.steps):
            yield self.batches.indices(step).tolist()

    def __len__(self) -> int:
        return self.steps - self.start


_HOW = (
    "return one tensor per sample, or a tuple (sample, target): images as uint8 (C, H, W), e.g. "
    "torchvision.transforms.v2.functional.pil_to_tensor(pil_image) or "
    "torch.from_numpy(np.asarray(pil_image)).permute(2, 0, 1); text as token ids, 1-D long, "
    "e.g. tokenizer.encode([sentence])[0] (selfsup.data.tokenizer); a series as a float tensor"
)


def _as_tensor(value: Any, index: int, name: str) -> torch.Tensor:
    """One sample as a tensor: tensors as they are, numpy arrays through torch.as_tensor."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        if any(stride < 0 for stride in array.strides):  # np.flip: no tensor view, copy it
            array = array.copy()
        try:
            return torch.as_tensor(array)
        except TypeError as e:
            raise ValueError(
                f"{name}[{index}] returned a numpy array of dtype {value.dtype}, which has no "
                f"tensor type ({e}); {_HOW}."
            ) from e
    kind = type(value)
    raise ValueError(
        f"{name}[{index}] returned a sample of type {kind.__module__}.{kind.__qualname__}; fit "
        f"needs numbers: {_HOW}."
    )


def _as_target(value: Any, index: int, name: str) -> int | None:
    """A target as an int class id (None: no label)."""
    if value is None:
        return None
    try:
        target = int(value)
        whole = bool(target == value)
    except (TypeError, ValueError, RuntimeError):
        whole = False
    if not whole:
        raise ValueError(
            f"{name}[{index}] returned the target {value!r} ({type(value).__name__}); a target "
            "must be an integer class id (map names to ids, e.g. classes.index(label)), -1 or "
            "None for no label; or return the sample alone."
        )
    return target


class _Indexed(torch.utils.data.Dataset):
    """`dataset[i]` -> (i, sample tensor, target int or None); read in the DataLoader workers."""

    def __init__(self, dataset: Any, name: str) -> None:
        self.dataset, self.name = dataset, name

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor, int | None]:
        item = self.dataset[i]
        if isinstance(item, tuple):
            if not item:
                raise ValueError(f"{self.name}[{i}] returned an empty tuple; {_HOW}.")
            target = _as_target(item[1], i, self.name) if len(item) > 1 else None
            return i, _as_tensor(item[0], i, self.name), target
        return i, _as_tensor(item, i, self.name), None


def _is_token_ids(x: torch.Tensor) -> bool:
    return x.dim() == 1 and not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool)


def collate_samples(
    samples: list[tuple[int, torch.Tensor, int | None]], name: str = "dataset", pad_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[(index, sample, target)] -> (x (B, ...), targets (B,) long or None).

    Samples of one shape are stacked. 1-D integer samples (token ids) of different lengths are
    right-padded with `pad_id` to the longest of the batch -> (B, L_max); any other shape
    mismatch is a ValueError naming both samples. targets: None when every target of the batch
    is None or -1 (no label, as `InMemoryDataset` and `ImageFiles` mark it), else (B,) long.
    """
    tensors = [s for _, s, _ in samples]
    if all(_is_token_ids(s) for s in tensors):
        x = torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True, padding_value=pad_id)
    else:
        first, shape = samples[0][0], tensors[0].shape
        for i, s, _ in samples[1:]:
            if s.shape != shape:
                raise ValueError(
                    f"{name}[{i}] has shape {tuple(s.shape)} but {name}[{first}] has shape "
                    f"{tuple(shape)}: a batch stacks its samples, so every sample needs one shape "
                    "(only 1-D integer token ids are padded, with 0). Resize or crop images to one "
                    "size in __getitem__ (e.g. torchvision.transforms.v2.functional.resize(img, "
                    "[32, 32])); cut or pad series to one length."
                )
        x = torch.stack(tensors)
    targets = [t for _, _, t in samples]
    if all(t is None or t == -1 for t in targets):
        return x, None
    if None in targets:
        have = next(i for i, _, t in samples if t is not None)
        lack = next(i for i, _, t in samples if t is None)
        raise ValueError(
            f"{name}[{have}] returned a target but {name}[{lack}] none: return (sample, target) "
            "for every sample (-1: no label) or the sample alone for every sample."
        )
    return x, torch.tensor(targets, dtype=torch.long)


class DatasetBatches:
    """Batches of a user's own map-style dataset (`torch.utils.data.Dataset` or any object with
    `__len__` and `__getitem__`), read by `workers` DataLoader workers.

    `dataset[i]` is one raw sample, the same a row of `InMemoryDataset.inputs` would be: a uint8
    image (C, H, W), 1-D long token ids (lengths may differ: padded per batch with 0, or with
    `dataset.pad_id` when the dataset has that attribute), a float series, ...; a tensor or a
    numpy array (torch.as_tensor), alone or as `(sample, target, ...)` (target an int class id,
    -1 or None for no label; further items are ignored). Step s reads exactly
    `batches.indices(s)`, so a run samples as the in-memory path with the same seed does, and
    resume is exact when `__getitem__` is deterministic (randomness belongs in the views; a
    worker's own random state restarts on resume). The DataLoader's seed comes from its own
    generator, so the global random state (dropout) is the in-memory path's too.
    next(step) must be called for consecutive steps from `start`;
    next(step) -> (inputs (B, ...) on `device`, targets (B,) long or None, B); see
    `collate_samples` for the stacking, padding and target rules.
    """

    def __init__(
        self, train: Any, batches: EpochBatches, device: torch.device, start: int, steps: int,
        workers: int, seed: int = 0,
    ) -> None:  # fmt: skip
        from torch.utils.data import DataLoader

        name = type(train).__name__
        self.device, self._step = device, start
        loader = DataLoader(
            _Indexed(train, name),
            batch_sampler=_StepIndices(batches, start, steps),
            num_workers=workers,
            collate_fn=partial(collate_samples, name=name, pad_id=int(getattr(train, "pad_id", 0))),
            pin_memory=device.type == "cuda",
            prefetch_factor=4 if workers else None,
            generator=torch.Generator().manual_seed(seed),  # not a draw from the global state
        )
        self._it = iter(loader)

    def next(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        if step != self._step:
            raise RuntimeError(f"DatasetBatches reads steps in order: expected {self._step}")
        self._step += 1
        try:
            x, y = next(self._it)
        except Exception:
            # The traceback keeps the iterator alive: stop its workers now, or the next
            # DataLoader's forked workers inherit it and fail to stop them (noise on stderr).
            shutdown = getattr(self._it, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
            raise
        x = x.to(self.device, non_blocking=True)
        y = None if y is None else y.to(self.device, non_blocking=True)
        return x, y, len(x)
