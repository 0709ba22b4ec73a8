"""Hostile and careless time series files (`selfsup.data.series`): each test builds the bad file
in tmp_path and expects a `BadSeriesError` (a ValueError, exit code 2 from the CLI) naming the
file, the line for text, and the fix. Arrays are never unpickled: an object array is refused
from its header, before numpy reads it."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from selfsup.data.series import (
    HAR_CHANNELS,
    BadSeriesError,
    load_series_data,
    read_arrays,
    read_har,
    read_ts,
    read_ucr_tsv,
)

HEADER = "@problemName T\n@timeStamps false\n@univariate true\n@equalLength false\n"
LABELS = "@classLabel true a b\n"


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# ---- UCR .tsv ----------------------------------------------------------------------------------


def test_ragged_tsv_row_names_file_line_and_both_counts(tmp_path):
    f = _write(tmp_path / "r.tsv", "1\t0.1\t0.2\t0.3\n2\t0.4\t0.5\t0.6\n1\t0.7\t0.8\n")
    with pytest.raises(BadSeriesError, match=r"r\.tsv:3: 3 columns, but line 1 has 4.*pad .*NaN"):
        read_ucr_tsv(f)


def test_tsv_that_is_comma_separated_says_so(tmp_path):
    f = _write(tmp_path / "c.tsv", "1,0.1,0.2\n2,0.3,0.4\n")
    with pytest.raises(BadSeriesError, match=r"c\.tsv:1: no tab after the label.*to tabs"):
        read_ucr_tsv(f)


def test_tsv_value_that_is_not_a_number_names_line_and_column(tmp_path):
    f = _write(tmp_path / "v.tsv", "1\t0.1\t0.2\n2\t0.3\tabc\n")
    with pytest.raises(BadSeriesError, match=r"v\.tsv:2: value 2 is 'abc', not a number.*NaN"):
        read_ucr_tsv(f)


# ---- .ts headers that do not match their data --------------------------------------------------


@pytest.mark.parametrize(
    ("header", "rows", "expected"),
    [
        (
            "@problemName T\n@univariate false\n@dimensions 2\n" + LABELS,
            "1,2:3,4:a\n5,6:b\n",
            r"t\.ts:7: 2 ':'-separated parts, expected 2 channels \+ 1 label.*@dimensions",
        ),
        (
            HEADER + "@classLabel false\n",
            "1,2\n3,4:a\n",
            r"t\.ts:8: 2 ':'-separated parts, expected 1 channel \(no label: @classLabel false\)",
        ),
        (
            "@problemName T\n@univariate true\n@equalLength true\n" + LABELS,
            "1,2,3:a\n4,5,6:b\n7,8:a\n",
            r"t\.ts:8: 2 values, but line 6 has 3 and the header says @equalLength true.*"
            r"'@equalLength false'",
        ),
        (
            "@problemName T\n@univariate true\n@equalLength true\n@seriesLength 3\n" + LABELS,
            "1,2,3:a\n4,5,6,7:b\n",
            r"t\.ts:8: 4 values, but the header says @seriesLength 3",
        ),
        (
            HEADER + LABELS,
            "1,2:a\n3,4:c\n",
            r"t\.ts:8: label 'c' is not among @classLabel's labels \(a b\); add it",
        ),
        (
            HEADER + "@timeStamps true\n" + LABELS,
            "(0,1),(1,2):a\n",
            r"t\.ts:5: the timestamped \.ts format .* not supported; resample",
        ),
        (
            HEADER + "@equalLenght true\n" + LABELS,
            "1,2:a\n",
            r"t\.ts:5: unknown header line @equallenght; .*check its spelling",
        ),
        (
            HEADER + "@classLabel true\n",
            "1,2:a\n",
            r"t\.ts:5: @classLabel true lists no labels",
        ),
    ],
    ids=[
        "dimensions_count",
        "undeclared_label_column",
        "equal_length",
        "series_length",
        "undeclared_label",
        "timestamps",
        "misspelled_tag",
        "class_label_without_labels",
    ],
)
def test_ts_header_not_matching_its_data_names_file_and_line(tmp_path, header, rows, expected):
    f = _write(tmp_path / "t.ts", header + "@data\n" + rows)
    with pytest.raises(BadSeriesError, match=expected):
        read_ts(f)


def test_ts_without_data_line(tmp_path):
    f = _write(tmp_path / "t.ts", HEADER + LABELS)
    with pytest.raises(BadSeriesError, match=r"t\.ts: no @data line.*add a line '@data'"):
        read_ts(f)
    f = _write(tmp_path / "u.ts", HEADER + "1,2,3:a\n")
    with pytest.raises(BadSeriesError, match=r"u\.ts:5: a series before @data"):
        read_ts(f)
    f = _write(tmp_path / "v.ts", HEADER + LABELS + "@data\n# only a comment\n")
    with pytest.raises(BadSeriesError, match=r"v\.ts: no series after @data"):
        read_ts(f)


def test_non_utf8_ts_names_file_and_line(tmp_path):
    f = _write(tmp_path / "l.ts", (HEADER + LABELS + "@data\n1,2:a\n").encode() + b"3,4:caf\xe9\n")
    with pytest.raises(BadSeriesError, match=r"l\.ts:8: not UTF-8.*iconv -f latin1"):
        read_ts(f)


@pytest.mark.parametrize("name", ["e.ts", "e.tsv", "e.npy"])
def test_empty_file_says_what_it_should_hold(tmp_path, name):
    f = _write(tmp_path / name, "\n  \n" if name != "e.npy" else b"")
    with pytest.raises(BadSeriesError, match=rf"{name}: (empty file|not a NumPy array)"):
        (read_ts if name == "e.ts" else read_ucr_tsv if name == "e.tsv" else read_arrays)(f)


# ---- values and labels ---------------------------------------------------------------------------


def test_all_missing_series_names_file_and_line(tmp_path):
    f = _write(tmp_path / "n.ts", HEADER + LABELS + "@data\n1,2:a\n?,?,?:b\n")
    with pytest.raises(BadSeriesError, match=r"n\.ts:8: every value of this series is missing"):
        read_ts(f)
    f = _write(tmp_path / "n.tsv", "1\t1\t2\n2\tNaN\tNaN\n")
    with pytest.raises(BadSeriesError, match=r"n\.tsv:2: every value of this series is missing"):
        read_ucr_tsv(f)


def test_infinite_value_names_the_series(tmp_path):
    f = _write(tmp_path / "i.tsv", "1\t1\t2\n2\tinf\t1\n")
    with pytest.raises(BadSeriesError, match=r"i\.tsv:2: an infinite value"):
        read_ucr_tsv(f)
    np.save(tmp_path / "i.npy", np.array([[1.0, 2.0], [1e300, 0.0]]))  # beyond float32
    with pytest.raises(BadSeriesError, match=r"i\.npy row 1: an infinite value"):
        read_arrays(tmp_path / "i.npy")


def test_single_class_labels_are_refused_naming_the_file(tmp_path):
    folder = tmp_path / "One"
    _write(folder / "One_TRAIN.tsv", "1\t0.1\t0.2\n1\t0.3\t0.4\n")
    _write(folder / "One_TEST.tsv", "1\t0.1\t0.2\n")
    with pytest.raises(
        BadSeriesError, match=r"One_TRAIN\.tsv: every series has the label '1'.*>= 2"
    ):
        load_series_data(folder)
    np.save(tmp_path / "s.npy", np.ones((4, 3)))
    _write(tmp_path / "lab.txt", "x\nx\nx\nx\n")
    with pytest.raises(BadSeriesError, match=r"s\.npy: every series has the label 'x'"):
        load_series_data(tmp_path / "s.npy", labels=tmp_path / "lab.txt")


def test_test_label_absent_from_train_names_test_file_and_line(tmp_path):
    folder = tmp_path / "Two"
    _write(folder / "Two_TRAIN.tsv", "1\t0.1\t0.2\n2\t0.3\t0.4\n")
    _write(folder / "Two_TEST.tsv", "1\t0.1\t0.2\n3\t0.5\t0.6\n")
    with pytest.raises(BadSeriesError, match=r"Two_TEST\.tsv:2: label '3' is not a label of the"):
        load_series_data(folder)


def test_missing_test_sibling_and_folder_without_sets(tmp_path):
    train = _write(tmp_path / "A" / "A_TRAIN.tsv", "1\t0.1\n2\t0.2\n")
    with pytest.raises(FileNotFoundError, match=r"A_TEST\.tsv: missing"):
        load_series_data(train)
    (tmp_path / "B").mkdir()
    with pytest.raises(
        BadSeriesError, match=r"B: expected one <Name>_TRAIN\.tsv or \.ts \(found none"
    ):
        load_series_data(tmp_path / "B")
    with pytest.raises(FileNotFoundError, match=r"nope: no such file or folder"):
        load_series_data(tmp_path / "nope")


def test_label_options_that_do_not_apply_are_refused(tmp_path):
    f = _write(tmp_path / "A" / "A_TRAIN.tsv", "1\t0.1\n2\t0.2\n")
    with pytest.raises(ValueError, match=r"carries its own labels; --labels labels a \.npy"):
        load_series_data(f, labels=tmp_path / "lab.txt")
    with pytest.raises(ValueError, match=r"--label-pattern labels files by their names"):
        load_series_data(f, label_pattern="^(\\d+)_")


# ---- NumPy files: never unpickled --------------------------------------------------------------


class _Trap:
    """Unpickling this creates `path`: proof that a pickle ran."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_npy_object_array_is_refused_and_never_unpickled(tmp_path):
    trap = tmp_path / "unpickled"
    np.save(tmp_path / "o.npy", np.array([_Trap(trap), 1], dtype=object), allow_pickle=True)
    with pytest.raises(BadSeriesError, match=r"o\.npy: holds Python objects.*never unpickled"):
        read_arrays(tmp_path / "o.npy")
    np.savez(tmp_path / "o.npz", x=np.ones((2, 3)), y=np.array([_Trap(trap), 1], dtype=object))
    with pytest.raises(BadSeriesError, match=r"o\.npz\[y\]: holds Python objects"):
        read_arrays(tmp_path / "o.npz")
    (tmp_path / "p.npy").write_bytes(pickle.dumps(_Trap(trap)))  # a pickle named .npy
    with pytest.raises(BadSeriesError, match=r"p\.npy: not a NumPy array"):
        read_arrays(tmp_path / "p.npy")
    assert not trap.exists()


def test_npy_header_claiming_a_huge_shape_is_refused_before_allocating(tmp_path):
    f = tmp_path / "big.npy"
    np.save(f, np.zeros((2, 3), dtype=np.float32))
    raw = f.read_bytes().replace(b"(2, 3)", b"(99999999, 99999)")  # 40 TB claimed, 24 B held
    f.write_bytes(raw)
    with pytest.raises(
        BadSeriesError, match=r"big\.npy: the header claims shape \(99999999, 99999\)"
    ):
        read_arrays(f)


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"a": np.ones((2, 3))}, r"no array named x, X or data \(it holds \['a'\]\)"),
        ({"x": np.ones(3)}, r"shape \(3,\); expected \(N, T\)"),
        ({"x": np.array(["a", "b"])}, r"dtype <U1; series are numbers"),
        ({"x": np.ones((2, 3)), "y": np.array([1, 2, 3])}, r"y has shape \(3,\); expected \(2,\)"),
        ({"x": np.ones((2, 3)), "y": np.array([0.5, 1])}, r"y holds non-whole or NaN numbers"),
    ],
    ids=["no_x", "one_dimensional", "strings", "y_length", "float_labels"],
)
def test_npz_with_wrong_arrays(tmp_path, arrays, expected):
    np.savez(tmp_path / "w.npz", **arrays)
    with pytest.raises(BadSeriesError, match=expected):
        read_arrays(tmp_path / "w.npz")


def test_npz_that_is_not_a_zip(tmp_path):
    f = _write(tmp_path / "z.npz", b"not a zip at all")
    with pytest.raises(BadSeriesError, match=r"z\.npz: not a \.npz \(zip\) file"):
        read_arrays(f)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\nb\na\n", r"lab\.txt: 3 labels, but .*s\.npy holds 4 series"),
        ("0,a\n1,b\n1,a\n3,b\n", r"lab\.txt:3: row 1 labeled again \(line 2\)"),
        ("0,a\n1,b\n3,b\n", r"lab\.txt: 1 of the 4 series .* have no label \(rows 2\)"),
        ("index,label\n0,a\n9,b\n", r"lab\.txt:3: index 9, but .*s\.npy holds rows 0\.\.3"),
        ("0,a\n1\n", r"lab\.txt:2: expected index,label"),
    ],
    ids=["count", "duplicate_index", "missing_index", "index_out_of_range", "one_column"],
)
def test_labels_file_for_arrays(tmp_path, text, expected):
    np.save(tmp_path / "s.npy", np.arange(12.0).reshape(4, 3))
    _write(tmp_path / "lab.txt", text)
    with pytest.raises(BadSeriesError, match=expected):
        load_series_data(tmp_path / "s.npy", labels=tmp_path / "lab.txt")


# ---- UCI HAR ---------------------------------------------------------------------------------


def _har(tmp_path: Path, rows: int = 4) -> Path:
    root = tmp_path / "HAR"
    _write(root / "activity_labels.txt", "1 WALKING\n2 LAYING\n")
    _write(root / "train" / "y_train.txt", "1\n2\n" * (rows // 2))
    _write(root / "train" / "subject_train.txt", "1\n" * rows)
    for name in HAR_CHANNELS:
        _write(root / "train" / "Inertial Signals" / f"{name}_train.txt", "0.1 0.2 0.3\n" * rows)
    return root


def test_har_file_with_another_row_count_is_named(tmp_path):
    root = _har(tmp_path)
    _write(root / "train" / "Inertial Signals" / "body_gyro_y_train.txt", "0.1 0.2 0.3\n" * 3)
    with pytest.raises(
        BadSeriesError, match=r"body_gyro_y_train\.txt: 3 rows, but .*y_train\.txt has 4"
    ):
        read_har(root, "train")


def test_har_bad_lines_name_file_and_line(tmp_path):
    root = _har(tmp_path)
    signals = root / "train" / "Inertial Signals"
    _write(signals / "total_acc_z_train.txt", "0.1 0.2 0.3\n0.1 0.2\n0.1 0.2 0.3\n0.1 0.2 0.3\n")
    with pytest.raises(
        BadSeriesError, match=r"total_acc_z_train\.txt:2: 2 values, but line 1 has 3"
    ):
        read_har(root, "train")
    _write(signals / "total_acc_z_train.txt", "0.1 0.2 0.3\n" * 3 + "0.1 x 0.3\n")
    with pytest.raises(BadSeriesError, match=r"total_acc_z_train\.txt:4: value 2 is 'x'"):
        read_har(root, "train")
    _write(root / "train" / "y_train.txt", "1\n2\n7\n1\n")
    with pytest.raises(
        BadSeriesError, match=r"y_train\.txt:3: activity 7 is not in .*activity_labels"
    ):
        read_har(root, "train")


def test_har_missing_channel_file_is_named(tmp_path):
    root = _har(tmp_path)
    (root / "train" / "Inertial Signals" / "total_acc_x_train.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"total_acc_x_train\.txt: missing"):
        read_har(root, "train")
