"""What a real image folder holds, case by case: a clear error naming the file, or (with
`skip_bad_files`) a counted skip. Complements tests/data/test_folder.py (modes, mixed sizes,
empty class folder, a corrupt JPEG header), which these tests do not repeat.

Decisions (documented in docs/robustness.md):
- non-image extensions (.txt, .csv, .DS_Store, hidden `._x.jpg`) in a class folder are ignored;
- an image extension on a non-image file is a bad image (error or counted skip);
- duplicate files are kept as separate samples (deduplication is the user's call);
- images smaller than the training crop are upscaled: by `image_size` at load, or by the
  views' resized crop.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.build import build_views
from selfsup.data import BadImageError, load_image_data, load_image_folder


def _png(size=(8, 8), mode="RGB", seed=0, fmt="PNG") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path):
    """Two classes of three good 8x8 PNGs each."""
    for c in ("cat", "dog"):
        (tmp_path / "set" / c).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "set" / c / f"{i}.png").write_bytes(_png(seed=i + 10 * (c == "dog")))
    return tmp_path / "set"


BAD_FILES = {
    "truncated.jpg": lambda: _png((64, 64), fmt="JPEG")[:300],
    "truncated.png": lambda: _png((64, 64))[:200],
    "corrupt.png": lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
    "notes.jpg": lambda: b"this is a text file with an image extension\n",
    "empty.png": lambda: b"",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_named_or_skipped_and_counted(folder, tmp_path, name):
    (folder / "dog" / name).write_bytes(BAD_FILES[name]())
    with pytest.raises(BadImageError, match=rf"(?s){name}.*cannot decode.*--skip-bad-files"):
        load_image_folder(folder, cache_dir=tmp_path / "c")
    ds = load_image_folder(folder, cache_dir=tmp_path / "c", skip_bad_files=True)
    assert len(ds) == 6 and [p.rsplit("/", 1)[-1] for p in ds.skipped] == [name]


def test_all_bad_files_at_once_are_all_counted_through_load_image_data(folder):
    for name, make in BAD_FILES.items():
        (folder / "cat" / name).write_bytes(make())
    train, test = load_image_data(str(folder), skip_bad_files=True)
    # The 80/20 split of a labeled folder keeps the count (it used to be dropped by the split).
    assert len(train) + len(test) == 6
    assert sorted(p.rsplit("/", 1)[-1] for p in train.skipped) == sorted(BAD_FILES)


def test_non_image_files_in_class_folders_are_ignored(folder, tmp_path):
    (folder / "cat" / "README.txt").write_text("not an image")
    (folder / "cat" / "labels.csv").write_text("a,b\n")
    (folder / "cat" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "dog" / "._0.png").write_bytes(b"\0\5\26\7 AppleDouble")  # macOS resource fork
    ds = load_image_folder(folder, cache_dir=tmp_path / "c")
    assert len(ds) == 6 and not ds.skipped


def test_a_class_folder_holding_only_non_images_is_an_empty_class(folder, tmp_path):
    (folder / "bird").mkdir()
    (folder / "bird" / "README.txt").write_text("images coming soon")
    with pytest.raises(BadImageError, match=r"bird: class folder holds no images"):
        load_image_folder(folder, cache_dir=tmp_path / "c", skip_bad_files=True)


def test_every_mode_in_one_folder_gives_rgb_uint8(tmp_path):
    root = tmp_path / "modes" / "a"
    root.mkdir(parents=True)
    (root / "rgba.png").write_bytes(_png(mode="RGBA"))
    (root / "palette.png").write_bytes(_png(mode="P"))
    (root / "grey.png").write_bytes(_png(mode="L"))
    (root / "bw.png").write_bytes(_png(mode="1"))
    deep = np.full((8, 8), 65535, dtype=np.uint16)
    deep[:4] = 0
    Image.fromarray(deep).save(root / "deep16.png")
    ds = load_image_folder(tmp_path / "modes", cache_dir=tmp_path / "c")
    assert ds.inputs.shape == (5, 3, 8, 8) and ds.inputs.dtype == torch.uint8
    i = ds.sources.index("a/deep16.png")
    assert ds.inputs[i, :, :4].max() == 0 and ds.inputs[i, :, 4:].min() == 255  # scaled, no wrap


def test_images_smaller_than_the_crop(tmp_path):
    root = tmp_path / "tiny" / "a"
    root.mkdir(parents=True)
    for i in range(4):
        (root / f"{i}.png").write_bytes(_png((4, 4), seed=i))
    native = load_image_folder(tmp_path / "tiny", cache_dir=tmp_path / "c")
    assert native.inputs.shape == (4, 3, 4, 4)
    views = build_views("simclr", "", 32)(native.inputs, generator=torch.Generator().manual_seed(0))
    assert [tuple(v.shape) for v in views] == [(4, 3, 32, 32)] * 2  # the views upscale
    assert all(torch.isfinite(v).all() for v in views)
    upscaled = load_image_folder(tmp_path / "tiny", image_size=32, cache_dir=tmp_path / "c")
    assert upscaled.inputs.shape == (4, 3, 32, 32)  # or upscale once at load


def test_mixed_sizes_and_aspect_ratios_with_image_size(tmp_path):
    root = tmp_path / "mixed" / "a"
    root.mkdir(parents=True)
    for i, size in enumerate([(4, 4), (8, 8), (40, 10), (10, 40), (33, 17)]):
        (root / f"{i}.png").write_bytes(_png(size, seed=i))
    ds = load_image_folder(tmp_path / "mixed", image_size=16, cache_dir=tmp_path / "c")
    assert ds.inputs.shape == (5, 3, 16, 16)


def test_duplicate_files_are_kept_as_separate_samples(folder, tmp_path):
    (folder / "cat" / "0-copy.png").write_bytes((folder / "cat" / "0.png").read_bytes())
    ds = load_image_folder(folder, cache_dir=tmp_path / "c")
    a, b = ds.sources.index("cat/0.png"), ds.sources.index("cat/0-copy.png")
    assert len(ds) == 7 and torch.equal(ds.inputs[a], ds.inputs[b])


def test_unreadable_file_is_named_or_skipped(folder, tmp_path):
    locked = folder / "dog" / "locked.png"
    locked.write_bytes(_png(seed=5))
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root (or with CAP_DAC_OVERRIDE): chmod 000 files stay readable")
        with pytest.raises(BadImageError, match=r"(?s)locked.png.*Permission denied"):
            load_image_folder(folder, cache_dir=tmp_path / "c")
        ds = load_image_folder(folder, cache_dir=tmp_path / "c", skip_bad_files=True)
        assert len(ds) == 6 and ds.skipped[0].endswith("locked.png")
    finally:
        locked.chmod(0o644)


def test_a_skip_is_not_cached_so_the_next_run_reports_it_again(folder, tmp_path):
    (folder / "cat" / "bad.png").write_bytes(b"junk")
    for _ in range(2):
        ds = load_image_folder(folder, cache_dir=tmp_path / "c", skip_bad_files=True)
        assert len(ds.skipped) == 1
    assert not list((tmp_path / "c").glob("*.safetensors"))
