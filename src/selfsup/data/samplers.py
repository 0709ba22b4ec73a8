"""Class-balanced P x K batches for label losses: P classes, K samples of each, per batch.

Triplet mining needs positives *and* negatives in every batch; uniform batches from a data set
with many classes contain almost no positive pair. Hermans et al. 2017 ("In Defense of the
Triplet Loss", Sec. 3) introduced the P x K batch (P=18, K=4 on Market-1501); K=4 is also
pytorch-metric-learning's usual `MPerClassSampler` m.

`ClassBalancedBatches` has the interface of `selfsup.engine.batches.EpochBatches`
(`steps_per_epoch`, `indices(step)`), so the engine's `fit(..., sampler=...)` takes it; the
batch of a step is a pure function of (seed, step, rank), so resuming at step s is exact.
"""

from __future__ import annotations

import math

import torch


class ClassBalancedBatches:
    """Global batches of P classes x K samples, drawn afresh at every step.

    labels: (N,) long class of every sample. batch_size: the global batch (all processes);
    P = ceil(batch_size / K) distinct classes are drawn without replacement, then K samples of
    each class (without replacement; with replacement when a class has fewer than K samples).
    The batch is class-major (K rows of class 1, K of class 2, ...) and truncated to
    batch_size, so when batch_size is not a multiple of K the last class has fewer rows.
    Rank r of W takes rows [r*b, (r+1)*b), b = batch_size / W, so W processes see exactly the
    samples one process would (with K | b, every rank holds whole classes: its positives).
    An "epoch" is N // batch_size steps, only for schedules and logs: sampling has no memory.
    """

    def __init__(
        self,
        labels: torch.Tensor,
        batch_size: int,
        samples_per_class: int = 4,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if labels is None:
            raise ValueError("a class-balanced sampler needs labels; this data set has none")
        labels = torch.as_tensor(labels).long().flatten().cpu()
        if batch_size % world:
            raise ValueError(f"batch_size={batch_size} must be divisible by the {world} processes")
        if samples_per_class < 1:
            raise ValueError(f"samples_per_class={samples_per_class} must be >= 1")
        if len(labels) < batch_size:
            raise ValueError(
                f"dataset has {len(labels)} samples but batch_size={batch_size}; "
                f"lower batch_size to <= {len(labels)}"
            )
        self.classes, counts = labels.unique(return_counts=True)  # (C,), (C,)
        self.samples_per_class = samples_per_class
        self.classes_per_batch = math.ceil(batch_size / samples_per_class)
        if self.classes_per_batch > len(self.classes):
            raise ValueError(
                f"batch_size={batch_size} with samples_per_class={samples_per_class} needs "
                f"{self.classes_per_batch} classes per batch but the data has "
                f"{len(self.classes)}; raise samples_per_class to >= "
                f"{math.ceil(batch_size / len(self.classes))} or lower batch_size"
            )
        order = labels.argsort(stable=True)
        # Members of class c are order[starts[c] : starts[c] + counts[c]].
        self._order, self._counts = order, counts
        self._starts = torch.cumsum(counts, 0) - counts
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.local = rank, batch_size // world
        self.steps_per_epoch = max(1, len(labels) // batch_size)

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def global_indices(self, step: int) -> torch.Tensor:
        """(batch_size,) long: the whole global batch of step `step` (all ranks)."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        p, k = self.classes_per_batch, self.samples_per_class
        chosen = torch.randperm(len(self.classes), generator=g)[:p]  # (P,) class positions
        counts = self._counts[chosen]  # (P,)
        # K distinct members per class: the K smallest of uniform keys over each class's
        # members is a uniform K-subset; classes with fewer than K members draw with
        # replacement (two views of one image are still a valid positive pair).
        picks = []
        for c, n_c in zip(chosen.tolist(), counts.tolist(), strict=True):
            if n_c >= k:
                offs = torch.rand(n_c, generator=g).topk(k, largest=False).indices
            else:
                offs = torch.randint(n_c, (k,), generator=g)
            picks.append(self._order[self._starts[c] + offs])
        return torch.cat(picks)[: self.batch_size]

    def indices(self, step: int) -> torch.Tensor:
        """(batch_size / world,) long: this rank's sample indices for global step `step`."""
        start = self.rank * self.local
        return self.global_indices(step)[start : start + self.local]
