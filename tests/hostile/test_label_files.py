"""Hostile and careless labels files and label patterns for a flat image folder (`--labels`,
`--label-pattern`, `data/labels.py`): each builds the bad input in tmp_path and expects a clear
error naming the file (and line) and the fix, with long lists cut to the first 5 and a count."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image

from selfsup.data import BadImageError, load_image_data, load_image_folder
from selfsup.data.stream import ImageFiles


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 20, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def flat(tmp_path) -> Path:
    root = tmp_path / "flat"
    root.mkdir()
    for name in ("a.png", "b.png"):
        (root / name).write_bytes(_png())
    return root


def _load(root: Path, labels: Path):
    return load_image_folder(root, labels=labels, cache_dir=root.parent / "cache")


def test_non_utf8_labels_file_names_file_and_line(flat, tmp_path):
    """A Latin-1 labels file: an error, not a replaced character (a label that differs)."""
    labels = tmp_path / "lab.csv"
    labels.write_bytes(b"a.png,cat\nb.png,caf\xe9\n")
    with pytest.raises(BadImageError, match=r"lab\.csv:2: not UTF-8.*iconv"):
        _load(flat, labels)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a.png,cat\nb.png,dog,extra\n", r"lab\.csv:2: 3 columns, expected 2: file,label"),
        ("a.png,cat\nb.png\n", r"lab\.csv:2: 1 column, expected 2: file,label \(got b\.png\)"),
        ("a.png,cat\nb.png,\n", r"lab\.csv:2: empty file or label"),
        ('a.png,cat\n"b.png,dog\n', r"lab\.csv:2: unexpected end of data.*\"a,b\.png\",cat"),
        ('a.png,cat\n"b".png,dog\n', r"lab\.csv:2: ',' expected after '\"'"),
    ],
    ids=["three_columns", "one_column", "empty_label", "unclosed_quote", "stray_quote"],
)
def test_malformed_row_names_file_and_line(flat, tmp_path, text, expected):
    labels = tmp_path / "lab.csv"
    labels.write_text(text)
    with pytest.raises(BadImageError, match=expected):
        _load(flat, labels)


@pytest.mark.parametrize("text", ["", "\n \n", "file,label\n"])
def test_labels_file_without_rows_says_so(flat, tmp_path, text):
    labels = tmp_path / "lab.csv"
    labels.write_text(text)
    with pytest.raises(BadImageError, match=r"lab\.csv: no rows; expected lines file,label"):
        _load(flat, labels)


def test_labels_file_that_is_a_folder_or_missing(flat, tmp_path):
    (tmp_path / "labdir").mkdir()
    with pytest.raises(BadImageError, match=r"labdir: a folder, not a labels file"):
        _load(flat, tmp_path / "labdir")
    with pytest.raises(FileNotFoundError, match=r"nope\.csv: no such labels file"):
        ImageFiles.from_folder(flat, labels=tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"^\d+_", r"'\^\\\\d\+_' has 0 capturing groups, expected 1: put parentheses"),
        (r"^(\d+)_(\w+)", r"has 2 capturing groups.*\(\?P<label>\.\.\.\)"),
        (r"^(\d+_", r"'\^\(\\\\d\+_' is not a valid regular expression \(missing \)"),
    ],
    ids=["no_group", "two_groups", "invalid"],
)
def test_unusable_label_pattern_names_the_pattern_and_the_fix(flat, pattern, expected):
    with pytest.raises(ValueError, match=expected):
        ImageFiles.from_folder(flat, label_pattern=pattern)


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "../outside.png", "/ABS/outside.png", "../flat/a.png"]
)
def test_names_outside_the_folder_are_unknown_names_never_read(flat, tmp_path, name):
    """A labels file cannot reach outside the folder: a path out of it (even to a real image
    beside it, even one leading back in) is a name of no file, never opened."""
    (tmp_path / "outside.png").write_bytes(_png())
    name = name.replace("/ABS", str(tmp_path))
    labels = tmp_path / "lab.csv"
    labels.write_text(f"a.png,x\nb.png,y\n{name},z\n")
    with pytest.raises(BadImageError) as err:
        _load(flat, labels)
    shown = name if len(name) <= 80 else name[:80] + "..."  # long names are cut (tmp paths)
    assert str(err.value) == (
        f"{labels}: 1 name is not a file of {flat}: {shown} (check the folder or the names)."
    )


def test_50000_unknown_names_give_a_short_message_with_the_count(flat, tmp_path):
    labels = tmp_path / "lab.csv"
    rows = "".join(f"missing_{i:05d}.png,c{i % 10}\n" for i in range(50_000))
    labels.write_text("file,label\na.png,x\nb.png,y\n" + rows)
    start = time.perf_counter()
    with pytest.raises(BadImageError) as err:
        load_image_data(str(flat), labels=labels)
    message = str(err.value)
    assert time.perf_counter() - start < 5
    assert message == (
        f"{labels}: 50000 names are not files of {flat}: missing_00000.png, missing_00001.png, "
        "missing_00002.png, missing_00003.png, missing_00004.png, ... (check the folder or the "
        "names)."
    )


def test_control_characters_and_huge_names_are_escaped_and_cut(flat, tmp_path):
    """A name that would drive the terminal (ESC) or flood it (100 kB) is shown escaped and
    cut to 80 characters."""
    labels = tmp_path / "lab.csv"
    labels.write_text(f"a.png,x\nb.png,y\n\x1b[2J.png,x\n{'n' * 100_000}.png,x\n")
    with pytest.raises(BadImageError) as err:
        _load(flat, labels)
    message = str(err.value)
    assert "\x1b" not in message and "'\\x1b[2J.png'" in message
    assert f"{'n' * 80}..." in message and len(message) < 400


def test_field_over_the_csv_limit_names_file_and_line(flat, tmp_path):
    """csv refuses a field over 131,072 characters: its csv.Error becomes a named line."""
    labels = tmp_path / "lab.csv"
    labels.write_text(f'a.png,x\nb.png,y\n"{"n" * 200_000}",x\n')
    with pytest.raises(BadImageError, match=r"lab\.csv:3: field larger than field limit"):
        _load(flat, labels)
