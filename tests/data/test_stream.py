"""ImageFiles: a folder read file by file (decode + per-image transform in DataLoader workers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.data.folder import BadImageError, load_image_folder
from selfsup.data.stream import ImageFiles, read_image, sample_seed


def make_folder(root: Path, n_per_class: int = 8, size: tuple[int, int] = (40, 48)) -> Path:
    """root/{a,b}/*.{jpg,png}: smooth random images of `size` (H, W)."""
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(n_per_class):
            small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            im = Image.fromarray(small).resize(size[::-1], Image.BILINEAR)
            im.save(root / c / f"{i}.{'png' if i % 4 == 3 else 'jpg'}", quality=95)
    return root


def test_read_image_matches_the_in_memory_decoder(tmp_path):
    root = make_folder(tmp_path / "f", n_per_class=4)
    ds = ImageFiles.from_folder(root)
    mem = load_image_folder(root, cache_dir=tmp_path / "cache")
    assert len(ds) == len(mem) == 8 and ds.classes == mem.classes == ["a", "b"]
    assert torch.equal(ds.targets, mem.targets)
    for i in range(len(ds)):
        (image,), target, index = ds[i]
        assert image.dtype == torch.uint8 and image.shape == (3, 40, 48)
        assert torch.equal(image, mem.inputs[i]) and target == int(mem.targets[i]) and index == i


def test_grey_and_bmp_files_become_rgb(tmp_path):
    Image.fromarray(np.full((9, 7), 200, np.uint8), mode="L").save(tmp_path / "g.png")
    Image.fromarray(np.full((9, 7, 3), 10, np.uint8)).save(tmp_path / "c.bmp")
    assert read_image(tmp_path / "g.png").shape == (3, 9, 7)
    assert (read_image(tmp_path / "c.bmp") == 10).all()


def test_transform_gets_a_generator_seeded_by_key_and_index(tmp_path):
    root = make_folder(tmp_path / "f", n_per_class=2)
    draws = lambda image, g: [torch.rand(3, generator=g)]  # noqa: E731
    ds = ImageFiles.from_folder(root, transform=draws, seed=5)
    assert torch.equal(ds[(1, 7)][0][0], ds[(1, 7)][0][0])
    assert not torch.equal(ds[(1, 7)][0][0], ds[(1, 8)][0][0])
    assert not torch.equal(ds[(1, 7)][0][0], ds[(2, 7)][0][0])
    assert sample_seed(5, 7, 1) != sample_seed(6, 7, 1)


def test_bad_file_names_itself_or_is_skipped(tmp_path):
    root = make_folder(tmp_path / "f", n_per_class=2)
    bad = root / "a" / "0.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(BadImageError, match=r"0\.jpg.*--skip-bad-files"):
        ImageFiles.from_folder(root)[0]
    ds = ImageFiles.from_folder(root, skip_bad_files=True)
    with pytest.warns(UserWarning, match=r"skipped: .*0\.jpg"):
        (image,), _, _ = ds[0]
    assert torch.equal(image, read_image(root / "a" / "1.jpg")) and ds.skipped == [str(bad)]
