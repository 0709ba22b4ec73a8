"""A dataset held entirely in memory as one tensor: decode once, then only index.

Images are uint8 (N, C, H, W); text is token ids, long (N, L). Augmentation happens later on
the whole batch, on the training device, so a DataLoader (or the engine's batch iterator)
only indexes this tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


class Labeled:
    """`has_labels` and `num_classes` of a dataset with `targets` (N,) long or None and
    `classes` (names) or None."""

    targets: torch.Tensor | None
    classes: list[str] | None

    @property
    def has_labels(self) -> bool:
        return self.targets is not None

    @property
    def num_classes(self) -> int:
        if self.classes is not None:
            return len(self.classes)
        return int(self.targets.max()) + 1 if self.targets is not None else 0


@dataclass
class InMemoryDataset(Labeled):
    """inputs: (N, ...) tensor; targets: (N,) long or None (unlabeled); classes: label names.

    `ds[i] -> (inputs[i], target or -1, i)`.
    """

    inputs: torch.Tensor
    targets: torch.Tensor | None = None
    classes: list[str] | None = None
    name: str = ""
    sources: list[str] | None = field(default=None, repr=False)  # file or row per sample
    skipped: list[str] = field(default_factory=list, repr=False)  # bad files skipped on load

    def __post_init__(self) -> None:
        if self.targets is not None and len(self.targets) != len(self.inputs):
            raise ValueError(
                f"{self.name or 'dataset'}: {len(self.inputs)} inputs but "
                f"{len(self.targets)} targets"
            )

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        target = -1 if self.targets is None else int(self.targets[i])
        return self.inputs[i], target, i

    def subset(self, indices: torch.Tensor, name: str | None = None) -> InMemoryDataset:
        """A new dataset holding rows `indices` (N',) long."""
        return InMemoryDataset(
            inputs=self.inputs[indices],
            targets=None if self.targets is None else self.targets[indices],
            classes=self.classes,
            name=name or self.name,
            sources=None if self.sources is None else [self.sources[i] for i in indices.tolist()],
        )


def stratified_split(
    ds: InMemoryDataset, test_fraction: float, seed: int = 0
) -> tuple[InMemoryDataset, InMemoryDataset]:
    """Split per class (or uniformly without labels) into (train, test) with a fixed seed."""
    train, test = split_indices(len(ds), ds.targets, test_fraction, seed)
    return ds.subset(train, f"{ds.name}-train"), ds.subset(test, f"{ds.name}-test")


def split_indices(
    n: int, targets: torch.Tensor | None, test_fraction: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) sorted long indices of `stratified_split`, for any dataset of n samples."""
    g = torch.Generator().manual_seed(seed)
    groups = (
        [torch.arange(n)]
        if targets is None
        else [(targets == c).nonzero().flatten() for c in targets.unique()]
    )
    train_idx, test_idx = [], []
    for idx in groups:
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test = round(len(idx) * test_fraction)
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    return torch.cat(train_idx).sort().values, torch.cat(test_idx).sort().values


def class_subset(ds: InMemoryDataset, per_class: int, seed: int = 0) -> InMemoryDataset:
    """The first `per_class` samples of each class after a seeded shuffle (balanced subset)."""
    if ds.targets is None:
        raise ValueError(f"{ds.name}: a per-class subset needs labels")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(ds), generator=g)
    keep = torch.cat([perm[ds.targets[perm] == c][:per_class] for c in ds.targets.unique()])
    return ds.subset(keep.sort().values)
