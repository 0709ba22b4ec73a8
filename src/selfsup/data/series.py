"""Time series and sensor files -> float32 series (N, C, T), NaN-padded, in memory.

A raw sample is a float32 tensor (C, T). Series of different lengths are padded with NaN at the
end and missing values are NaN, TS2Vec's convention (Yue et al. 2022, `utils.pad_nan_to_target`);
`series_lengths` gives the steps before the padding. Formats, as their users download them:

  UCR .tsv   UCR 2018 archive (Dau et al. 2019): `label<TAB>v1<TAB>v2...`, one series a line,
             NaN (or ?) for a missing value; every row has the first row's column count (the
             archive pads a shorter series with trailing NaN)          -> `read_ucr_tsv`
  .ts        sktime / UEA (Bagnall et al. 2018): @-header lines, '#' comments, `@data`, then one
             series a line, channels split by ':', values by ',', the label after the last ':'
             when `@classLabel true ...`; '?' is missing                -> `read_ts`
  UCI HAR    Anguita et al. 2013, the original folder: `{split}/Inertial Signals/` nine files of
             one 128-step window a line, `y_{split}.txt`, `subject_{split}.txt`, and
             `activity_labels.txt`                                       -> `read_har`
  NumPy      `.npy` (N, T) or (N, C, T); `.npz` with `x` (or `X`, `data`) and optional `y`; never
             unpickled: an object array is refused from its header        -> `read_arrays`

`load_series_data(spec)` turns a UCR/UEA folder or `_TRAIN` / `_TEST` file, the UCI HAR folder,
a lone `.ts` / `.tsv` or an array file into (train, test) `SeriesDataset`s: classes sorted
(numerically when every label is a number), shared by both splits; a set without a test split
is split 80/20 per class with seed 0 (as image folders are, `memory.split_indices`); values
normalized by the benchmark's own protocol (`protocol_normalization`, recorded in
`dataset.normalization`); `sources` are `file:line` (for arrays `file:row`, 0-based).

Errors: a file that cannot be used is a `BadSeriesError` (a ValueError) naming the file, the line
(for text) and the fix; a missing file or folder is a FileNotFoundError naming it.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch
from numpy.lib import format as npy_format

from selfsup.data.memory import InMemoryDataset, split_indices

# UCR sets the archive leaves as recorded (not z-normalized per series): TS2Vec standardizes
# these with the train split's global mean and std and leaves every other UCR set as it is
# (github.com/yuezhihan/ts2vec, datautils.py, load_UCR, commit b0088e1). Ours among them: Crop,
# PickupGestureWiimoteZ, PLAID (checked on the files: the others' series have mean 0, std ~1).
TS2VEC_UNNORMALIZED_UCR = frozenset(
    {
        "AllGestureWiimoteX", "AllGestureWiimoteY", "AllGestureWiimoteZ", "BME", "Chinatown",
        "Crop", "EOGHorizontalSignal", "EOGVerticalSignal", "Fungi", "GestureMidAirD1",
        "GestureMidAirD2", "GestureMidAirD3", "GesturePebbleZ1", "GesturePebbleZ2",
        "GunPointAgeSpan", "GunPointMaleVersusFemale", "GunPointOldVersusYoung", "HouseTwenty",
        "InsectEPGRegularTrain", "InsectEPGSmallTrain", "MelbournePedestrian",
        "PickupGestureWiimoteZ", "PigAirwayPressure", "PigArtPressure", "PigCVP", "PLAID",
        "PowerCons", "Rock", "SemgHandGenderCh2", "SemgHandMovementCh2", "SemgHandSubjectCh2",
        "ShakeGestureWiimoteZ", "SmoothSubspace", "UMD",
    }
)  # fmt: skip
HAR_CHANNELS = tuple(f"{s}_{a}" for s in ("body_acc", "body_gyro", "total_acc") for a in "xyz")
NORMALIZATIONS = ("none", "global", "channel")
SPEC_FORMS = (
    "a UCR/UEA folder holding <Name>_TRAIN.tsv|.ts and _TEST, a _TRAIN or _TEST file, the UCI HAR "
    "folder (train/Inertial Signals), a lone .ts/.tsv, or a .npy/.npz"
)
TSV_FORM = "UCR .tsv lines: label<TAB>value<TAB>value..."
TS_FORM = "a .ts file: @-header lines (@problemName ... @classLabel), then @data, then series"
X_KEYS, Y_KEYS = ("x", "X", "data"), ("y", "Y")
OBJECTS_FIX = (
    "save numbers instead: np.save(path, np.asarray(x, dtype=np.float32)), series of different "
    "lengths padded with NaN at the end"
)
SHOWN = 5  # rows an error lists before giving the count


class BadSeriesError(ValueError):
    """A series file that cannot be used; the message names the file (and line) and the fix."""


@dataclass
class Normalization:
    """How a set's values were scaled: x' = (x - mean[c]) / std[c] per channel c, NaN kept.

    kind: "none" | "global" (one mean/std for every channel) | "channel"; mean, std: (C,)
    statistics of the train split; reason: the protocol followed, with its source.
    """

    kind: str
    mean: list[float]
    std: list[float]
    reason: str = ""

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, C, T) float -> (N, C, T) float32, computed in float64 as TS2Vec does: in float32
        the rounded mean of an offset channel (HAR's total_acc, ~1 g with a small spread) would
        shift every value by up to 1e-4 std."""
        mean = torch.tensor(self.mean, dtype=torch.float64)[:, None]
        std = torch.tensor(self.std, dtype=torch.float64)[:, None]
        return x.double().sub_(mean).div_(std).float()

    def __str__(self) -> str:
        """One log line: the kind and the protocol followed (statistics in `to_dict`)."""
        return f"{self.kind} ({self.reason})" if self.reason else self.kind

    def to_dict(self) -> dict[str, object]:
        """JSON-able record for the run's log and config."""
        return {"kind": self.kind, "mean": self.mean, "std": self.std, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: object, where: str) -> Normalization:
        """The record `to_dict` wrote (a run folder's normalization.json); anything else is a
        BadSeriesError naming `where`."""
        ok = isinstance(d, dict) and d.get("kind") in NORMALIZATIONS
        stats = [d.get(k) for k in ("mean", "std")] if ok else []
        ok = ok and all(isinstance(v, list) and v for v in stats) and len(stats[0]) == len(stats[1])
        ok = ok and all(isinstance(x, int | float) and math.isfinite(x) for v in stats for x in v)
        if not ok or min(stats[1]) <= 0:
            raise BadSeriesError(
                f"{where}: not a normalization record (kind, per-channel mean and std > 0); "
                "rewrite it by training again, or restore the run's own file."
            )
        return cls(d["kind"], [float(x) for x in stats[0]], [float(x) for x in stats[1]],
                   str(d.get("reason", "")))  # fmt: skip


@dataclass
class SeriesDataset(InMemoryDataset):
    """An `InMemoryDataset` of series: inputs (N, C, T) float32, NaN-padded, plus the
    normalization already applied to them (None: raw values)."""

    normalization: Normalization | None = None

    def subset(self, indices: torch.Tensor, name: str | None = None) -> SeriesDataset:
        """Rows `indices` (N',) long, keeping the normalization record."""
        base = super().subset(indices, name)
        return SeriesDataset(
            base.inputs, base.targets, base.classes, base.name, base.sources,
            normalization=self.normalization,
        )  # fmt: skip


@dataclass
class _Series:
    """One file's series before they become a dataset: x (N, C, T) float32 NaN-padded, labels
    (N,) strings or None, and each series' 1-based line (text) or 0-based row (arrays)."""

    path: Path
    x: np.ndarray
    labels: list[str] | None
    lines: list[int]
    rows: bool = False

    def where(self, i: int) -> str:
        """Series i's place for a message: `file:line`, or `file row r` for an array."""
        return f"{self.path} row {self.lines[i]}" if self.rows else f"{self.path}:{self.lines[i]}"

    def take(self, idx: torch.Tensor) -> _Series:
        """Rows `idx` (N',) long."""
        keep = idx.tolist()
        labels = None if self.labels is None else [self.labels[i] for i in keep]
        lines = [self.lines[i] for i in keep]
        return _Series(self.path, self.x[keep], labels, lines, self.rows)

    def checked(self) -> _Series:
        """Self, or BadSeriesError naming the first series with no value or an infinite one."""
        observed = ~np.isnan(self.x).reshape(len(self.x), -1)
        empty = np.flatnonzero(~observed.any(axis=1))
        if empty.size:
            raise BadSeriesError(
                f"{self.where(int(empty[0]))}: every value of this series is missing (NaN or ?); "
                f"remove it or give its values ({empty.size} such series in the file)."
            )
        infinite = np.flatnonzero(np.isinf(self.x).reshape(len(self.x), -1).any(axis=1))
        if infinite.size:
            raise BadSeriesError(
                f"{self.where(int(infinite[0]))}: an infinite value (inf, or a number beyond "
                "float32); write NaN or ? for a value that is missing."
            )
        return self


# ---- text files ------------------------------------------------------------------------------


def _text_lines(path: Path, form: str) -> list[tuple[int, str]]:
    """(1-based line number, line with trailing white space removed) of each non-blank line.

    FileNotFoundError for a missing file; BadSeriesError for a folder, bytes that are not UTF-8
    (file:line: a replacement character would turn a value or label into another) and a file
    without lines (`form` says what one holds)."""
    if path.is_dir():
        raise BadSeriesError(f"{path}: a folder, not a file; expected {form}.")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; expected {form}.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")  # a spreadsheet's byte-order mark
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise BadSeriesError(
            f"{path}:{line}: not UTF-8 ({e.reason} at byte {e.start}); re-encode it, e.g. "
            f"iconv -f latin1 -t utf-8 {path.name} > fixed && mv fixed {path.name}"
        ) from e
    # split("\n"), not splitlines(): form feeds and U+2028 would shift every line number after.
    lines = [(n, s.rstrip()) for n, s in enumerate(text.split("\n"), 1) if s.strip()]
    if not lines:
        raise BadSeriesError(f"{path}: empty file (no lines); expected {form}.")
    return lines


def _shown(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _floats(cells: list[str], where: str, what: str) -> np.ndarray:
    """cells (K,) -> (K,) float64; '?' and NaN are missing. BadSeriesError naming `where` and
    the first cell that is not a number."""
    try:
        return np.array(cells, dtype=np.float64)  # the fast path: no '?', nothing malformed
    except ValueError:
        cells = ["nan" if c.strip() == "?" else c for c in cells]
    for k, cell in enumerate(cells, 1):
        try:
            float(cell)
        except ValueError:
            value = "empty" if not cell.strip() else f"{_shown(cell.strip())}, not a number"
            raise BadSeriesError(
                f"{where}: {what}value {k} is {value}; write a number, or ? or NaN for a "
                "missing value."
            ) from None
    return np.array(cells, dtype=np.float64)


def _padded(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Per series, per channel values -> (N, C, T_max) float32, NaN after each channel's end."""
    length = max(len(ch) for row in rows for ch in row)
    x = np.full((len(rows), len(rows[0]), length), np.nan, dtype=np.float32)
    for i, row in enumerate(rows):
        for c, ch in enumerate(row):
            x[i, c, : len(ch)] = ch
    return x


# ---- UCR .tsv ----------------------------------------------------------------------------------


def read_ucr_tsv(path: str | Path) -> tuple[torch.Tensor, list[str]]:
    """A UCR 2018 .tsv -> (x (N, 1, T) float32, labels (N,) strings); NaN where missing."""
    s = _parse_tsv(Path(path)).checked()
    return torch.from_numpy(s.x), s.labels or []


def _parse_tsv(path: Path) -> _Series:
    values, labels, lines = [], [], []
    first: tuple[int, int] | None = None  # (line, columns) of the first row
    for n, line in _text_lines(path, TSV_FORM):
        cells = line.split("\t")
        if first is None:
            first = (n, len(cells))
            if len(cells) < 2:
                raise BadSeriesError(
                    f"{path}:{n}: no tab after the label; expected {TSV_FORM} (a comma- or "
                    "space-separated file: convert the separators to tabs)."
                )
        elif len(cells) != first[1]:
            raise BadSeriesError(
                f"{path}:{n}: {len(cells)} columns, but line {first[0]} has {first[1]}; every "
                "UCR .tsv row has the same number of columns (pad a shorter series with NaN at "
                "the end, one NaN per missing step)."
            )
        labels.append(_label(cells[0], f"{path}:{n}"))
        values.append(_floats(cells[1:], f"{path}:{n}", ""))
        lines.append(n)
    return _Series(path, np.stack(values).astype(np.float32)[:, None, :], labels, lines)


def _label(cell: str, where: str) -> str:
    label = cell.strip()
    if not label:
        raise BadSeriesError(f"{where}: empty label; every series of a labeled file has one.")
    return label


# ---- .ts (sktime / UEA) ------------------------------------------------------------------------


@dataclass
class _TsHeader:
    """What a .ts header declares; None where it says nothing."""

    dims: int | None = None
    univariate: bool | None = None
    equal_length: bool | None = None
    series_length: int | None = None
    labeled: bool = False
    classes: list[str] | None = None


def read_ts(path: str | Path) -> tuple[torch.Tensor, list[str] | None]:
    """A .ts file -> (x (N, C, T_max) float32 NaN-padded, labels (N,) or None without
    `@classLabel true`)."""
    s = _parse_ts(Path(path)).checked()
    return torch.from_numpy(s.x), s.labels


def _parse_ts(path: Path) -> _Series:
    lines = _text_lines(path, TS_FORM)
    header, start = _ts_header(path, lines)
    rows, labels, numbers = [], [], []
    for n, line in lines[start:]:
        if line.lstrip().startswith("#"):
            continue
        channels, label = _ts_row(f"{path}:{n}", line, header)
        rows.append(channels)
        labels.append(label)
        numbers.append(n)
    if not rows:
        raise BadSeriesError(f"{path}: no series after @data; expected one series a line.")
    _ts_lengths(path, header, rows, numbers)
    return _Series(path, _padded(rows), labels if header.labeled else None, numbers)


def _ts_header(path: Path, lines: list[tuple[int, str]]) -> tuple[_TsHeader, int]:
    """(the header, index in `lines` of the first line after @data)."""
    header = _TsHeader()
    for k, (n, line) in enumerate(lines):
        if line.lstrip().startswith("#"):
            continue
        if not line.startswith("@"):
            raise BadSeriesError(
                f"{path}:{n}: a series before @data; expected {TS_FORM} (add the header, or a "
                "'#' before a comment line)."
            )
        tag, *args = line[1:].split() or [""]
        if tag.lower() == "data":
            _ts_dimensions(f"{path}:{n}", header)
            return header, k + 1
        _ts_tag(header, tag.lower(), args, f"{path}:{n}")
    raise BadSeriesError(
        f"{path}: no @data line; expected {TS_FORM} (add a line '@data' before the first series)."
    )


def _ts_tag(h: _TsHeader, tag: str, args: list[str], where: str) -> None:
    """Record one header line `@tag args` in `h`; BadSeriesError for an unknown tag or value."""
    match tag:
        case "problemname":
            pass
        case "missing":
            _flag(args, where, tag)  # '?' is read as missing either way
        case "timestamps":
            if _flag(args, where, tag):
                raise _timestamps_error(where)
        case "univariate":
            h.univariate = _flag(args, where, tag)
        case "dimension" | "dimensions":
            h.dims = _positive(args, where, tag)
        case "equallength":
            h.equal_length = _flag(args, where, tag)
        case "serieslength":
            h.series_length = _positive(args, where, tag)
        case "classlabel":
            h.labeled, h.classes = _class_label(args, where)
        case "targetlabel":
            if _flag(args, where, tag):
                raise BadSeriesError(
                    f"{where}: @targetLabel true (regression targets) is not supported; series "
                    "here are classified: use @classLabel true <labels>, or @targetLabel false."
                )
        case _:
            raise BadSeriesError(
                f"{where}: unknown header line @{tag}; a .ts header has @problemName, "
                "@timeStamps, @missing, @univariate, @dimensions, @equalLength, @seriesLength, "
                "@classLabel, @targetLabel and @data (check its spelling, or start a comment "
                "with #)."
            )


def _timestamps_error(where: str) -> BadSeriesError:
    return BadSeriesError(
        f"{where}: the timestamped .ts format ('@timeStamps true', values written as "
        "(time,value)) is not supported; resample the series to regular steps and write plain "
        "comma-separated values with '@timeStamps false'."
    )


def _flag(args: list[str], where: str, tag: str) -> bool:
    if len(args) != 1 or args[0].lower() not in ("true", "false"):
        raise BadSeriesError(f"{where}: @{tag} takes true or false, got {_shown(' '.join(args))}.")
    return args[0].lower() == "true"


def _positive(args: list[str], where: str, tag: str) -> int:
    if len(args) != 1 or not args[0].isdigit() or int(args[0]) < 1:
        raise BadSeriesError(
            f"{where}: @{tag} takes one whole number >= 1, got {_shown(' '.join(args))}."
        )
    return int(args[0])


def _class_label(args: list[str], where: str) -> tuple[bool, list[str] | None]:
    labeled = _flag(args[:1], where, "classLabel")
    if labeled and len(args) < 2:
        raise BadSeriesError(
            f"{where}: @classLabel true lists no labels; write them after it, e.g. "
            "'@classLabel true 1 2 3'."
        )
    return labeled, args[1:] if labeled else None


def _ts_dimensions(where: str, h: _TsHeader) -> None:
    """Settle h.dims from @univariate / @dimensions (None: the first series decides)."""
    if h.univariate and h.dims not in (None, 1):
        raise BadSeriesError(
            f"{where}: the header says @univariate true but @dimensions {h.dims}; keep one."
        )
    if h.univariate:
        h.dims = 1


def _ts_row(where: str, line: str, h: _TsHeader) -> tuple[list[np.ndarray], str | None]:
    """One series line -> (C channels (T_c,) float64, label or None)."""
    parts = line.split(":")
    if h.dims is None:  # neither @univariate nor @dimensions: the first series decides
        h.dims = max(len(parts) - h.labeled, 1)
    if len(parts) != h.dims + h.labeled:
        label = " + 1 label (@classLabel true)" if h.labeled else " (no label: @classLabel false)"
        raise BadSeriesError(
            f"{where}: {len(parts)} ':'-separated parts, expected {h.dims} "
            f"channel{'s' if h.dims > 1 else ''}{label}; "
            "fix the line, or the header's @dimensions / @univariate / @classLabel."
        )
    label = _label(parts[-1], where) if h.labeled else None
    if h.classes is not None and label not in h.classes:
        raise BadSeriesError(
            f"{where}: label {_shown(label or '')} is not among @classLabel's labels "
            f"({' '.join(h.classes)}); add it to the @classLabel line or fix the label."
        )
    if any("(" in p for p in parts[: h.dims]):
        raise _timestamps_error(where)
    channels = [
        _floats(p.split(","), where, f"channel {c} " if h.dims > 1 else "")
        for c, p in enumerate(parts[: h.dims], 1)
    ]
    return channels, label


def _ts_lengths(path: Path, h: _TsHeader, rows: list[list[np.ndarray]], lines: list[int]) -> None:
    """BadSeriesError naming the first line whose length breaks @seriesLength, or
    @equalLength true (against the first series)."""
    if h.equal_length is False or (h.series_length is None and not h.equal_length):
        return
    expected = h.series_length or len(rows[0][0])
    for row, n in zip(rows, lines, strict=True):
        wrong = next((len(ch) for ch in row if len(ch) != expected), None)
        if wrong is not None and h.series_length is not None:
            raise BadSeriesError(
                f"{path}:{n}: {wrong} values, but the header says @seriesLength {expected}; fix "
                "the series, or the header (@seriesLength, or '@equalLength false' for series "
                "of different lengths)."
            )
        if wrong is not None:
            raise BadSeriesError(
                f"{path}:{n}: {wrong} values, but line {lines[0]} has {expected} and the header "
                "says @equalLength true; write '@equalLength false' (shorter series are padded "
                "with NaN) or fix the series."
            )


# ---- UCI HAR -----------------------------------------------------------------------------------


def read_har(root: str | Path, split: str) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """The UCI HAR folder's split "train" | "test" -> (x (N, 9, 128) float32 in HAR_CHANNELS'
    order, labels (N,) activity names, subjects (N,) long)."""
    s, subjects = _read_har(Path(root), split)
    return torch.from_numpy(s.x), s.labels or [], torch.from_numpy(subjects)


def _read_har(root: Path, split: str) -> tuple[_Series, np.ndarray]:
    if split not in ("train", "test"):
        raise ValueError(f"UCI HAR split {split!r}: expected 'train' or 'test'.")
    folder = root / split
    names = _activity_names(root / "activity_labels.txt")
    y_path = folder / f"y_{split}.txt"
    y, lines = _int_column(y_path)
    for v, n in zip(y.tolist(), lines, strict=True):
        if v not in names:
            raise BadSeriesError(
                f"{y_path}:{n}: activity {v} is not in {root / 'activity_labels.txt'} "
                f"({', '.join(map(str, names))}); fix the label."
            )
    subjects = _har_rows(folder / f"subject_{split}.txt", y_path, len(y))
    files = [folder / "Inertial Signals" / f"{c}_{split}.txt" for c in HAR_CHANNELS]
    channels = [_har_channel(f, y_path, len(y)) for f in files]
    for f, ch in zip(files, channels, strict=True):
        if ch.shape[1] != channels[0].shape[1]:
            raise BadSeriesError(
                f"{f}: windows of {ch.shape[1]} steps, but {files[0]} has {channels[0].shape[1]}; "
                "the nine channels of a window have the same length."
            )
    x = np.stack(channels, axis=1)  # (N, 9, T)
    s = _Series(files[0], x, [names[v] for v in y.tolist()], [n + 1 for n in range(len(y))])
    return s.checked(), subjects


def _activity_names(path: Path) -> dict[int, str]:
    """activity_labels.txt: `id NAME` a line -> {id: NAME}."""
    names = {}
    for n, line in _text_lines(path, "lines 'id NAME', e.g. '1 WALKING'"):
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise BadSeriesError(f"{path}:{n}: expected 'id NAME', e.g. '1 WALKING'.")
        names[int(parts[0])] = parts[1].strip()
    return names


def _int_column(path: Path) -> tuple[np.ndarray, list[int]]:
    """A file of one whole number a line -> ((N,) int64, their line numbers)."""
    values, lines = [], []
    for n, line in _text_lines(path, "one whole number a line"):
        try:
            values.append(int(line))
        except ValueError:
            raise BadSeriesError(
                f"{path}:{n}: {_shown(line.strip())} is not a whole number; expected one a line."
            ) from None
        lines.append(n)
    return np.array(values, dtype=np.int64), lines


def _har_rows(path: Path, y_path: Path, n: int) -> np.ndarray:
    values, _ = _int_column(path)
    _same_rows(path, len(values), y_path, n)
    return values


def _same_rows(path: Path, rows: int, y_path: Path, n: int) -> None:
    if rows != n:
        raise BadSeriesError(
            f"{path}: {rows} rows, but {y_path} has {n}; every file of a UCI HAR split holds one "
            "line per window, in the same order (restore the file from the original archive)."
        )


def _har_channel(path: Path, y_path: Path, n: int) -> np.ndarray:
    """One Inertial Signals file -> (N, T) float32: numpy's C parser, and on any failure our
    line-by-line one, which names the file:line at fault."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; a UCI HAR split's Inertial Signals folder holds "
            f"{', '.join(HAR_CHANNELS)} (_train/_test.txt)."
        )
    try:
        with warnings.catch_warnings(action="error"):  # "Empty input file" is a warning
            x = np.loadtxt(path, dtype=np.float32, ndmin=2, comments=None)
    except (ValueError, UserWarning):
        x = _whitespace_rows(path)
    _same_rows(path, len(x), y_path, n)
    return x


def _whitespace_rows(path: Path) -> np.ndarray:
    """Whitespace-separated numbers, the same count a line -> (N, T) float32."""
    rows, first = [], None
    for n, line in _text_lines(path, "one window a line: numbers separated by spaces"):
        cells = line.split()
        first = first or (n, len(cells))
        if len(cells) != first[1]:
            raise BadSeriesError(
                f"{path}:{n}: {len(cells)} values, but line {first[0]} has {first[1]}; each "
                "line is one window of the same number of steps."
            )
        rows.append(_floats(cells, f"{path}:{n}", ""))
    return np.stack(rows).astype(np.float32)


# ---- NumPy arrays ------------------------------------------------------------------------------


def read_arrays(path: str | Path) -> tuple[torch.Tensor, list[str] | None]:
    """A .npy (N, T) or (N, C, T), or a .npz with x (X, data) and optional y -> (x (N, C, T)
    float32, labels (N,) strings or None). Loaded with allow_pickle=False after checking each
    array's header: Python objects are refused, never unpickled."""
    s = _parse_arrays(Path(path)).checked()
    return torch.from_numpy(s.x), s.labels


def _parse_arrays(path: Path) -> _Series:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; expected a .npy or .npz of series.")
    if path.suffix == ".npy":
        x, y = _load_npy(path), None
    elif path.suffix == ".npz":
        x, y = _load_npz(path)
    else:
        raise BadSeriesError(f"{path}: expected a .npy or .npz file.")
    x = _as_series(x, path)
    labels = None if y is None else _label_strings(y, path, len(x))
    return _Series(path, x, labels, list(range(len(x))), rows=True)


def _array_header(fp: IO[bytes], where: str, size: int) -> None:
    """Check a .npy header before numpy reads the array: no Python objects (the pickle that
    allow_pickle=False would refuse, refused here with the fix), and a shape the `size` bytes can
    hold (a forged shape would otherwise be allocated first)."""
    try:
        version = npy_format.read_magic(fp)
        read = npy_format.read_array_header_1_0 if version == (1, 0) else None
        shape, _, dtype = (read or npy_format.read_array_header_2_0)(fp)
    except (ValueError, EOFError) as e:
        raise BadSeriesError(
            f"{where}: not a NumPy array ({e}); write one with numpy.save or numpy.savez."
        ) from e
    if dtype.hasobject:
        raise BadSeriesError(
            f"{where}: holds Python objects (dtype {dtype}), which are never unpickled here; "
            f"{OBJECTS_FIX}."
        )
    if math.prod(shape) * dtype.itemsize > size:
        raise BadSeriesError(
            f"{where}: the header claims shape {shape} of {dtype}, more than the file's {size} "
            "bytes hold; the file is truncated or not what it claims (write it again)."
        )


def _load_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as fp:
        _array_header(fp, str(path), path.stat().st_size)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise BadSeriesError(f"{path}: unreadable .npy ({e}); write it with numpy.save.") from e


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(x, y or None) of a .npz, each array's header checked first."""
    try:
        with zipfile.ZipFile(path) as z:
            members = {name.removesuffix(".npy"): z.getinfo(name) for name in z.namelist()}
            x_key = next((k for k in X_KEYS if k in members), None)
            if x_key is None:
                raise BadSeriesError(
                    f"{path}: no array named x, X or data (it holds {sorted(members)}); write "
                    "np.savez(path, x=series, y=labels)."
                )
            y_key = next((k for k in Y_KEYS if k in members), None)
            for key in (x_key, y_key) if y_key else (x_key,):
                with z.open(members[key]) as fp:
                    _array_header(fp, f"{path}[{key}]", members[key].file_size)
    except zipfile.BadZipFile as e:
        raise BadSeriesError(f"{path}: not a .npz (zip) file ({e}); write it with np.savez.") from e
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return arrays[x_key], None if y_key is None else arrays[y_key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:  # a truncated or bad member
        raise BadSeriesError(f"{path}: unreadable .npz ({e}); write it with np.savez.") from e


def _as_series(a: np.ndarray, path: Path) -> np.ndarray:
    """A numeric (N, T) or (N, C, T) array -> contiguous (N, C, T) float32."""
    if a.dtype.kind not in "biuf":
        raise BadSeriesError(f"{path}: dtype {a.dtype}; series are numbers (float or int).")
    if a.ndim not in (2, 3) or 0 in a.shape:
        raise BadSeriesError(
            f"{path}: shape {a.shape}; expected (N, T) univariate or (N, C, T) series, N, C, "
            "T >= 1 (shorter series padded with NaN at the end)."
        )
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused by checked()
        x = np.ascontiguousarray(a, dtype=np.float32)
    return x[:, None, :] if x.ndim == 2 else x


def _label_strings(y: np.ndarray, path: Path, n: int) -> list[str]:
    """A labels array (N,) of ints, whole floats or strings -> label strings."""
    if y.shape != (n,):
        raise BadSeriesError(f"{path}: y has shape {y.shape}; expected ({n},), one label a series.")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise BadSeriesError(f"{path}: y holds non-whole or NaN numbers; labels are classes.")
    if y.dtype.kind in "biuf":
        return [str(int(v)) for v in y.tolist()]
    if y.dtype.kind != "U":
        raise BadSeriesError(
            f"{path}: y has dtype {y.dtype}; labels are whole numbers or str (numpy 'U') strings."
        )
    labels = [v.strip() for v in y.tolist()]
    if "" in labels:
        raise BadSeriesError(f"{path}: y row {labels.index('')} is an empty label.")
    return labels


def _labels_file(path: Path, n: int, array: Path) -> list[str]:
    """A labels file for the `n` series of `array`: one label a line in row order, or CSV
    `index,label` (0-based row index; an `index,label` header is optional)."""
    form = "one label a line, or CSV lines index,label"
    lines = _text_lines(path, form)
    cells = _csv_cells(lines[0][1], f"{path}:{lines[0][0]}")
    is_header = len(cells) == 2 and cells[1].lower() == "label" and not cells[0].isdigit()
    if is_header or (len(cells) == 2 and cells[0].isdigit()):
        return _indexed_labels(path, lines[1:] if is_header else lines, n, array)
    if len(lines) != n:
        raise BadSeriesError(
            f"{path}: {len(lines)} labels, but {array} holds {n} series; write {form}."
        )
    return [line.strip() for _, line in lines]


def _csv_cells(line: str, where: str) -> list[str]:
    try:
        return [c.strip() for c in next(csv.reader([line], strict=True))]
    except csv.Error as e:
        raise BadSeriesError(f"{where}: {e}; expected index,label.") from e


def _indexed_labels(path: Path, lines: list[tuple[int, str]], n: int, array: Path) -> list[str]:
    """CSV rows index,label -> the label of each of the n rows, every row labeled once."""
    label_of: dict[int, tuple[str, int]] = {}
    for k, line in lines:
        cells = _csv_cells(line, f"{path}:{k}")
        if len(cells) != 2 or not cells[0].isdigit() or not cells[1]:
            raise BadSeriesError(f"{path}:{k}: expected index,label (got {_shown(line)}).")
        i = int(cells[0])
        if i >= n:
            raise BadSeriesError(f"{path}:{k}: index {i}, but {array} holds rows 0..{n - 1}.")
        if i in label_of:
            raise BadSeriesError(
                f"{path}:{k}: row {i} labeled again (line {label_of[i][1]}); keep one row each."
            )
        label_of[i] = (cells[1], k)
    missing = [i for i in range(n) if i not in label_of]
    if missing:
        raise BadSeriesError(
            f"{path}: {len(missing)} of the {n} series of {array} have no label (rows "
            f"{', '.join(map(str, missing[:SHOWN]))}{', ...' if len(missing) > SHOWN else ''}); "
            "add lines index,label for them."
        )
    return [label_of[i][0] for i in range(n)]


# ---- normalization -----------------------------------------------------------------------------


def protocol_normalization(name: str, archive: str) -> tuple[str, str]:
    """(kind, reason) the benchmark's protocol prescribes for set `name` of `archive`
    ("ucr" | "uea" | "har" | anything else: the user's own data)."""
    source = "TS2Vec, Yue et al. 2022, github.com/yuezhihan/ts2vec datautils.py"
    if archive == "ucr" and name in TS2VEC_UNNORMALIZED_UCR:
        return "global", (
            f"UCR set not z-normalized by the archive: one mean/std over the train split, NaN "
            f"ignored, keeping amplitude across series ({source}, load_UCR)"
        )
    if archive == "ucr":
        return (
            "none",
            f"UCR archive series are z-normalized per series already ({source}, load_UCR)",
        )
    if archive == "uea":
        return "channel", (
            f"per-channel mean/std of the train split, NaN ignored: sklearn StandardScaler fit "
            f"on the train split ({source}, load_UEA)"
        )
    if archive == "har":
        return "channel", (
            "per-channel mean/std of the train subjects, NaN ignored: the channels mix units "
            "(g, rad/s) and total_acc carries gravity; the rule TS2Vec applies to the UEA "
            f"multivariate sensor sets ({source}, load_UEA)"
        )
    return "channel", "own data, no archive protocol: per-channel mean/std of the train split"


def normalize_series(
    train: torch.Tensor, test: torch.Tensor | None, kind: str, reason: str = ""
) -> tuple[torch.Tensor, torch.Tensor | None, Normalization]:
    """train (N, C, T), test (M, C, T) or None -> both scaled with the train split's statistics
    (NaN-aware, population std as numpy / sklearn; a constant channel is left unscaled, as
    StandardScaler does), and the Normalization applied. kind: one of NORMALIZATIONS."""
    if kind not in NORMALIZATIONS:
        raise ValueError(f"normalization {kind!r}: expected one of {', '.join(NORMALIZATIONS)}.")
    mean, std = _statistics(train, kind)
    norm = Normalization(kind, mean, std, reason)
    return norm.apply(train), None if test is None else norm.apply(test), norm


def _statistics(x: torch.Tensor, kind: str) -> tuple[list[float], list[float]]:
    """Per-channel (C,) mean and std of x (N, C, T); "global" repeats one value C times.

    numpy's nanmean / nanstd in float64, TS2Vec's own calls (load_UCR; StandardScaler's
    statistics are the same per channel), and fast: ~0.5 s for HAR's 8.5 M values here."""
    c = x.shape[1]
    if kind == "none":
        return [0.0] * c, [1.0] * c
    axis = None if kind == "global" else (0, 2)
    values = x.detach().cpu().numpy()
    with warnings.catch_warnings(action="ignore"):  # an empty channel: reported below
        mean = np.atleast_1d(np.nanmean(values, axis=axis, dtype=np.float64))
        std = np.atleast_1d(np.nanstd(values, axis=axis, dtype=np.float64))
    if not np.isfinite(mean).all():
        empty = int(np.flatnonzero(~np.isfinite(mean))[0])
        raise BadSeriesError(f"channel {empty} has no value in the train split; drop it.")
    std = np.where(std > 0, std, 1.0)  # a constant channel stays unscaled, as in StandardScaler
    return np.broadcast_to(mean, c).tolist(), np.broadcast_to(std, c).tolist()


# ---- datasets ----------------------------------------------------------------------------------


def load_series_data(
    spec: str | Path,
    labels: str | Path | None = None,
    label_pattern: str | None = None,
    normalization: Normalization | None = None,
) -> tuple[SeriesDataset, SeriesDataset | None]:
    """(train, test or None) of `spec` (see SPEC_FORMS), normalized by its protocol
    (`protocol_normalization`): a _TRAIN/_TEST pair of one channel is a UCR set, of more a UEA
    one (the UEA archive is the multivariate one, Bagnall et al. 2018).

    labels: a labels file for a .npy/.npz (`_labels_file`); label_pattern: refused (a series
    file holds many series, with no file name each). Test is None for unlabeled data without a
    test split; labeled data without one is split 80/20 per class, seed 0.
    normalization: apply this one instead of the protocol's (a trained run's, so new data is
    scaled as its training data was).
    """
    if label_pattern is not None:
        raise ValueError(
            "--label-pattern labels files by their names; a series file holds many series: "
            "label a .npy/.npz with --labels (one label a line, or CSV index,label)."
        )
    path = Path(spec).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder; data= takes {SPEC_FORMS}.")
    if path.suffix in (".npy", ".npz"):
        return _one_file(_labeled_arrays(path, labels), path.stem, "arrays", normalization)
    if labels is not None:
        raise ValueError(f"{path}: carries its own labels; --labels labels a .npy or .npz.")
    if (path / "train" / "Inertial Signals").is_dir():
        train, test = (_read_har(path, split)[0] for split in ("train", "test"))
        return _build(train, test, "UCI-HAR", "har", normalization)
    pair = _split_files(path)
    if pair is None:
        return _one_file(_parse_file(path), path.stem, "file", normalization)
    train, test = _parse_file(pair[0]), _parse_file(pair[1])
    archive = "ucr" if train.x.shape[1] == 1 else "uea"
    return _build(train, test, pair[2], archive, normalization)


def _labeled_arrays(path: Path, labels: str | Path | None) -> _Series:
    s = _parse_arrays(path).checked()
    if labels is None:
        return s
    if s.labels is not None:
        raise ValueError(f"{path}: holds its labels (y); drop --labels or the y array.")
    s.labels = _labels_file(Path(labels).expanduser(), len(s.x), path)
    return s


def _parse_file(path: Path) -> _Series:
    if path.suffix == ".tsv":
        return _parse_tsv(path).checked()
    if path.suffix == ".ts":
        return _parse_ts(path).checked()
    raise BadSeriesError(f"{path}: not a series file; data= takes {SPEC_FORMS}.")


_SPLIT_NAME = re.compile(r"(?P<name>.+)_(?P<split>TRAIN|TEST|train|test)\.(?P<ext>tsv|ts)")


def _split_files(path: Path) -> tuple[Path, Path, str] | None:
    """(train file, test file, set name) of a folder or a _TRAIN/_TEST file; None for a lone
    file. FileNotFoundError naming a missing test (or train) sibling."""
    if path.is_dir():
        path = _folder_train_file(path)
    found = _SPLIT_NAME.fullmatch(path.name)
    if found is None:
        return None
    name, split, ext = found["name"], found["split"], found["ext"]
    words = ("TRAIN", "TEST") if split.isupper() else ("train", "test")
    train, test = (path.with_name(f"{name}_{word}.{ext}") for word in words)
    for f in (train, test):
        if not f.is_file():
            raise FileNotFoundError(f"{f}: missing; {path.name}'s split pair needs it beside it.")
    return train, test, name


def _folder_train_file(folder: Path) -> Path:
    """The folder's <Name>_TRAIN file: its own name's first (.tsv before .ts, TS2Vec's input),
    else the only one."""
    for ext in ("tsv", "ts"):
        if (folder / f"{folder.name}_TRAIN.{ext}").is_file():
            return folder / f"{folder.name}_TRAIN.{ext}"
    found = sorted(f for f in folder.glob("*_TRAIN.*") if f.suffix in (".tsv", ".ts"))
    if len(found) != 1:
        listed = ", ".join(f.name for f in found[:SHOWN]) or "none"
        raise BadSeriesError(
            f"{folder}: expected one <Name>_TRAIN.tsv or .ts (found {listed}); data= takes "
            f"{SPEC_FORMS}."
        )
    return found[0]


def _one_file(
    whole: _Series, name: str, archive: str, normalization: Normalization | None = None
) -> tuple[SeriesDataset, SeriesDataset | None]:
    """A set without a test split: labeled -> 80/20 per class (seed 0), else test None."""
    if whole.labels is None:
        return _build(whole, None, name, archive, normalization)
    classes = _classes(whole)
    targets = torch.tensor([classes.index(v) for v in whole.labels])
    train_idx, test_idx = split_indices(len(targets), targets, 0.2, seed=0)
    return _build(whole.take(train_idx), whole.take(test_idx), name, archive, normalization)


def _build(
    train: _Series,
    test: _Series | None,
    name: str,
    archive: str,
    normalization: Normalization | None = None,
) -> tuple[SeriesDataset, SeriesDataset | None]:
    classes = _shared_classes(train, test)
    x_train, x_test = _common_length(train, test)
    if normalization is None:
        kind, reason = protocol_normalization(name, archive)
        x_train, x_test, norm = normalize_series(x_train, x_test, kind, reason)
    else:  # a trained run's scaling, for new data
        if len(normalization.mean) != x_train.shape[1]:
            raise BadSeriesError(
                f"{train.path}: {x_train.shape[1]} channels, but the run was trained on "
                f"{len(normalization.mean)}; give series with the run's channels."
            )
        norm = normalization
        x_train = norm.apply(x_train)
        x_test = None if x_test is None else norm.apply(x_test)
    out = _dataset(train, x_train, classes, name, norm)
    if test is None or x_test is None:
        return out, None
    return out, _dataset(test, x_test, classes, name, norm)


def _classes(s: _Series) -> list[str]:
    """Distinct labels, numerically sorted if all are numbers ("2" before "10"), else as text;
    BadSeriesError naming the file for a single class."""
    distinct = set(s.labels or [])
    numbers = all(_is_number(v) for v in distinct)
    classes = sorted(distinct, key=lambda v: (float(v), v)) if numbers else sorted(distinct)
    if len(classes) < 2:
        raise BadSeriesError(
            f"{s.path}: every series has the label {_shown(classes[0])}; evaluation needs >= 2 "
            "classes (give the real labels, or no labels for unsupervised training only)."
        )
    return classes


def _is_number(v: str) -> bool:
    try:
        return math.isfinite(float(v))
    except ValueError:
        return False


def _shared_classes(train: _Series, test: _Series | None) -> list[str] | None:
    """The train split's classes, which every test label must be one of; None unlabeled."""
    if test is not None and (train.labels is None) != (test.labels is None):
        has, lacks = (train, test) if test.labels is None else (test, train)
        raise BadSeriesError(
            f"{lacks.path}: no labels, but {has.path} has them; label both splits or neither."
        )
    if train.labels is None:
        return None
    classes = _classes(train)
    test_labels = [] if test is None or test.labels is None else test.labels
    known = set(classes)
    for i, label in enumerate(test_labels):
        if label not in known:
            raise BadSeriesError(
                f"{test.where(i)}: label {_shown(label)} is not a label of the train split "
                f"({train.path}: {', '.join(classes[:10])}); a probe cannot predict an unseen "
                "class: fix the label or add train series of it."
            )
    return classes


def _common_length(
    train: _Series, test: _Series | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Both splits as tensors padded with NaN to one length T (N, C, T), (M, C, T)."""
    if test is None:
        return torch.from_numpy(train.x), None
    if test.x.shape[1] != train.x.shape[1]:
        raise BadSeriesError(
            f"{test.path}: {test.x.shape[1]} channels, but {train.path} has {train.x.shape[1]}; "
            "both splits need the same channels."
        )
    length = max(train.x.shape[2], test.x.shape[2])
    return _pad_to(torch.from_numpy(train.x), length), _pad_to(torch.from_numpy(test.x), length)


def _pad_to(x: torch.Tensor, length: int) -> torch.Tensor:
    """x (N, C, T) -> (N, C, length), NaN after step T."""
    return torch.nn.functional.pad(x, (0, length - x.shape[-1]), value=float("nan"))


def _dataset(
    s: _Series, x: torch.Tensor, classes: list[str] | None, name: str, norm: Normalization
) -> SeriesDataset:
    index = {c: i for i, c in enumerate(classes or [])}
    targets = None if classes is None else torch.tensor([index[v] for v in s.labels or []])
    sources = [f"{s.path}:{n}" for n in s.lines]
    return SeriesDataset(x, targets, classes, name, sources, normalization=norm)


def series_lengths(x: torch.Tensor) -> torch.Tensor:
    """x (N, C, T) -> (N,) long: the steps up to the last one where any channel has a value
    (NaN padding at the end excluded; missing values inside count); 0 for an all-NaN series."""
    observed = ~torch.isnan(x).all(dim=1)  # (N, T)
    steps = torch.arange(1, x.shape[-1] + 1, device=x.device)
    return (observed.long() * steps).amax(dim=-1)


def centre_series(x: torch.Tensor) -> torch.Tensor:
    """x (N, C, T) with NaN end padding -> each series moved to the middle of its row, the
    padding split before and after it (TS2Vec's centerize_vary_length_series, which its fit
    applies to variable-length training data so random crops meet the series more often)."""
    shift = (x.shape[-1] - series_lengths(x)) // 2  # (N,)
    src = torch.arange(x.shape[-1], device=x.device)[None] - shift[:, None]  # (N, T)
    inside = (src >= 0) & (src < x.shape[-1])
    out = x.gather(-1, src.clamp(0, x.shape[-1] - 1)[:, None].expand_as(x))
    return out.masked_fill(~inside[:, None], float("nan"))
