"""Image folders decoded once into an in-memory uint8 tensor, with an on-disk decode cache.

Layouts:
  root/<class>/<image>            labeled (ImageFolder layout)
  root/<image> (+ labels.csv)     flat: unlabeled, or labeled by `labels.csv` lines "file,label"
  root/train/..., root/test/...   a split (see `load_image_splits`)

Small images (CIFAR-sized) fit in memory many times over: 50k x 3 x 32 x 32 = 150 MB. Decoding
is the slow part (≈20 s for CIFAR-10 with PIL here; JPEGs go through torchvision's batched
decoder, 5.6x faster, `data/jpeg.py`), so the result is cached as safetensors keyed by the
files' names, sizes and modification times.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from selfsup.data.jpeg import decode_jpegs, is_jpeg
from selfsup.data.memory import InMemoryDataset

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class BadImageError(ValueError):
    """An image file that cannot be used; the message names the file and the fix."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("SELFSUP_CACHE", Path.home() / ".cache" / "selfsup")) / "decoded"


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def list_images(root: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Files, integer labels (or None) and class names (or None) for the layouts above."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: no such folder. Pass an image folder, 'digits' or 'cifar10'."
        )
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if subdirs:
        classes = [d.name for d in subdirs]
        files, labels = [], []
        for label, d in enumerate(subdirs):
            members = sorted(p for p in d.rglob("*") if _is_image(p))
            if not members:
                raise BadImageError(
                    f"{d}: class folder holds no images ({', '.join(IMAGE_EXTENSIONS)}). "
                    "Remove the folder or add images."
                )
            files += members
            labels += [label] * len(members)
        return files, labels, classes
    files = sorted(p for p in root.iterdir() if _is_image(p))
    if not files:
        raise BadImageError(f"{root}: no images found ({', '.join(IMAGE_EXTENSIONS)}).")
    return files, *_read_labels_file(root, files)


def _read_labels_file(root: Path, files: list[Path]):
    path = root / "labels.csv"
    if not path.exists():
        return None, None
    by_name = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        name, sep, label = line.partition(",")
        if not sep:
            raise ValueError(f"{path}:{n}: expected 'file,label', got {line!r}")
        by_name[name.strip()] = label.strip()
    missing = [f.name for f in files if f.name not in by_name]
    if missing:
        raise ValueError(
            f"{path}: no label for {missing[:3]} ({len(missing)} files); add lines 'file,label'."
        )
    classes = sorted(set(by_name[f.name] for f in files))
    index = {c: i for i, c in enumerate(classes)}
    return [index[by_name[f.name]] for f in files], classes


def decode_image(path: Path, size: int | None) -> np.ndarray:
    """One file -> uint8 (H, W, 3). Any PIL mode (grey, palette, RGBA, 16-bit) becomes RGB.

    With `size`, the shorter side is resized to `size` and the centre cropped to size x size.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                im = Image.fromarray((arr / max(arr.max(), 1) * 255).astype(np.uint8))
            im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                im = _resize_center_crop(im, size)
            return np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise BadImageError(
            f"{path}: cannot decode image ({type(e).__name__}: {e}). Remove or replace the file, "
            "or pass --skip-bad-files to skip it."
        ) from e


def _resize_center_crop(im, size: int):
    from PIL import Image

    w, h = im.size
    scale = size / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return im.crop((left, top, left + size, top + size))


def _cache_key(root: Path, files: list[Path], size: int | None) -> str:
    h = hashlib.sha1(f"{root.resolve()}|{size}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def load_image_folder(
    root: str | Path,
    image_size: int | None = None,
    cache_dir: str | Path | None = None,
    skip_bad_files: bool = False,
    workers: int = 4,
) -> InMemoryDataset:
    """Decode every image under `root` into an InMemoryDataset of uint8 (N, 3, S, S).

    image_size: resize (shorter side) + centre crop to this size; None requires all images to
        share one size (an error names the first file that differs).
    skip_bad_files: skip undecodable files (the count is in `ds.skipped`) instead of raising.
    """
    root = Path(root)
    files, labels, classes = list_images(root)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    key_path = cache / f"{root.name}-{_cache_key(root, files, image_size)}"
    if key_path.with_suffix(".safetensors").exists():
        return _load_cached(key_path, root)
    ds = decode_files(files, labels, classes, root, image_size, skip_bad_files, workers)
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
) -> InMemoryDataset:
    """`files` (under `root`; labels per file or None) -> InMemoryDataset (N, 3, S, S) uint8,
    without the cache; the arguments as `load_image_folder`'s."""
    decoded = _decode_all(files, image_size, skip_bad_files, workers)
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
    files: list[Path], size: int | None, skip: bool, workers: int, chunk: int = 512
) -> list[np.ndarray | None]:
    """Every file -> (H, W, 3) uint8 or None (skipped): JPEGs batched through torchvision in
    chunks, the rest (and what that path leaves) through PIL, both in a thread pool."""
    jpegs = [i for i, f in enumerate(files) if is_jpeg(f)]
    decoded: list[np.ndarray | None] = [None] * len(files)
    with ThreadPoolExecutor(workers) as pool:
        chunks = [jpegs[k : k + chunk] for k in range(0, len(jpegs), chunk)]
        batches = pool.map(lambda r: decode_jpegs([files[i] for i in r], size), chunks)
        for rows, arrays in zip(chunks, batches, strict=True):
            for i, a in zip(rows, arrays, strict=True):
                decoded[i] = a
        rest = [i for i, a in enumerate(decoded) if a is None]
        arrays = pool.map(lambda i: _try_decode(files[i], size, skip), rest)
        for i, a in zip(rest, arrays, strict=True):
            decoded[i] = a
    return decoded


def _try_decode(path: Path, size: int | None, skip: bool) -> np.ndarray | None:
    try:
        return decode_image(path, size)
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
    tmp = key_path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    meta = {"classes": ds.classes, "sources": ds.sources, "name": ds.name}
    key_path.with_suffix(".json").write_text(json.dumps(meta))
    os.replace(
        tmp, key_path.with_suffix(".safetensors")
    )  # atomic: a killed run leaves no half file


def _load_cached(key_path: Path, root: Path) -> InMemoryDataset:
    tensors = load_file(str(key_path.with_suffix(".safetensors")))
    meta = json.loads(key_path.with_suffix(".json").read_text())
    ds = InMemoryDataset(
        inputs=tensors["inputs"],
        targets=tensors.get("targets"),
        classes=meta["classes"],
        name=meta["name"],
        sources=meta["sources"],
    )
    return ds


def load_image_splits(
    root: str | Path, image_size: int | None = None, **kw
) -> tuple[InMemoryDataset, InMemoryDataset | None]:
    """(train, test) from `root/train` + `root/test` (or `root/val`); else (root, None)."""
    return folder_splits(root, lambda d: load_image_folder(d, image_size, **kw))


def folder_splits(root: str | Path, load: Callable[[Path], Any]) -> tuple[Any, Any | None]:
    """(load(root/train), load(root/test or root/val) or None), their class folders checked to
    match; without root/train, (load(root), None). `load` reads one folder (into memory, or as
    a file list for streaming)."""
    root = Path(root)
    if not (root / "train").is_dir():
        return load(root), None
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    train = load(root / "train")
    test = load(test_dir) if test_dir else None
    if test is not None and test.classes != train.classes:
        raise BadImageError(
            f"{test_dir}: class folders {test.classes} differ from {root / 'train'}'s "
            f"{train.classes}; make them match."
        )
    return train, test
