"""Image folders: layouts, the decode cache, and files a real folder contains."""

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.data import BadImageError, load_digits, load_image_data, load_image_folder


def _save(path, size=(8, 8), mode="RGB", seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16)).save(path)
        return
    arr = rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path)


@pytest.fixture
def labeled(tmp_path):
    for c in ("cat", "dog"):
        for i in range(3):
            _save(tmp_path / "set" / c / f"{i}.png", seed=i + (c == "dog") * 10)
    return tmp_path / "set"


def test_class_folders_give_labels_in_sorted_class_order(labeled, tmp_path):
    ds = load_image_folder(labeled, cache_dir=tmp_path / "cache")
    assert ds.inputs.shape == (6, 3, 8, 8) and ds.inputs.dtype == torch.uint8
    assert ds.classes == ["cat", "dog"] and ds.targets.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds[4][1:] == (1, 4)
    pixels = np.asarray(Image.open(labeled / "dog" / "1.png"))
    assert torch.equal(ds.inputs[4].permute(1, 2, 0), torch.from_numpy(pixels))


def test_decode_cache_is_reused_and_invalidated(labeled, tmp_path):
    cache = tmp_path / "cache"
    first = load_image_folder(labeled, cache_dir=cache)
    assert len(list(cache.glob("*.safetensors"))) == 1
    again = load_image_folder(labeled, cache_dir=cache)
    assert torch.equal(first.inputs, again.inputs) and again.sources == first.sources
    _save(labeled / "cat" / "3.png", seed=99)  # a new file changes the key
    assert len(load_image_folder(labeled, cache_dir=cache)) == 7


def test_flat_folder_is_unlabeled_unless_labels_csv(tmp_path):
    for i in range(4):
        _save(tmp_path / "flat" / f"{i}.jpg", seed=i)
    ds = load_image_folder(tmp_path / "flat", cache_dir=tmp_path / "c")
    assert ds.targets is None and len(ds) == 4
    train, test = load_image_data(str(tmp_path / "flat"))
    assert test is None
    (tmp_path / "flat" / "labels.csv").write_text("0.jpg,a\n1.jpg,b\n2.jpg,a\n3.jpg,b\n")
    ds = load_image_folder(tmp_path / "flat", cache_dir=tmp_path / "c2")
    assert ds.classes == ["a", "b"] and ds.targets.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "I;16", "CMYK"])
def test_any_mode_becomes_rgb(tmp_path, mode):
    suffix = ".jpg" if mode == "CMYK" else ".png"
    _save(tmp_path / "m" / "a" / f"x{suffix}", mode=mode)
    ds = load_image_folder(tmp_path / "m", cache_dir=tmp_path / "c")
    assert ds.inputs.shape == (1, 3, 8, 8)


def test_mixed_sizes_need_image_size(tmp_path):
    _save(tmp_path / "s" / "a" / "0.png", size=(8, 8))
    _save(tmp_path / "s" / "a" / "1.png", size=(12, 20))
    with pytest.raises(BadImageError, match=r"1.png.*--image-size"):
        load_image_folder(tmp_path / "s", cache_dir=tmp_path / "c")
    ds = load_image_folder(tmp_path / "s", image_size=6, cache_dir=tmp_path / "c")
    assert ds.inputs.shape == (2, 3, 6, 6)


def test_corrupt_file_is_named_or_skipped_and_counted(labeled, tmp_path):
    (labeled / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(BadImageError, match=r"broken.jpg.*--skip-bad-files"):
        load_image_folder(labeled, cache_dir=tmp_path / "c")
    ds = load_image_folder(labeled, cache_dir=tmp_path / "c", skip_bad_files=True)
    assert len(ds) == 6 and len(ds.skipped) == 1 and ds.skipped[0].endswith("broken.jpg")


def test_empty_class_folder_and_missing_folder_are_clear(tmp_path, labeled):
    (labeled / "empty").mkdir()
    with pytest.raises(BadImageError, match="empty.*no images"):
        load_image_folder(labeled, cache_dir=tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_image_folder(tmp_path / "nope")


def test_labeled_folder_without_split_is_held_out_stratified(labeled):
    train, test = load_image_data(str(labeled))
    assert len(train) + len(test) == 6 and sorted(test.targets.tolist()) == [0, 1]
    assert not set(train.sources) & set(test.sources)


def test_digits_default():
    train, test = load_digits(size=16)
    assert train.inputs.shape[1:] == (3, 16, 16) and len(train) + len(test) == 1797
    assert set(test.targets.tolist()) == set(range(10))
