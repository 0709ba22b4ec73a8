"""Image folders decoded once into an in-memory uint8 tensor, with an on-disk decode cache.

Layouts:
  root/<class>/<image>            labeled (ImageFolder layout)
  root/<image> (+ labels.csv)     flat: unlabeled, or labeled by `labels.csv` lines "file,label"
  root/train/..., root/test/...   a split (see `load_image_splits`)

A flat folder may instead be labeled by a labels file anywhere on disk (`labels=`) or by a
pattern over its file names (`label_pattern=`), `data/labels.py`.

Small images (CIFAR-sized) fit in memory many times over: 50k x 3 x 32 x 32 = 150 MB. Decoding
is the slow part (≈20 s for CIFAR-10 with PIL here; JPEGs go through torchvision's batched
decoder, 5.6x faster, `data/jpeg.py`), so the result is cached as safetensors keyed by the
files' names and contents (a hash of their bytes: names, sizes and modification times missed
two same-size images swapped with their mtimes kept) and their labels. An unreadable cache is
rebuilt.

Every decoder path refuses an image whose header claims more than `max_image_pixels` pixels
before decoding it (default PIL's decompression-bomb limit, 89,478,485; None: no limit).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from selfsup.data.jpeg import decode_jpegs, is_jpeg, within_limit
from selfsup.data.memory import InMemoryDataset

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
# PIL's Image.MAX_IMAGE_PIXELS, its decompression-bomb limit: ~250 MB as RGB uint8.
MAX_IMAGE_PIXELS = 89_478_485


class BadImageError(ValueError):
    """An image file that cannot be used; the message names the file and the fix."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("SELFSUP_CACHE", Path.home() / ".cache" / "selfsup")) / "decoded"


@dataclass(frozen=True)
class FileKind:
    """What a folder of samples holds (images, audio files): the layouts and their errors below
    serve every kind, with its own extensions, error class and words."""

    noun: str  # "images"
    one: str  # "image": put every <one> in a class folder
    extensions: tuple[str, ...]
    error: type[ValueError]
    missing_hint: str  # what to pass instead of a folder that does not exist

    def matches(self, p: Path) -> bool:
        return p.is_file() and p.suffix.lower() in self.extensions and not p.name.startswith(".")


IMAGES = FileKind(
    "images",
    "image",
    IMAGE_EXTENSIONS,
    BadImageError,
    "Pass an image folder, 'digits' or 'cifar10'.",
)


def _is_image(p: Path) -> bool:
    return IMAGES.matches(p)


def list_images(
    root: Path, labels: str | Path | None = None, label_pattern: str | None = None
) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """`list_files` of image files."""
    return list_files(root, IMAGES, labels, label_pattern)


def list_files(
    root: Path,
    kind: FileKind = IMAGES,
    labels: str | Path | None = None,
    label_pattern: str | None = None,
) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Files of `kind`, integer labels (or None) and class names (or None) for the layouts above.

    labels: a labels file (CSV "file,label", anywhere) for a flat folder; label_pattern: a
    regular expression whose group, searched in each file name, is its label (`data/labels.py`).
    Either replaces the folder's own labels.csv; class folders with either is an error. When
    `root` is the train/, test/ or val/ folder of a split, the labels file names the files of
    every split, relative to the split's parent (train/0001.png) or by bare name, and classes
    come from all splits, so that each split is labeled from one file with the same classes.

    A folder holding both files and sub-folders (directory symlinks included) at its top level
    is refused (`refuse_mixed_layout`): reading it either way would silently drop files."""
    if root.is_file():
        raise kind.error(f"{root}: a file, not a folder: pass the folder of {kind.noun}.")
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder. {kind.missing_hint}")
    if labels is not None and label_pattern is not None:
        raise ValueError("pass either --labels or --label-pattern, not both.")
    subdirs = _subfolders(root)
    refuse_mixed_layout(root, subdirs, kind)
    if subdirs:
        if labels is not None or label_pattern is not None:
            raise ValueError(
                f"{root}: holds class folders ({_few_names(subdirs)}) and labels were given "
                f"({labels or label_pattern}): pass either class folders or --labels, not both."
            )
        return _class_folders(subdirs, kind)
    files = flat_files(root, kind)
    if not files:
        raise kind.error(f"{root}: no {kind.noun} found ({', '.join(kind.extensions)}).")
    return files, *_flat_labels(root, files, labels, label_pattern, kind)


def _class_folders(subdirs: list[Path], kind: FileKind) -> tuple[list[Path], list[int], list[str]]:
    files, labels = [], []
    for label, d in enumerate(subdirs):
        members = sorted(p for p in d.rglob("*") if kind.matches(p))
        if not members:
            raise kind.error(
                f"{d}: class folder holds no {kind.noun} ({', '.join(kind.extensions)}). "
                f"Remove the folder or add {kind.noun}."
            )
        files += members
        labels += [label] * len(members)
    return files, labels, [d.name for d in subdirs]


def flat_files(root: Path, kind: FileKind = IMAGES) -> list[Path]:
    """The files of `kind` at the top level of `root`, sorted."""
    return sorted(p for p in root.iterdir() if kind.matches(p))


def _flat_labels(
    root: Path, files: list[Path], labels: str | Path | None, pattern: str | None, kind: FileKind
) -> tuple[list[int], list[str]] | tuple[None, None]:
    """(labels, classes) of a flat folder's `files`, or (None, None) if it is unlabeled; the
    labels module's BadImageError becomes the kind's error (same message)."""
    # labels.py raises this module's BadImageError: imported here, or the imports would cycle.
    from selfsup.data.labels import labels_from_csv, labels_from_pattern

    try:
        if labels is None and pattern is None:
            own = root / "labels.csv"
            return labels_from_csv(own, files, root) if own.exists() else (None, None)
        names_root, scope = _label_scope(root, files, kind)
        if pattern is not None:
            return labels_from_pattern(pattern, files, names_root, within=scope)
        return labels_from_csv(Path(labels).expanduser(), files, names_root, within=scope)
    except BadImageError as e:
        if kind.error is BadImageError:
            raise
        raise kind.error(str(e)) from e


def _label_scope(root: Path, files: list[Path], kind: FileKind) -> tuple[Path, list[Path]]:
    """(the folder a labels file's names are relative to, the files they may name): `root` and
    its files, or for a split folder (root/train, root/test or root/val beside root/train) the
    split's parent and the files of its splits: one labels file serves train and test, and
    names of the other split are not "missing" while this one is read."""
    parent = root.parent
    if root.name not in ("train", "test", "val") or not (parent / "train").is_dir():
        return root, files
    others = [d for d in (parent / "train", _test_dir(parent)) if d is not None and d != root]
    return parent, files + [f for d in others for f in flat_files(d, kind)]


def _subfolders(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def refuse_mixed_layout(root: Path, subdirs: list[Path], kind: FileKind = IMAGES) -> None:
    """The kind's error if `root` holds files beside sub-folders: one stray folder used to
    switch a flat folder to class folders and drop every top-level file without a word."""
    top = flat_files(root, kind) if subdirs else []
    if top:
        raise kind.error(
            f"{root}: {len(top)} {kind.noun} at the top level and sub-folders "
            f"{_few_names(subdirs)}: put every {kind.one} in a class folder, or move the "
            "sub-folders out."
        )


def _few_names(paths: list[Path]) -> str:
    return ", ".join(p.name for p in paths[:5]) + (", ..." if len(paths) > 5 else "")


def decode_image(
    path: Path, size: int | None, max_pixels: int | None = MAX_IMAGE_PIXELS
) -> np.ndarray:
    """One file -> uint8 (H, W, 3). Any PIL mode (grey, palette, RGBA, 16-bit) becomes RGB.

    With `size`, the shorter side is resized to `size` and the centre cropped to size x size.
    An image whose header claims more than `max_pixels` (None: no limit) is refused before
    its pixels are decoded.
    """
    from PIL import Image, UnidentifiedImageError

    _pil_allows(max_pixels)
    try:
        with Image.open(path) as im:  # lazy: reads the header only
            check_pixels(path, im.size, max_pixels)
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                im = Image.fromarray((arr / max(arr.max(), 1) * 255).astype(np.uint8))
            im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                im = _resize_center_crop(im, size)
            return np.asarray(im, dtype=np.uint8)
    except BadImageError:
        raise
    except Image.DecompressionBombError as e:  # PIL's check, at twice its limit (>= ours)
        raise _too_many_pixels(path, _bomb_claim(e), max_pixels) from e
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
    ) as e:
        raise BadImageError(
            f"{path}: cannot decode image ({type(e).__name__}: {e}). Remove or replace the file, "
            "or pass --skip-bad-files to skip it."
        ) from e


def check_pixels(path: Path, dimensions: tuple[int, int], max_pixels: int | None) -> None:
    """BadImageError if the (width, height) a header claims exceeds `max_pixels`."""
    if not within_limit(dimensions, max_pixels):
        w, h = dimensions
        raise _too_many_pixels(path, f"{w}x{h} = {w * h:,} pixels", max_pixels)


def _bomb_claim(e: Exception) -> str:
    """ "N pixels" from PIL's DecompressionBombError (its open refuses before giving the size),
    or its whole message if worded otherwise."""
    found = re.search(r"\((\d+) pixels\)", str(e))
    return f"{int(found.group(1)):,} pixels" if found else str(e)


def _too_many_pixels(path: Path, claim: str, max_pixels: int | None) -> BadImageError:
    return BadImageError(
        f"{path}: the header claims {claim}, over the limit max_image_pixels={max_pixels} "
        "(a decompression bomb, or a very large image). Remove the file, pass "
        "--skip-bad-files to skip it, or raise max_image_pixels if it is real."
    )


def _pil_allows(max_pixels: int | None) -> None:
    """Raise PIL's own bomb limit to ours: PIL warns above its limit and refuses at twice it,
    which would override a larger configured limit. Ours runs first, so lowering is never
    needed; PIL's is never lowered."""
    from PIL import Image

    current = Image.MAX_IMAGE_PIXELS
    if current is not None and (max_pixels is None or max_pixels > current):
        Image.MAX_IMAGE_PIXELS = max_pixels


def _resize_center_crop(im, size: int):
    from PIL import Image

    w, h = im.size
    scale = size / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return im.crop((left, top, left + size, top + size))


def _cache_key(
    root: Path,
    files: list[Path],
    size: int | None,
    max_pixels: int | None,
    labels: list[int] | None = None,
    classes: list[str] | None = None,
) -> str:
    """A hash of the decode settings, the labels and classes, and every file's relative name and
    bytes. The cache stores the labels: keyed on them, an edited labels file or pattern cannot
    return stale ones (a reordered file still hits). Names, sizes and mtimes missed two
    same-size images swapped with their mtimes kept. Measured on 2 loaded
    cores, files in the page cache: 3,000 JPEGs of 1.2 kB 0.15-0.19 s (the old stat key:
    0.02 s; decoding them: 0.5-1.0 s), 3,000 files of 200 kB (600 MB) 1.2 s. SHA-1 (CPU
    instructions) hashed the 600 MB in 1.2 s, BLAKE2b in 2.9 s; it is a cache key, not a
    signature."""
    h = hashlib.sha1(f"{size}|{max_pixels}|{json.dumps([labels, classes])}|".encode())
    for f in files:
        h.update(f"{f.relative_to(root)}|".encode() + _file_digest(f))
    return h.hexdigest()[:20]


def _file_digest(path: Path) -> bytes:
    """The file's SHA-1; an unreadable file hashes as such (its decode then names it)."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha1").digest()
    except OSError:
        return b"unreadable"


def load_image_folder(
    root: str | Path,
    image_size: int | None = None,
    cache_dir: str | Path | None = None,
    skip_bad_files: bool = False,
    workers: int = 4,
    max_image_pixels: int | None = MAX_IMAGE_PIXELS,
    labels: str | Path | None = None,
    label_pattern: str | None = None,
) -> InMemoryDataset:
    """Decode every image under `root` into an InMemoryDataset of uint8 (N, 3, S, S).

    image_size: resize (shorter side) + centre crop to this size; None requires all images to
        share one size (an error names the first file that differs).
    skip_bad_files: skip undecodable files (the count is in `ds.skipped`) instead of raising.
    max_image_pixels: refuse (or skip) images whose header claims more pixels; None: no limit.
    labels, label_pattern: label a flat folder from a labels file or its file names
        (`list_images`).
    """
    root = Path(root)
    files, targets, classes = list_images(root, labels, label_pattern)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    key = _cache_key(root, files, image_size, max_image_pixels, targets, classes)
    key_path = cache / f"{root.name}-{key}"
    if key_path.with_suffix(".safetensors").exists():
        cached = _load_cached(key_path)
        if cached is not None:
            return cached
    ds = decode_files(
        files, targets, classes, root, image_size, skip_bad_files, workers, max_image_pixels
    )
    if not ds.skipped:  # a partial decode is not cached: the next run should report the skips too
        _save_cached(key_path, ds)
    return ds


def decode_files(
    files: list[Path],
    labels: list[int] | None,
    classes: list[str] | None,
    root: Path,
    image_size: int | None = None,
    skip_bad_files: bool = False,
    workers: int = 4,
    max_image_pixels: int | None = MAX_IMAGE_PIXELS,
) -> InMemoryDataset:
    """`files` (under `root`; labels per file or None) -> InMemoryDataset (N, 3, S, S) uint8,
    without the cache; the arguments as `load_image_folder`'s."""
    decoded = _decode_all(files, image_size, skip_bad_files, workers, max_image_pixels)
    keep = [i for i, a in enumerate(decoded) if a is not None]
    if not keep:
        raise BadImageError(f"{root}: none of {len(files)} images could be decoded.")
    arrays = [decoded[i] for i in keep]
    _check_same_size(arrays, [files[i] for i in keep])
    ds = InMemoryDataset(
        inputs=torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous(),
        targets=None if labels is None else torch.tensor([labels[i] for i in keep]),
        classes=classes,
        name=root.name,
        sources=[str(files[i].relative_to(root)) for i in keep],
    )
    ds.skipped = [str(files[i]) for i, a in enumerate(decoded) if a is None]
    return ds


def _decode_all(
    files: list[Path],
    size: int | None,
    skip: bool,
    workers: int,
    max_pixels: int | None,
    chunk: int = 512,
) -> list[np.ndarray | None]:
    """Every file -> (H, W, 3) uint8 or None (skipped): JPEGs batched through torchvision in
    chunks, the rest (and what that path leaves) through PIL, both in a thread pool."""
    jpegs = [i for i, f in enumerate(files) if is_jpeg(f)]
    decoded: list[np.ndarray | None] = [None] * len(files)
    with ThreadPoolExecutor(workers) as pool:
        chunks = [jpegs[k : k + chunk] for k in range(0, len(jpegs), chunk)]
        batches = pool.map(lambda r: decode_jpegs([files[i] for i in r], size, max_pixels), chunks)
        for rows, arrays in zip(chunks, batches, strict=True):
            for i, a in zip(rows, arrays, strict=True):
                decoded[i] = a
        rest = [i for i, a in enumerate(decoded) if a is None]
        arrays = pool.map(lambda i: _try_decode(files[i], size, skip, max_pixels), rest)
        for i, a in zip(rest, arrays, strict=True):
            decoded[i] = a
    return decoded


def _try_decode(
    path: Path, size: int | None, skip: bool, max_pixels: int | None
) -> np.ndarray | None:
    try:
        return decode_image(path, size, max_pixels)
    except BadImageError:
        if skip:
            return None
        raise


def _check_same_size(arrays: list[np.ndarray], files: list[Path]) -> None:
    first = arrays[0].shape
    for a, f in zip(arrays, files, strict=True):
        if a.shape != first:
            raise BadImageError(
                f"{f}: size {a.shape[1]}x{a.shape[0]} differs from {files[0]} "
                f"({first[1]}x{first[0]}). Pass --image-size N (e.g. --image-size 64) "
                "to resize all."
            )


def _save_cached(key_path: Path, ds: InMemoryDataset) -> None:
    key_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"inputs": ds.inputs}
    if ds.targets is not None:
        tensors["targets"] = ds.targets
    meta = {"classes": ds.classes, "sources": ds.sources, "name": ds.name}
    # Each written whole then renamed (atomic): a killed run leaves no half file, and the
    # tensors, whose presence marks the cache, come last.
    tmp = key_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, key_path.with_suffix(".json"))
    save_file(tensors, str(tmp))
    os.replace(tmp, key_path.with_suffix(".safetensors"))


def _load_cached(key_path: Path) -> InMemoryDataset | None:
    """The cached dataset (safetensors + JSON, no pickle), or None with a warning naming the
    file if it is unreadable or inconsistent: the caller decodes again and rewrites it."""
    path = key_path.with_suffix(".safetensors")
    try:
        tensors = load_file(str(path))
        meta = json.loads(key_path.with_suffix(".json").read_text())
        ds = InMemoryDataset(
            inputs=tensors["inputs"],
            targets=tensors.get("targets"),
            classes=meta["classes"],
            name=meta["name"],
            sources=meta["sources"],
        )
        if ds.inputs.dtype != torch.uint8 or ds.inputs.ndim != 4 or len(ds.sources) != len(ds):
            raise ValueError(f"{len(ds.sources)} sources for inputs {tuple(ds.inputs.shape)}")
    except Exception as e:  # any damage (truncated, edited, deleted half): a cache is disposable
        warnings.warn(
            f"decode cache {path} is unreadable ({type(e).__name__}: {e}); decoding the folder "
            "again and rewriting it.",
            stacklevel=3,
        )
        path.unlink(missing_ok=True)
        return None
    return ds


def load_image_splits(
    root: str | Path, image_size: int | None = None, **kw
) -> tuple[InMemoryDataset, InMemoryDataset | None]:
    """(train, test) from `root/train` + `root/test` (or `root/val`); else (root, None). `kw`
    as `load_image_folder`'s: a labels file or pattern labels both splits (`list_images`)."""
    return folder_splits(root, lambda d: load_image_folder(d, image_size, **kw))


def folder_splits(
    root: str | Path, load: Callable[[Path], Any], kind: FileKind = IMAGES
) -> tuple[Any, Any | None]:
    """(load(root/train), load(root/test or root/val) or None), their class folders checked to
    match; without root/train, (load(root), None). `load` reads one folder (into memory, or as
    a file list for streaming); files of `kind` beside train/ are refused."""
    root = Path(root)
    if not (root / "train").is_dir():
        return load(root), None
    refuse_mixed_layout(root, _subfolders(root), kind)
    test_dir = _test_dir(root)
    train = load(root / "train")
    test = load(test_dir) if test_dir else None
    if test is not None and test.classes != train.classes:
        raise kind.error(
            f"{test_dir}: class folders {test.classes} differ from {root / 'train'}'s "
            f"{train.classes}; make them match."
        )
    return train, test


def _test_dir(root: Path) -> Path | None:
    """root/test, else root/val, else None: the test split of a split layout."""
    return next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
