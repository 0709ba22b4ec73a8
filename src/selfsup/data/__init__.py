"""Datasets that yield (uint8 image | token ids, target, index), held in memory."""

from __future__ import annotations

from pathlib import Path

from selfsup.data.cifar import load_cifar10
from selfsup.data.digits import load_digits
from selfsup.data.folder import (
    MAX_IMAGE_PIXELS,
    BadImageError,
    load_image_folder,
    load_image_splits,
)
from selfsup.data.memory import InMemoryDataset, class_subset, stratified_split

__all__ = [
    "MAX_IMAGE_PIXELS",
    "BadImageError",
    "InMemoryDataset",
    "class_subset",
    "load_cifar10",
    "load_digits",
    "load_image_data",
    "load_image_folder",
    "load_image_splits",
    "stratified_split",
]


def load_image_data(
    spec: str,
    image_size: int | None = None,
    root: str | Path = "~/.cache/selfsup/datasets",
    skip_bad_files: bool = False,
    max_image_pixels: int | None = MAX_IMAGE_PIXELS,
    labels: str | Path | None = None,
    label_pattern: str | None = None,
) -> tuple[InMemoryDataset, InMemoryDataset | None]:
    """(train, test or None) for 'digits', 'cifar10' (torchvision download into `root`) or a folder.

    A labeled folder without a train/test split is split 80/20 (stratified, seed 0) so that
    evaluation never sees training images; an unlabeled folder gives test None.
    With `skip_bad_files`, `train.skipped` lists the skipped files of both splits.
    max_image_pixels: images whose header claims more are refused (or skipped); None: no limit.
    labels, label_pattern: label a flat folder (or both splits) from a labels file or the file
    names (`data/labels.py`); 'digits' and 'cifar10' come labeled (ValueError).
    """
    if spec in ("digits", "cifar10") and (labels is not None or label_pattern is not None):
        raise ValueError(
            f"data={spec!r} comes labeled: --labels / --label-pattern label an image folder."
        )
    if spec == "digits":
        return load_digits(size=image_size or 16)
    if spec == "cifar10":
        return load_cifar10(Path(root).expanduser() / "cifar10")
    train, test = load_image_splits(
        spec,
        image_size,
        skip_bad_files=skip_bad_files,
        max_image_pixels=max_image_pixels,
        labels=labels,
        label_pattern=label_pattern,
    )
    skipped = train.skipped + (test.skipped if test is not None else [])
    if test is None and train.has_labels:  # run.stream_files makes the same split of the files
        train, test = stratified_split(train, 0.2, seed=0)
    train.skipped = skipped  # every file skipped under `spec` (both splits), for the run's report
    return train, test
