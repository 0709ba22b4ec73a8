"""An image folder read file by file, for folders too large to decode into memory.

`load_image_folder` decodes a folder once into one uint8 tensor (CIFAR-10: 150 MB). A folder of
full-size photos does not fit that way (ImageNet's 1.28 M images are ~110 kB each as uint8 at
224 px). `ImageFiles` keeps only the file list: DataLoader workers decode each image and apply
a per-image `transform` (for training: the views' random resized crops, `augment/split.py`),
and the rest of the augmentation runs batched on the training device.

Every crop is drawn from a generator seeded by (seed, key, index), where the engine passes the
step as key: the crops of step s do not depend on the number of workers or processes, and a
resumed run reads exactly the crops an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from selfsup.data.folder import (
    MAX_IMAGE_PIXELS,
    BadImageError,
    decode_files,
    decode_image,
    list_images,
)
from selfsup.data.jpeg import decode_file
from selfsup.data.memory import InMemoryDataset, Labeled, split_indices

Transform = Callable[[torch.Tensor, torch.Generator], list[torch.Tensor]]


def read_image(path: Path, max_image_pixels: int | None = MAX_IMAGE_PIXELS) -> torch.Tensor:
    """One file -> uint8 (3, H, W) RGB; the error names the file (BadImageError).

    torchvision first; PIL reads the other formats and some files libjpeg refuses, and
    otherwise names the problem. Both check the header against `max_image_pixels` first."""
    image = decode_file(path, max_image_pixels)
    if image is not None:
        return image
    return torch.tensor(decode_image(path, None, max_image_pixels)).permute(2, 0, 1).contiguous()


def sample_seed(seed: int, key: int, index: int) -> int:
    """A 63-bit seed for sample `index` at `key` (the step): ints hash the same in every process."""
    return hash((seed, key, index)) & (2**63 - 1)


@dataclass
class ImageFiles(Labeled):
    """Images read from `files` on access. `ds[(i, key)] -> (transform(image), target or -1, i)`.

    transform(image (3, H, W) uint8, generator) -> list of tensors (e.g. `WorkerCrops`); None
    returns [image]. skip_bad_files: an unreadable file is replaced by the next readable one
    (a warning naming it, and `skipped` of the process that read it, once per file however often
    it is read) instead of stopping the run. max_image_pixels: the pixel limit of
    `load_image_folder`, checked on each file's header before decoding it.
    """

    files: list[Path]
    targets: torch.Tensor | None = None
    classes: list[str] | None = None
    name: str = ""
    transform: Transform | None = None
    seed: int = 0
    skip_bad_files: bool = False
    max_image_pixels: int | None = MAX_IMAGE_PIXELS
    root: Path | None = None  # the folder the files are under (names in `decode`'s sources)
    skipped: list[str] = field(default_factory=list, repr=False)

    @classmethod
    def from_folder(
        cls,
        root: str | Path,
        labels: str | Path | None = None,
        label_pattern: str | None = None,
        **kw,
    ) -> ImageFiles:
        """The layouts of `load_image_folder` (class sub-folders, or flat + labels.csv); a flat
        folder labeled by a labels file or a file-name pattern as `list_images` labels it."""
        root = Path(root)
        files, indices, classes = list_images(root, labels, label_pattern)
        targets = None if indices is None else torch.tensor(indices)
        return cls(files, targets, classes, name=root.name, root=root, **kw)

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, indices: torch.Tensor, name: str | None = None) -> ImageFiles:
        """The files at `indices` (N',) long, same transform and seed."""
        rows = indices.tolist()
        return dataclasses.replace(
            self,
            files=[self.files[i] for i in rows],
            targets=None if self.targets is None else self.targets[indices],
            name=name or self.name,
            skipped=[],
        )

    def decode(self, size: int, limit: int | None = None) -> InMemoryDataset:
        """At most `limit` of the files (a class-stratified subset, seed 0) decoded into memory
        as (N, 3, size, size) uint8 (shorter side resized, centre crop): for evaluation."""
        rows = torch.arange(len(self))
        if limit is not None and limit < len(self):
            rows = split_indices(len(self), self.targets, limit / len(self), seed=0)[1]
        part = self.subset(rows)
        labels = None if part.targets is None else part.targets.tolist()
        root = self.root or Path("/")
        ds = decode_files(
            part.files,
            labels,
            self.classes,
            root,
            size,
            self.skip_bad_files,
            max_image_pixels=self.max_image_pixels,
        )
        ds.name = self.name
        return ds

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[list[torch.Tensor], int, int]:
        i, salt = key if isinstance(key, tuple) else (key, 0)
        image = self._read(i)
        if self.transform is None:
            out = [image]
        else:
            g = torch.Generator().manual_seed(sample_seed(self.seed, salt, i))
            out = self.transform(image, g)
        return out, -1 if self.targets is None else int(self.targets[i]), i

    def _read(self, i: int) -> torch.Tensor:
        for attempt in range(min(len(self.files), 100)):
            path = self.files[(i + attempt) % len(self.files)]
            try:
                return read_image(path, self.max_image_pixels)
            except BadImageError as e:
                if not self.skip_bad_files:
                    raise
                if str(path) not in self.skipped:  # read again every epoch: count it once
                    # A worker's list dies with it: the warning reaches the log from any process.
                    warnings.warn(f"skipped: {e}", stacklevel=2)
                    self.skipped.append(str(path))
        raise BadImageError(f"{self.files[i]} and the 99 files after it cannot be decoded.")
