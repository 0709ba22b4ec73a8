"""Time series readers (`selfsup.data.series`): tiny files of each format built in tmp_path, then
the shared benchmark copies (../shared/data/timeseries.tar.gz; skipped without it)."""

from __future__ import annotations

import fcntl
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from selfsup.data.series import (
    HAR_CHANNELS,
    SeriesDataset,
    load_series_data,
    normalize_series,
    read_arrays,
    read_har,
    read_ts,
    read_ucr_tsv,
    series_lengths,
)

# The shared data beside the repository, as tests/text/learning.SHARED and conftest.SHARED_DATA
# find it (importing learning.py would import the text encoders: seconds for a data test).
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
CACHE = Path(os.environ.get("SELFSUP_TEST_CACHE", Path.home() / ".cache" / "selfsup-tests"))
NAN = float("nan")
ACTIVITIES = [
    "LAYING", "SITTING", "STANDING", "WALKING", "WALKING_DOWNSTAIRS", "WALKING_UPSTAIRS",
]  # fmt: skip


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _ts(header: str, rows: list[str]) -> str:
    """A .ts file: header lines (without @data), then @data and the rows."""
    return header.strip() + "\n@data\n" + "\n".join(rows) + "\n"


UNI = (
    "@problemName T\n@timeStamps false\n@univariate true\n@equalLength false\n@classLabel true a b"
)
MULTI = (
    "@problemName M\n@timeStamps false\n@univariate false\n@dimensions 2\n@equalLength false\n"
    "@classLabel true up down"
)


# ---- single readers ------------------------------------------------------------------------


def test_ucr_tsv_shapes_labels_and_missing_values(tmp_path):
    f = _write(tmp_path / "a.tsv", "2\t1.0\t2.0\tNaN\n10\t3\t4\t5\n1\t-1e-3\tNaN\tNaN\n")
    x, labels = read_ucr_tsv(f)
    assert x.shape == (3, 1, 3) and x.dtype == torch.float32
    assert labels == ["2", "10", "1"]
    assert torch.isnan(x[0, 0, 2]) and torch.isnan(x[2, 0, 1:]).all()
    assert x[1, 0].tolist() == [3.0, 4.0, 5.0]
    assert series_lengths(x).tolist() == [2, 3, 1]


def test_ts_variable_length_with_question_marks_is_nan_padded(tmp_path):
    """Comments, a byte-order mark, CRLF and lower-case tags as the archive's files have them."""
    text = "\ufeff# a comment\n" + _ts(UNI.lower(), ["1,?,3:a", "4,5:b", "6,7,8,9:a"])
    f = tmp_path / "v.ts"
    f.write_bytes(text.replace("\n", "\r\n").encode())
    x, labels = read_ts(f)
    assert x.shape == (3, 1, 4) and labels == ["a", "b", "a"]
    assert torch.isnan(x[0, 0, 1]) and torch.isnan(x[0, 0, 3])  # '?' inside, padding after
    assert torch.isnan(x[1, 0, 2:]).all() and x[2, 0].tolist() == [6, 7, 8, 9]
    assert series_lengths(x).tolist() == [3, 2, 4]


def test_ts_multivariate_channels_and_unlabeled(tmp_path):
    f = _write(tmp_path / "m.ts", _ts(MULTI, ["1,2,3:4,5,6:up", "7,8:9,10:down"]))
    x, labels = read_ts(f)
    assert x.shape == (2, 2, 3) and labels == ["up", "down"]
    assert x[0].tolist() == [[1, 2, 3], [4, 5, 6]] and torch.isnan(x[1, :, 2]).all()
    header = (
        "@problemName U\n@univariate true\n@equalLength true\n@seriesLength 2\n@classLabel false"
    )
    x, labels = read_ts(_write(tmp_path / "u.ts", _ts(header, ["1,2", "3,4"])))
    assert labels is None and x.shape == (2, 1, 2)


def test_har_folder_channel_order_labels_and_subjects(tmp_path):
    root = _fake_har(tmp_path, n=6, steps=5)
    x, labels, subjects = read_har(root, "train")
    assert x.shape == (6, 9, 5)
    assert x[:, :, 0].tolist() == [list(map(float, range(9)))] * 6  # channel c holds c: order kept
    assert labels == ["WALKING", "LAYING"] * 3 and subjects.tolist() == [1, 1, 2, 2, 3, 3]


def _fake_har(tmp_path: Path, n: int, steps: int) -> Path:
    """A UCI HAR folder whose channel c holds c + step / 100 (both splits alike)."""
    root = tmp_path / "UCI HAR Dataset"
    _write(root / "activity_labels.txt", "1 WALKING\n2 WALKING_UPSTAIRS\n6 LAYING\n")
    for split in ("train", "test"):
        folder = root / split
        _write(folder / f"y_{split}.txt", "1\n6\n" * (n // 2))
        _write(folder / f"subject_{split}.txt", "".join(f"{i // 2 + 1}\n" for i in range(n)))
        for c, name in enumerate(HAR_CHANNELS):
            row = " ".join(f"{c + t / 100:.7e}" for t in range(steps))
            _write(folder / "Inertial Signals" / f"{name}_{split}.txt", f"{row}\n" * n)
    return root


def test_arrays_npy_2d_3d_and_npz(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.float64).reshape(2, 3))
    x, labels = read_arrays(tmp_path / "a.npy")
    assert x.shape == (2, 1, 3) and x.dtype == torch.float32 and labels is None
    np.save(tmp_path / "b.npy", np.zeros((2, 4, 3), dtype=np.int16))
    assert read_arrays(tmp_path / "b.npy")[0].shape == (2, 4, 3)
    np.savez(tmp_path / "c.npz", X=np.ones((3, 2, 5)), y=np.array([3, 1, 3]))
    x, labels = read_arrays(tmp_path / "c.npz")
    assert x.shape == (3, 2, 5) and labels == ["3", "1", "3"]
    np.savez(tmp_path / "d.npz", data=np.ones((2, 5)), y=np.array(["cat ", "dog"]))
    assert read_arrays(tmp_path / "d.npz")[1] == ["cat", "dog"]


def test_series_lengths_count_inner_missing_values():
    x = torch.tensor([[[1, NAN, 2, NAN]], [[NAN, NAN, NAN, NAN]], [[1, 2, 3, 4]]])
    x = torch.cat([x, torch.full_like(x, NAN)], dim=1)  # a second, all-missing channel
    assert series_lengths(x).tolist() == [3, 0, 4]
    assert series_lengths(x).dtype == torch.long


# ---- load_series_data ---------------------------------------------------------------------------


def _ucr_pair(folder: Path, train: str, test: str) -> Path:
    _write(folder / f"{folder.name}_TRAIN.tsv", train)
    _write(folder / f"{folder.name}_TEST.tsv", test)
    return folder


def test_ucr_folder_numeric_class_order_shared_by_both_splits(tmp_path):
    folder = _ucr_pair(tmp_path / "Toy", "10\t1\t2\n2\t3\t4\n1\t5\t6\n", "2\t1\t1\n10\t2\t2\n")
    train, test = load_series_data(str(folder))
    assert isinstance(train, SeriesDataset) and train.classes == ["1", "2", "10"]
    assert test.classes == train.classes and test.targets.tolist() == [1, 2]
    assert train.targets.tolist() == [2, 1, 0] and train.name == test.name == "Toy"
    assert train.sources[1] == f"{folder / 'Toy_TRAIN.tsv'}:2"
    assert train.normalization.kind == "none"  # UCR series come z-normalized
    assert train.inputs[0, 0].tolist() == [1.0, 2.0]
    # The _TEST file (or _TRAIN) as the spec finds its sibling.
    again, _ = load_series_data(folder / "Toy_TEST.tsv")
    assert torch.equal(again.inputs, train.inputs)


def test_text_labels_sort_as_text(tmp_path):
    rows = ["1,2:walk", "3,4:run", "5,6:Badminton", "7,8:run"]
    header = "@problemName S\n@univariate true\n@classLabel true walk run Badminton"
    _write(tmp_path / "S" / "S_TRAIN.ts", _ts(header, rows))
    _write(tmp_path / "S" / "S_TEST.ts", _ts(header, rows[:2]))
    train, _ = load_series_data(tmp_path / "S")
    assert train.classes == ["Badminton", "run", "walk"] and train.targets.tolist() == [2, 1, 0, 1]


def _tsv_rows(values: np.ndarray) -> str:
    """UCR .tsv rows of `values` (N, T), labels 1, 2, 1, ..."""
    return "".join(f"{k % 2 + 1}\t" + "\t".join(map(str, r)) + "\n" for k, r in enumerate(values))


def test_ucr_unnormalized_set_uses_ts2vec_global_train_statistics(tmp_path):
    """Crop is on TS2Vec's list: (x - nanmean(train)) / nanstd(train), test with train's."""
    train_v = np.array([[1.0, 2.0, 3.0], [10.0, np.nan, 30.0]])
    test_v = np.array([[4.0, 5.0, 6.0]])
    folder = _ucr_pair(tmp_path / "Crop", _tsv_rows(train_v), _tsv_rows(test_v))
    train, test = load_series_data(folder)
    mean, std = np.nanmean(train_v), np.nanstd(train_v)
    assert train.normalization.kind == "global" and "TS2Vec" in train.normalization.reason
    np.testing.assert_allclose(train.inputs[:, 0].numpy(), (train_v - mean) / std, rtol=1e-6)
    np.testing.assert_allclose(test.inputs[:, 0].numpy(), (test_v - mean) / std, rtol=1e-6)


def test_uea_set_uses_per_channel_standard_scaler_of_train(tmp_path):
    """TS2Vec's load_UEA: sklearn's StandardScaler fit on the train rows (N*T, C), whose fit is
    per column nanmean and nanstd with ddof 0 (NaN disregarded; its docs), written out here:
    importing sklearn takes seconds on these cores."""
    rows = ["1,2,3:10,20,30:up", "4,5:40,60:down", "0,0,9:0,0,0:up"]
    _write(tmp_path / "M" / "M_TRAIN.ts", _ts(MULTI, rows))
    _write(tmp_path / "M" / "M_TEST.ts", _ts(MULTI, ["1,1,1,1:2,2,2,2:down"]))
    train, test = load_series_data(tmp_path / "M")
    raw = read_ts(tmp_path / "M" / "M_TRAIN.ts")[0].numpy().astype(np.float64)
    rows = raw.transpose(0, 2, 1).reshape(-1, 2)  # (N*T, C), as TS2Vec reshapes
    mean, scale = np.nanmean(rows, axis=0), np.nanstd(rows, axis=0)
    want = ((rows - mean) / scale).reshape(3, 3, 2)
    assert train.inputs.shape == (3, 2, 4)  # padded to the test split's length
    np.testing.assert_allclose(
        train.inputs[:, :, :3].numpy(), want.transpose(0, 2, 1)[:, :, :3], rtol=1e-5
    )
    assert torch.isnan(train.inputs[1, :, 2:]).all() and train.normalization.kind == "channel"
    np.testing.assert_allclose(train.normalization.std, scale, rtol=1e-6)
    assert not torch.isnan(test.inputs).any()


def test_har_folder_loads_standardized_per_channel(tmp_path):
    train, test = load_series_data(_fake_har(tmp_path, n=4, steps=5))
    assert train.inputs.shape == test.inputs.shape == (4, 9, 5) and train.name == "UCI-HAR"
    assert train.classes == ["LAYING", "WALKING"] and train.normalization.kind == "channel"
    mean = train.inputs.mean(dim=(0, 2))
    assert torch.allclose(mean, torch.zeros(9), atol=1e-5)


def test_npy_with_labels_file_is_split_80_20_per_class(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 2, 7)).astype(np.float32)
    np.save(tmp_path / "s.npy", x)
    names = ["b", "a"] * 10
    _write(tmp_path / "lab.txt", "\n".join(names) + "\n")
    train, test = load_series_data(tmp_path / "s.npy", labels=tmp_path / "lab.txt")
    assert (len(train), len(test)) == (16, 4) and train.classes == ["a", "b"]
    assert test.targets.bincount().tolist() == [2, 2]  # stratified
    assert train.name == "s" and train.sources[0] == f"{tmp_path / 's.npy'}:0"
    csv_rows = "index,label\n" + "".join(f"{i},{n}\n" for i, n in reversed(list(enumerate(names))))
    _write(tmp_path / "lab.csv", csv_rows)
    again, _ = load_series_data(tmp_path / "s.npy", labels=tmp_path / "lab.csv")
    assert torch.equal(again.targets, train.targets) and torch.equal(again.inputs, train.inputs)


def test_unlabeled_npy_has_no_test_split_and_subset_keeps_normalization(tmp_path):
    np.save(tmp_path / "u.npy", np.arange(12, dtype=np.float32).reshape(4, 3))
    train, test = load_series_data(tmp_path / "u.npy")
    assert test is None and train.targets is None and len(train) == 4
    part = train.subset(torch.tensor([0, 2]))
    assert isinstance(part, SeriesDataset) and part.normalization == train.normalization
    assert part.normalization.to_dict()["kind"] == "channel"
    assert str(part.normalization).startswith("channel (own data, no archive protocol")


def test_normalize_series_leaves_constant_channel_and_rejects_unknown_kind():
    x = torch.tensor([[[5.0, 5.0], [1.0, 3.0]]])
    out, _, norm = normalize_series(x, None, "channel")
    assert out[0, 0].tolist() == [0.0, 0.0] and norm.std[0] == 1.0  # StandardScaler's rule
    with pytest.raises(ValueError, match="expected one of none, global, channel"):
        normalize_series(x, None, "minmax")


# ---- the shared benchmark copies ----------------------------------------------------------------


SHARED_ARCHIVE = SHARED / "timeseries.tar.gz"


def shared_series_root() -> Path | None:
    """timeseries.tar.gz unpacked once into the test cache (under a lock: xdist workers);
    None when the shared data is absent."""
    tarball = SHARED_ARCHIVE
    if not tarball.exists():
        return None
    root, marker = CACHE / "timeseries", CACHE / "timeseries.unpacked"
    stamp = str(tarball.stat().st_mtime_ns)
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "timeseries.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists() or marker.read_text() != stamp:
            with tarfile.open(tarball) as tar:
                tar.extractall(root, filter="data")
            marker.write_text(stamp)
    return root


@pytest.fixture(scope="module")
def ts_root() -> Path:
    root = shared_series_root()
    if root is None:
        pytest.skip(
            f"{SHARED_ARCHIVE} is absent: this test needs the shared data sets beside the repo"
        )
    return root


@pytest.mark.parametrize(
    ("spec", "sizes", "shape", "classes"),
    [
        ("UCR/ECG200", (100, 100), (1, 96), 2),
        ("UCR/GunPoint/GunPoint_TRAIN.ts", (50, 150), (1, 150), 2),
        ("UEA/BasicMotions", (40, 40), (6, 100), 4),
    ],
    ids=["ECG200_tsv", "GunPoint_ts", "BasicMotions"],
)
def test_shared_equal_length_sets(ts_root, spec, sizes, shape, classes):
    train, test = load_series_data(ts_root / spec)
    assert (len(train), len(test)) == sizes and train.num_classes == classes
    assert train.inputs.shape[1:] == test.inputs.shape[1:] == shape
    assert not torch.isnan(train.inputs).any() and not torch.isnan(test.inputs).any()


def test_shared_japanese_vowels_is_nan_padded(ts_root):
    train, test = load_series_data(ts_root / "UEA" / "JapaneseVowels")
    assert (len(train), len(test)) == (270, 370) and train.num_classes == 9
    assert train.inputs.shape[1:] == test.inputs.shape[1:] == (12, 29)
    lengths = torch.cat([series_lengths(train.inputs), series_lengths(test.inputs)])
    assert (lengths.min(), lengths.max()) == (7, 29)
    assert torch.isnan(train.inputs[0, :, int(lengths[0]) :]).all()
    assert train.normalization.kind == "channel"


@pytest.mark.parametrize(("split", "size"), [("train", 7352), ("test", 2947)])
def test_shared_har_split(ts_root, split, size):
    """One split a test (~1 and ~2.5 s: 9 text files each); load_series_data's HAR path (both
    splits, normalization) runs on the fake folder above."""
    x, labels, subjects = read_har(ts_root / "UCI HAR Dataset", split)
    assert x.shape == (size, 9, 128) and len(labels) == len(subjects) == size
    assert sorted(set(labels)) == ACTIVITIES and not torch.isnan(x).any()
    assert len(subjects.unique()) == (21 if split == "train" else 9)  # 30 volunteers, 70/30


def test_centre_series_splits_the_padding_around_each_series():
    from selfsup.data.series import centre_series

    x = torch.tensor([[[1.0, 2.0, NAN, NAN, NAN]], [[1.0, 2.0, 3.0, 4.0, 5.0]]])
    out = centre_series(x)
    assert torch.equal(out[1], x[1])
    assert torch.isnan(out[0, 0, [0, 3, 4]]).all() and out[0, 0, 1:3].tolist() == [1.0, 2.0]
