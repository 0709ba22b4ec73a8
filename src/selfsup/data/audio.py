"""Audio files -> mono float32 waveforms (N, 1, S_max), NaN-padded, in memory.

A raw audio sample is a mono waveform float32 (1, S) in [-1, 1] at the run's sample rate. A
dataset holds (N, 1, S_max): shorter clips are padded with NaN at the end, the time-series
convention (`data/series.py`): NaN is not part of the clip, and `clip_lengths` reads the valid
lengths back.

Reading (`read_audio`), through libsndfile (`soundfile`):
  - formats: WAV (8/16/24/32-bit integer, 32/64-bit float, RF64, WAVEX), FLAC, OGG Vorbis; MP3
    too where the installed libsndfile reads it (>= 1.1.0; the soundfile wheels since 0.12
    bundle it) - `AUDIO_EXTENSIONS` lists it only then. libsndfile reads a file by its content,
    so the extension only decides which files of a folder are audio.
  - channels are mixed down to mono (their mean);
  - a file at another rate is resampled with `scipy.signal.resample_poly` (polyphase FIR,
    Kaiser window: anti-aliased, no FFT edge artefacts, cost linear in the length) by the
    ratio target/source reduced by their gcd: exact for every common pair (44.1 kHz -> 16 kHz
    is up 160, down 441). A ratio whose reduced terms exceed 1,000 (an odd rate such as
    8,001 Hz) is approximated within 0.1 % (1.7 cents of pitch), because the filter has
    20 * max(up, down) taps;
  - values are clipped to [-1, 1]: float files may exceed full scale, and the resampling
    filter overshoots it slightly near a full-scale edge (Gibbs), as a DAC would clip.

Folders (`load_audio_folder`, `load_audio_data`) use the image folders' layouts
(`data/folder.py`): class sub-folders; a flat folder, unlabeled or labeled by its labels.csv, a
labels file anywhere (`labels=`) or a file-name pattern (`label_pattern=`, `data/labels.py`);
`root/train` + `root/test` (or `root/val`). Files without an audio extension, and hidden files
(macOS's `._x.wav` resource forks), are ignored, as image folders ignore non-image files.

Errors: a file that cannot be used is a `BadAudioError` (a ValueError) naming the file and the
fix: unreadable (truncated header, not audio), no frames, NaN or infinite samples, a sample rate
outside 1 Hz - 768 kHz, or a duration over `max_seconds` - refused from the header before
decoding, so that a FLAC whose header claims 2^36 samples cannot allocate 256 GiB. Reading is
in blocks, so a header claiming more than the file holds allocates only what is there. With
`skip_bad_files` such files are skipped and listed in `dataset.skipped` instead.

`fsdd_split` and `fsdd_labels` are specific to the Free Spoken Digit Dataset's file names
(`{digit}_{speaker}_{index}.wav`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import firwin, resample_poly

from selfsup.data.folder import FileKind, folder_splits, list_files
from selfsup.data.labels import class_order
from selfsup.data.memory import InMemoryDataset, Labeled, split_indices

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg") + (
    (".mp3",) if "MP3" in sf.available_formats() else ()
)
MAX_SECONDS = 600.0
MAX_SAMPLE_RATE = 768_000  # the highest rate audio interfaces record at
MAX_RATIO_TERM = 1_000  # up/down terms kept exact; above, the ratio is approximated
BLOCK_SAMPLES = 1 << 20  # samples (frames x channels) decoded at a time: 4 MB of float32
# The padded (N, 1, S_max) tensor: one hour-long recording among 3,000 short clips would need
# 3,000 hours of float32. Refused above this, naming the longest file.
MAX_PADDED_BYTES = 16 * 2**30
FIX_SKIP = "or pass --skip-bad-files to skip it"
FSDD_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[A-Za-z]+)_(?P<index>\d+)\.wav$")
FSDD_TEST_INDICES = range(5)  # FSDD's README: recordings 0-4 of each are the test set


class BadAudioError(ValueError):
    """An audio file (or folder) that cannot be used; the message names it and the fix."""


# ---- one file ----------------------------------------------------------------------------------


def read_audio(
    path: str | Path, sample_rate: int, max_seconds: float | None = MAX_SECONDS
) -> torch.Tensor:
    """One file -> mono waveform float32 (1, S) in [-1, 1] at `sample_rate` Hz.

    max_seconds: a file whose header claims a longer duration is refused before decoding
    (None: no limit). BadAudioError naming the file and the fix for anything unusable."""
    path = Path(path)
    _check_rate(sample_rate, "sample_rate")
    _check_regular_file(path)
    try:
        with sf.SoundFile(path) as f:
            _check_header(path, f.frames, f.samplerate, max_seconds)
            mono, rate = _decode_mono(f), f.samplerate
    except sf.SoundFileError as e:  # LibsndfileError: truncated header, not audio, bad data
        raise BadAudioError(
            f"{path}: cannot read audio ({getattr(e, 'error_string', e)}). Remove or replace "
            f"the file, {FIX_SKIP}."
        ) from e
    _check_samples(path, mono, rate)
    wave = _resample(mono, rate, sample_rate)
    return torch.from_numpy(np.clip(wave, -1.0, 1.0, out=wave)).unsqueeze(0)


def _check_regular_file(path: Path) -> None:
    """FileNotFoundError for a missing file, BadAudioError for a folder, pipe or device: libsndfile
    says only "System error" or "Format not recognised", and opening a pipe blocks."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such audio file.")
    if not path.is_file():
        raise BadAudioError(
            f"{path}: not a regular file (a folder, pipe or device); pass an audio file."
        )


def _check_rate(rate: int, what: str) -> None:
    if not (isinstance(rate, int) and 1 <= rate <= MAX_SAMPLE_RATE):
        raise ValueError(f"{what}={rate!r}: expected an integer in Hz, 1 to {MAX_SAMPLE_RATE:,}.")


def _check_header(path: Path, frames: int, rate: int, max_seconds: float | None) -> None:
    """BadAudioError for what the header claims: no frames, an impossible rate, or a duration
    over `max_seconds` (checked before anything is decoded)."""
    if frames <= 0:
        raise BadAudioError(f"{path}: no audio (0 frames). Remove the file, {FIX_SKIP}.")
    if not 1 <= rate <= MAX_SAMPLE_RATE:
        raise BadAudioError(
            f"{path}: the header claims a sample rate of {rate:,} Hz, outside 1 to "
            f"{MAX_SAMPLE_RATE:,} Hz: not an audio file, or a broken header. Remove or replace "
            f"it, {FIX_SKIP}."
        )
    if max_seconds is not None and frames / rate > max_seconds:
        raise BadAudioError(
            f"{path}: the header claims {frames / rate:,.1f} s of audio ({frames:,} frames at "
            f"{rate:,} Hz), over max_seconds={max_seconds:g}. Trim or split it, raise "
            f"max_seconds if it is real, {FIX_SKIP}."
        )


def _decode_mono(f: sf.SoundFile) -> np.ndarray:
    """The open file's samples mixed down to mono: (S,) float32. Read in blocks until the data
    ends, so that memory follows the data present, not the length the header claims."""
    step = max(1, BLOCK_SAMPLES // f.channels)
    blocks = []
    while True:
        block = f.read(step, dtype="float32", always_2d=True)  # (b, C), ints scaled to [-1, 1)
        blocks.append(block[:, 0] if f.channels == 1 else block.mean(axis=1))
        if len(block) < step:
            return np.concatenate(blocks)


def _check_samples(path: Path, mono: np.ndarray, rate: int) -> None:
    """BadAudioError for no decoded samples, or any NaN or infinite one: NaN marks padding in a
    dataset (`clip_lengths`), and would spread through the resampling filter."""
    if len(mono) == 0:
        raise BadAudioError(f"{path}: no audio (0 frames decoded). Remove the file, {FIX_SKIP}.")
    bad = ~np.isfinite(mono)
    if bad.any():
        first = int(bad.argmax())
        raise BadAudioError(
            f"{path}: {int(bad.sum()):,} of {len(mono):,} samples are NaN or infinite (the "
            f"first at {first / rate:.3f} s, sample {first:,}). Re-export the file with finite "
            f"samples, remove it, {FIX_SKIP}."
        )


def _resample(mono: np.ndarray, source: int, target: int) -> np.ndarray:
    """mono (S,) at `source` Hz -> (ceil(S * up / down),) float32 at `target` Hz."""
    if source == target:
        return mono
    up, down = resample_ratio(source, target)
    return resample_poly(mono, up, down, window=_lowpass(up, down)).astype(np.float32, copy=False)


@lru_cache(maxsize=16)
def _lowpass(up: int, down: int) -> np.ndarray:
    """The anti-aliasing filter `resample_poly` designs for (up, down), float32, designed once:
    its design (firwin) cost 2.4 ms of the 2.5 ms per FSDD clip at 44.1 -> 16 kHz, 0.2 of 0.7
    ms at 8 -> 16 kHz; the output is identical."""
    taps = max(up, down)
    h = firwin(20 * taps + 1, 1.0 / taps, window=("kaiser", 5.0)).astype(np.float32)
    h.flags.writeable = False  # shared between threads; resample_poly copies it
    return h


def resample_ratio(source: int, target: int) -> tuple[int, int]:
    """(up, down) for `resample_poly`: target / source reduced by their gcd, or, where a term
    exceeds MAX_RATIO_TERM, the nearest ratio whose smaller side does not (error < 0.1 %)."""
    ratio = Fraction(target, source)
    if max(ratio.numerator, ratio.denominator) <= MAX_RATIO_TERM:
        return ratio.numerator, ratio.denominator
    if ratio >= 1:
        near = ratio.limit_denominator(MAX_RATIO_TERM)
        return near.numerator, near.denominator
    near = (1 / ratio).limit_denominator(MAX_RATIO_TERM)
    return near.denominator, near.numerator


# ---- folders -----------------------------------------------------------------------------------


def load_audio_folder(
    root: str | Path,
    sample_rate: int = 16000,
    labels: str | Path | None = None,
    label_pattern: str | None = None,
    skip_bad_files: bool = False,
    max_seconds: float | None = MAX_SECONDS,
    workers: int | None = None,
    window: int | None = None,
) -> InMemoryDataset:
    """Every audio file under `root` -> InMemoryDataset of float32 (N, 1, S_max), NaN-padded.

    window: keep only each clip's centre `window` samples (`centre_window`), so long
    recordings cost `window` samples each (the streamed runs' evaluation copy).

    labels, label_pattern: label a flat folder from a labels file or its file names
    (`list_audio`). skip_bad_files: skip unusable files (listed in `ds.skipped`) instead of
    raising. workers: decoding threads (default min(4, cores)): libsndfile and the resampler
    release the GIL. Measured on FSDD (3,000 clips; 2 cores shared with other jobs; best of 5,
    interleaved): at 8 kHz 1.56 s in one thread, 1.05 s in two; resampled to 16 kHz 2.08 s
    in one, 1.68 s in two (four: 1.08 s and 1.82 s, over-subscribed)."""
    root = Path(root)
    _check_rate(sample_rate, "sample_rate")
    files, targets, classes = list_audio(root, labels, label_pattern)
    read = _reader(sample_rate, skip_bad_files, max_seconds, window)
    with ThreadPoolExecutor(workers or min(4, os.cpu_count() or 1)) as pool:
        waves = list(pool.map(read, files))
    keep = [i for i, w in enumerate(waves) if w is not None]
    if not keep:
        raise BadAudioError(f"{root}: none of {len(files)} audio files could be read.")
    ds = InMemoryDataset(
        inputs=pad_clips([waves[i] for i in keep], [files[i] for i in keep], root),
        targets=None if targets is None else torch.tensor([targets[i] for i in keep]),
        classes=classes,
        name=root.name,
        sources=[files[i].relative_to(root).as_posix() for i in keep],
    )
    ds.skipped = [str(f) for f, w in zip(files, waves, strict=True) if w is None]
    return ds


def _reader(
    sample_rate: int, skip: bool, max_seconds: float | None, window: int | None = None
) -> Callable[[Path], torch.Tensor | None]:
    """path -> (1, S) waveform (its centre `window` samples when given), or None for an
    unusable file when skipping."""

    def read(path: Path) -> torch.Tensor | None:
        try:
            wave = read_audio(path, sample_rate, max_seconds)
            return wave if window is None else centre_window(wave, window, pad=False)
        except BadAudioError:
            if skip:
                return None
            raise

    return read


def centre_window(wave: torch.Tensor, window: int, pad: bool = True) -> torch.Tensor:
    """(1, S) -> its centre `window` samples, (1, window); a shorter clip whole, NaN-padded to
    (1, window) after its end when `pad` (else (1, S) as it is). The centre of the window is
    the clip's centre, so the evaluation's centre crop of any shorter length is unchanged."""
    s = wave.shape[-1]
    if s >= window:
        start = (s - window) // 2
        return wave[:, start : start + window]
    if not pad:
        return wave
    return torch.cat([wave, torch.full((1, window - s), float("nan"))], dim=1)


class AudioFiles(Labeled):
    """Audio files decoded on demand, for folders too large for memory (`--stream`): read in
    `engine.fit`'s DataLoader workers. `ds[i]` -> ((1, window) float32 at `sample_rate`: the
    file's centre `window` samples, NaN-padded after a shorter clip's end; target or -1).
    A file that turns out unusable raises BadAudioError naming it."""

    def __init__(
        self, files: list[Path], targets: torch.Tensor | None, classes: list[str] | None,
        sample_rate: int, window: int, max_seconds: float | None, name: str = "",
    ) -> None:  # fmt: skip
        self.files, self.targets, self.classes = files, targets, classes
        self.sample_rate, self.window, self.max_seconds, self.name = (
            sample_rate,
            window,
            max_seconds,
            name,
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        wave = read_audio(self.files[i], self.sample_rate, self.max_seconds)
        target = -1 if self.targets is None else int(self.targets[i])
        return centre_window(wave, self.window), target


def pad_clips(waves: list[torch.Tensor], files: list[Path], root: Path) -> torch.Tensor:
    """waves: (1, S_i) each -> (N, 1, max S_i) float32, NaN after each clip's end.
    BadAudioError naming the longest file if the padded tensor would exceed MAX_PADDED_BYTES."""
    longest = max(range(len(waves)), key=lambda i: waves[i].shape[-1])
    s_max = waves[longest].shape[-1]
    size = len(waves) * s_max * 4
    if size > MAX_PADDED_BYTES:
        raise BadAudioError(
            f"{root}: padding {len(waves):,} clips to the longest, {files[longest]} "
            f"({s_max:,} samples), would take {size / 2**30:,.1f} GiB (limit "
            f"{MAX_PADDED_BYTES / 2**30:g} GiB). Split or trim the long recordings, or lower "
            "max_seconds and pass --skip-bad-files to leave them out."
        )
    out = torch.empty(len(waves), 1, s_max)  # each byte written once: full() then copy cost 2x
    for row, w in zip(out, waves, strict=True):
        row[:, : w.shape[-1]] = w
        row[:, w.shape[-1] :] = float("nan")
    return out


def clip_lengths(x: torch.Tensor) -> torch.Tensor:
    """x (N, 1, S) NaN-padded -> (N,) long: each clip's valid samples before the padding.

    A count of the samples that are not NaN: `read_audio` refuses NaN inside a clip, so they
    are the ones before the padding (`series.series_lengths` finds the last valid step
    instead, as a series may miss values, through 8 bytes per sample: 0.4 GB for FSDD)."""
    return x.shape[-1] - torch.count_nonzero(torch.isnan(x[:, 0]), dim=-1)


# The layouts of image folders (class sub-folders, flat + labels, train/ + test/), for audio.
AUDIO = FileKind(
    "audio files", "file", AUDIO_EXTENSIONS, BadAudioError, "Pass a folder of audio files."
)


def list_audio(
    root: Path, labels: str | Path | None = None, label_pattern: str | None = None
) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Files, integer labels (or None) and class names (or None) of an audio folder:
    `folder.list_files` with audio files (class sub-folders, or a flat folder labeled by
    labels.csv, `labels` or `label_pattern`)."""
    return list_files(root, AUDIO, labels, label_pattern)


def load_audio_data(
    spec: str | Path,
    sample_rate: int = 16000,
    labels: str | Path | None = None,
    label_pattern: str | None = None,
    skip_bad_files: bool = False,
    max_seconds: float | None = MAX_SECONDS,
    window: int | None = None,
) -> tuple[InMemoryDataset, InMemoryDataset | None]:
    """(train, test or None) from an audio folder: `spec/train` + `spec/test` (or `spec/val`);
    else `spec` itself, split 80/20 per class with seed 0 if labeled (as image folders), test
    None if not. `train.skipped` lists the files skipped in both splits. window: each clip's
    centre `window` samples only (`load_audio_folder`)."""

    def load(folder: Path) -> InMemoryDataset:
        return load_audio_folder(
            folder, sample_rate, labels, label_pattern, skip_bad_files, max_seconds,
            window=window,
        )  # fmt: skip

    train, test = folder_splits(Path(spec).expanduser(), load, AUDIO)
    skipped = train.skipped + (test.skipped if test is not None else [])
    if test is None and train.has_labels:
        rows_train, rows_test = split_indices(len(train), train.targets, 0.2, seed=0)
        train, test = (
            train.subset(rows_train, f"{train.name}-train"),
            train.subset(rows_test, f"{train.name}-test"),
        )
    train.skipped = skipped
    return train, test


def stream_files(
    spec: str | Path, train: InMemoryDataset, sample_rate: int, window: int,
    max_seconds: float | None = MAX_SECONDS,
) -> AudioFiles:  # fmt: skip
    """The files of `train` (a split `load_audio_data(spec, ...)` returned) as `AudioFiles`,
    decoded again on demand: the training source of a streamed run, the same files and labels
    as its evaluation copy."""
    spec = Path(spec).expanduser()
    base = spec / "train" if (spec / "train").is_dir() else spec  # sources are relative to it
    files = [base / source for source in train.sources or []]
    return AudioFiles(files, train.targets, train.classes, sample_rate, window, max_seconds,
                      train.name)  # fmt: skip


# ---- the Free Spoken Digit Dataset -------------------------------------------------------------


def _fsdd_fields(sources: list[str]) -> list[re.Match[str]]:
    """Each source's bare name matched as `{digit}_{speaker}_{index}.wav`; ValueError naming
    the first that is not."""
    found = [FSDD_NAME.match(Path(s).name) for s in sources]
    for s, m in zip(sources, found, strict=True):
        if m is None:
            raise ValueError(
                f"{s}: not an FSDD file name; expected {{digit}}_{{speaker}}_{{index}}.wav "
                "(e.g. 7_jackson_32.wav)."
            )
    return found  # type: ignore[return-value]  # every one matched


def fsdd_split(sources: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """FSDD's own split from the file names (its README: recordings 0-4 of each digit and
    speaker are the test set, 5-49 the training set) -> (train rows, test rows), sorted long.
    Specific to FSDD's naming; ValueError for a name that does not follow it."""
    test = torch.tensor(
        [int(m["index"]) in FSDD_TEST_INDICES for m in _fsdd_fields(sources)], dtype=torch.bool
    )
    return (~test).nonzero().flatten(), test.nonzero().flatten()


def fsdd_labels(sources: list[str], kind: str = "digit") -> tuple[torch.Tensor, list[str]]:
    """(targets (N,) long, classes) from FSDD file names: kind "digit" (10 classes, "0"-"9")
    or "speaker" (the speakers' names, sorted). Specific to FSDD's naming."""
    if kind not in ("digit", "speaker"):
        raise ValueError(f"kind={kind!r}: expected 'digit' or 'speaker'.")
    names = [m[kind] for m in _fsdd_fields(sources)]
    classes = class_order(names)
    index = {c: i for i, c in enumerate(classes)}
    return torch.tensor([index[n] for n in names], dtype=torch.long), classes
