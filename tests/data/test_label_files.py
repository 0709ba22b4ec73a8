"""Labels for a flat folder from a labels file (CSV) or a pattern over the file names."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.data import BadImageError, load_image_data, load_image_folder
from selfsup.data.folder import folder_splits
from selfsup.data.labels import class_order, labels_from_csv, labels_from_pattern
from selfsup.data.stream import ImageFiles


def _png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)).save(path)
    return path


def _flat(root: Path, names: list[str]) -> Path:
    for i, name in enumerate(names):
        _png(root / name, seed=i)
    return root


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("header", ["", "file,label\n", "Filename , LABEL\n"])
def test_labels_file_outside_the_folder_with_or_without_header(tmp_path, header):
    root = _flat(tmp_path / "flat", ["a.png", "b.png", "c.png"])
    labels = _csv(tmp_path / "labels.csv", header + "a.png,dog\n\nb.png, cat\nc.png,dog\n")
    ds = load_image_folder(root, labels=labels, cache_dir=tmp_path / "c")
    assert ds.classes == ["cat", "dog"] and ds.targets.tolist() == [1, 0, 1]
    assert ds.sources == ["a.png", "b.png", "c.png"]


def test_quoted_name_with_a_comma_and_a_byte_order_mark(tmp_path):
    root = _flat(tmp_path / "flat", ["a,b.png", "c.png"])
    labels = tmp_path / "l.csv"
    labels.write_bytes('\ufeff"a,b.png",x\nc.png,"y, z"\n'.encode())  # Excel's UTF-8 BOM
    files = sorted(root.iterdir())
    assert labels_from_csv(labels, files, root) == ([0, 1], ["x", "y, z"])


def test_relative_paths_then_bare_names_in_sub_folders(tmp_path):
    root = tmp_path / "r"
    files = [_png(root / p) for p in ("x/1.png", "y/1.png", "y/2.png", "1.png")]
    labels = _csv(tmp_path / "l.csv", "x/1.png,a\n./y/1.png,b\n2.png,c\n1.png,d\n")
    # "1.png" is the relative path of the top-level file: matched before any bare name.
    assert labels_from_csv(labels, files, root) == ([0, 1, 2, 3], ["a", "b", "c", "d"])
    _csv(labels, "x/1.png,a\ny/1.png,b\n2.png,c\n")
    with pytest.raises(BadImageError, match=r"l\.csv: 1 file of .* has no label: 1\.png"):
        labels_from_csv(labels, files, root)


def test_an_ambiguous_bare_name_is_an_error_naming_both_files(tmp_path):
    root = tmp_path / "r"
    files = [_png(root / "x" / "1.png"), _png(root / "y" / "1.png")]
    labels = _csv(tmp_path / "l.csv", "1.png,a\n")
    with pytest.raises(BadImageError, match=r"l\.csv:1: 1\.png is the name of 2 files \(x/1\.png"):
        labels_from_csv(labels, files, root)


def test_integer_labels_sort_as_numbers_others_as_strings(tmp_path):
    root = _flat(tmp_path / "f", ["a.png", "b.png", "c.png"])
    labels = _csv(tmp_path / "l.csv", "a.png,10\nb.png,9\nc.png,2\n")
    ds = load_image_folder(root, labels=labels, cache_dir=tmp_path / "c")
    assert ds.classes == ["2", "9", "10"] and ds.targets.tolist() == [2, 1, 0]
    assert class_order(["10", "9", "x"]) == ["10", "9", "x"]
    assert class_order(["-1", "07", "7", "+3"]) == ["-1", "+3", "07", "7"]


def test_duplicate_rows_agree_or_name_both_lines(tmp_path):
    root = _flat(tmp_path / "f", ["a.png", "b.png"])
    files = sorted(root.iterdir())
    labels = _csv(tmp_path / "l.csv", "a.png,x\nb.png,y\na.png,x\n")
    assert labels_from_csv(labels, files, root) == ([0, 1], ["x", "y"])
    _csv(labels, "a.png,x\nb.png,y\na.png,z\n")
    with pytest.raises(BadImageError, match=r"l\.csv:3: a\.png labeled z, but line 1 labeled it x"):
        labels_from_csv(labels, files, root)


def test_pattern_labels_from_file_names(tmp_path):
    names = ["7_jackson_32.png", "7_theo_1.png", "10_nicolas_0.png", "3_jackson_5.png"]
    root = _flat(tmp_path / "fsdd", names)
    ds = load_image_folder(root, label_pattern=r"^(\d+)_", cache_dir=tmp_path / "c")
    by_source = dict(zip(ds.sources, (ds.classes[t] for t in ds.targets), strict=True))
    assert ds.classes == ["3", "7", "10"]
    assert by_source == {n: n.split("_")[0] for n in names}
    named = ImageFiles.from_folder(root, label_pattern=r"(?P<digit>\d+)_(?P<label>[a-z]+)_")
    assert named.classes == ["jackson", "nicolas", "theo"]
    assert named.targets.tolist() == [1, 0, 0, 2]  # files sorted: 10_, 3_, 7_j, 7_t


def test_pattern_files_that_do_not_match_are_counted(tmp_path):
    root = _flat(tmp_path / "f", [f"{i}_x.png" for i in range(3)] + [f"n{i}.png" for i in range(6)])
    with pytest.raises(BadImageError) as err:
        load_image_folder(root, label_pattern=r"^(\d+)_", cache_dir=tmp_path / "c")
    message = str(err.value)
    assert "'^(\\\\d+)_' does not match 6 file names under" in message
    assert message.endswith(
        "n0.png, n1.png, n2.png, n3.png, n4.png, ... (fix the pattern, e.g. '^(\\d+)_' labels "
        "7_jackson_32.wav as 7, or remove the files)."
    )


def test_csv_labels_equal_class_folders(tmp_path):
    """The same images in class folders and flat + a labels file: the same (inputs, targets,
    classes) up to row order."""
    classes = {"cat": 3, "dog": 2, "emu": 4}
    rows = []
    for c, n in classes.items():
        for i in range(n):
            name = f"{c[0]}{i}.png"
            _png(tmp_path / "folders" / c / name, seed=len(rows))
            rows.append(f"{name},{c}")
    shutil.copytree(tmp_path / "folders", tmp_path / "tmp")
    (tmp_path / "flat").mkdir()
    for p in (tmp_path / "tmp").rglob("*.png"):
        p.rename(tmp_path / "flat" / p.name)
    labels = _csv(tmp_path / "labels.csv", "\n".join(reversed(rows)) + "\n")
    a = load_image_folder(tmp_path / "folders", cache_dir=tmp_path / "c")
    b = load_image_folder(tmp_path / "flat", labels=labels, cache_dir=tmp_path / "c")
    assert a.classes == b.classes == ["cat", "dog", "emu"]
    order_a = sorted(range(len(a)), key=lambda i: Path(a.sources[i]).name)
    order_b = sorted(range(len(b)), key=lambda i: b.sources[i])
    assert [Path(a.sources[i]).name for i in order_a] == [b.sources[i] for i in order_b]
    assert torch.equal(a.inputs[order_a], b.inputs[order_b])
    assert torch.equal(a.targets[order_a], b.targets[order_b])


def test_an_edited_labels_file_or_pattern_misses_the_decode_cache(tmp_path):
    root = _flat(tmp_path / "f", ["1_a.png", "2_b.png"])
    labels = _csv(tmp_path / "l.csv", "1_a.png,x\n2_b.png,y\n")
    cache = tmp_path / "c"
    assert load_image_folder(root, labels=labels, cache_dir=cache).targets.tolist() == [0, 1]
    _csv(labels, "1_a.png,y\n2_b.png,x\n")
    assert load_image_folder(root, labels=labels, cache_dir=cache).targets.tolist() == [1, 0]
    _csv(labels, "1_a.png,y\n2_b.png,z\n")
    ds = load_image_folder(root, labels=labels, cache_dir=cache)
    assert ds.classes == ["y", "z"] and ds.targets.tolist() == [0, 1]
    ds = load_image_folder(root, label_pattern=r"_(\w)\.", cache_dir=cache)
    assert ds.classes == ["a", "b"]
    ds = load_image_folder(root, label_pattern=r"^(\d)", cache_dir=cache)
    assert ds.classes == ["1", "2"]
    assert len(list(cache.glob("*.safetensors"))) == 5
    own = _csv(root / "labels.csv", "1_a.png,p\n2_b.png,q\n")  # the folder's own labels.csv too
    assert load_image_folder(root, cache_dir=cache).classes == ["p", "q"]
    _csv(own, "1_a.png,r\n2_b.png,q\n")
    assert load_image_folder(root, cache_dir=cache).classes == ["q", "r"]


def test_names_not_in_the_folder_are_counted_and_the_first_five_listed(tmp_path):
    root = _flat(tmp_path / "flat", ["a.png", "b.png"])
    ghosts = [f"ghost{i}.png" for i in range(7)]
    text = "a.png,x\n" + "".join(f"{g},x\n" for g in ghosts) + "b.png,y\nghost0.png,x\n"
    labels = _csv(tmp_path / "labels.csv", text)
    with pytest.raises(BadImageError) as err:
        load_image_folder(root, labels=labels, cache_dir=tmp_path / "c")
    assert str(err.value) == (
        f"{labels}: 7 names are not files of {root}: ghost0.png, ghost1.png, ghost2.png, "
        "ghost3.png, ghost4.png, ... (check the folder or the names)."
    )


def test_files_without_a_label_are_counted(tmp_path):
    root = _flat(tmp_path / "flat", [f"{i}.png" for i in range(8)])
    labels = _csv(tmp_path / "labels.csv", "3.png,x\n")
    with pytest.raises(BadImageError) as err:
        ImageFiles.from_folder(root, labels=labels)
    assert str(err.value) == (
        f"{labels}: 7 files of {root} have no label: 0.png, 1.png, 2.png, 4.png, 5.png, ... "
        "(add rows 'file,label' for them, or remove the files)."
    )


@pytest.fixture
def split(tmp_path) -> Path:
    """root/train/{a0,a1,b0,b1}.png and root/test/{a2,b2,a0}.png: test/a0.png shares its name."""
    for name in ("a0", "a1", "b0", "b1"):
        _png(tmp_path / "root" / "train" / f"{name}.png", seed=len(name))
    for name in ("a2", "b2", "a0"):
        _png(tmp_path / "root" / "test" / f"{name}.png", seed=7)
    return tmp_path / "root"


def test_one_labels_file_labels_train_and_test(split, tmp_path):
    """Relative paths (train/a0.png) or bare names unique across the splits: each split is
    labeled from the same file, with the same classes, and checks only its own files."""
    text = "train/a0.png,A\na1.png,A\nb0.png,B\nb1.png,B\nb2.png,B\na2.png,A\ntest/a0.png,C\n"
    labels = _csv(tmp_path / "l.csv", text)
    train, test = load_image_data(str(split), labels=str(labels))
    assert train.classes == test.classes == ["A", "B", "C"]
    assert train.targets.tolist() == [0, 0, 1, 1] and test.targets.tolist() == [2, 0, 1]
    streamed, _ = folder_splits(split, lambda d: ImageFiles.from_folder(d, labels=labels))
    assert streamed.targets.tolist() == [0, 0, 1, 1]
    _csv(labels, text.replace("b2.png,B\n", ""))  # train is labeled; test is not
    with pytest.raises(BadImageError, match=r"1 file of .*root has no label: test/b2\.png \(add"):
        load_image_data(str(split), labels=str(labels))
    _csv(labels, text + "train/zz.png,A\n")
    with pytest.raises(BadImageError, match=r"1 name is not a file of .*root: train/zz\.png"):
        load_image_data(str(split), labels=str(labels))


def test_a_split_prefers_its_own_file_for_a_shared_bare_name(split, tmp_path):
    """a0.png is in both splits: reading train, the bare name means train/a0.png."""
    labels = _csv(tmp_path / "l.csv", "a0.png,A\na1.png,A\nb0.png,B\nb1.png,B\n")
    ds = load_image_folder(split / "train", labels=labels, cache_dir=tmp_path / "c")
    assert ds.targets.tolist() == [0, 0, 1, 1]


def test_pattern_labels_both_splits_with_shared_classes(split):
    """Classes from the names of both splits: train's b1 and test's a2 index the same list."""
    train, test = folder_splits(split, lambda d: ImageFiles.from_folder(d, label_pattern=r"(\w\d)"))
    assert train.classes == test.classes == ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert train.targets.tolist() == [0, 1, 3, 4] and test.targets.tolist() == [0, 2, 5]


def test_explicit_labels_replace_the_folders_own_labels_csv(tmp_path):
    root = _flat(tmp_path / "f", ["a.png", "b.png"])
    _csv(root / "labels.csv", "a.png,own\nb.png,own\n")
    labels = _csv(tmp_path / "l.csv", "a.png,x\nb.png,y\n")
    assert ImageFiles.from_folder(root).classes == ["own"]
    assert ImageFiles.from_folder(root, labels=labels).classes == ["x", "y"]


def test_labels_with_class_folders_or_both_kinds_or_bundled_data_are_refused(tmp_path):
    _png(tmp_path / "set" / "cat" / "0.png")
    labels = _csv(tmp_path / "l.csv", "0.png,x\n")
    with pytest.raises(ValueError, match=r"class folders \(cat\).*either class folders or --lab"):
        load_image_folder(tmp_path / "set", labels=labels, cache_dir=tmp_path / "c")
    with pytest.raises(ValueError, match=r"class folders.*\^\(\.\)"):
        ImageFiles.from_folder(tmp_path / "set", label_pattern="^(.)")
    with pytest.raises(ValueError, match="either --labels or --label-pattern, not both"):
        load_image_folder(tmp_path / "set", labels=labels, label_pattern="(.)")
    for spec in ("digits", "cifar10"):
        with pytest.raises(ValueError, match=re.escape(f"data='{spec}' comes labeled")):
            load_image_data(spec, labels=labels)


def test_labels_from_pattern_directly(tmp_path):
    files = [tmp_path / "dog.1.png", tmp_path / "cat.2.png"]
    assert labels_from_pattern(r"^([a-z]+)\.", files, tmp_path) == ([1, 0], ["cat", "dog"])
    # An empty group is no label: "" would become a class of its own.
    with pytest.raises(BadImageError, match=r"does not match 1 file name under .*: cat\.2\.png"):
        labels_from_pattern(r"^(d*)", files, tmp_path)
