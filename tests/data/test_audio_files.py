"""Audio readers (`selfsup.data.audio`): tiny sine-tone files of each format written with
soundfile in tmp_path, then the shared Free Spoken Digit Dataset (../shared/data/fsdd.tar.gz;
skipped without it)."""

from __future__ import annotations

import fcntl
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from selfsup.data.audio import (
    AUDIO_EXTENSIONS,
    BadAudioError,
    clip_lengths,
    fsdd_labels,
    fsdd_split,
    load_audio_data,
    load_audio_folder,
    read_audio,
    resample_ratio,
)

# The shared data beside the repository, as tests/data/test_series_files.py finds it.
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
FSDD_ARCHIVE = SHARED / "fsdd.tar.gz"
CACHE = Path(os.environ.get("SELFSUP_TEST_CACHE", Path.home() / ".cache" / "selfsup-tests"))


def tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    """A sine of `freq` Hz: (round(seconds * rate),) float32."""
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path: Path, data: np.ndarray, rate: int, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate, subtype=subtype)
    return path


def peak_hz(wave: torch.Tensor, rate: int) -> float:
    """The frequency of the largest FFT magnitude of wave (1, S)."""
    spectrum = np.abs(np.fft.rfft(wave[0].numpy()))
    return float(np.fft.rfftfreq(wave.shape[-1], 1 / rate)[spectrum.argmax()])


# ---- one file ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "subtype", "tolerance"),
    [
        ("u8.wav", "PCM_U8", 1 / 64),  # WAV's 8-bit is unsigned
        ("s16.wav", "PCM_16", 1e-4),
        ("s24.wav", "PCM_24", 1e-6),
        ("s32.wav", "PCM_32", 1e-6),
        ("f32.wav", "FLOAT", 1e-7),
        ("f64.wav", "DOUBLE", 1e-7),
        ("s16.flac", "PCM_16", 1e-4),
        ("s24.flac", "PCM_24", 1e-6),
        ("v.ogg", "VORBIS", 0.05),  # lossy
    ],
)
def test_each_format_reads_as_float32_mono(tmp_path, name, subtype, tolerance):
    x = tone(440, 0.25, 16000)
    wave = read_audio(write(tmp_path / name, x, 16000, subtype), 16000)
    assert wave.shape == (1, len(x)) and wave.dtype == torch.float32
    assert (wave - torch.from_numpy(x)).abs().max() < tolerance
    assert peak_hz(wave, 16000) == 440


@pytest.mark.skipif(".mp3" not in AUDIO_EXTENSIONS, reason="this libsndfile does not read MP3")
def test_mp3_is_read_where_libsndfile_can(tmp_path):
    wave = read_audio(write(tmp_path / "a.mp3", tone(440, 0.5, 16000), 16000), 16000)
    assert wave.shape[0] == 1 and abs(wave.shape[1] - 8000) < 2000
    assert abs(peak_hz(wave, 16000) - 440) <= 2


def test_stereo_is_mixed_down_to_the_mean_of_its_channels(tmp_path):
    x = tone(440, 0.1, 8000)
    stereo = np.stack([x, np.zeros_like(x)], axis=1)  # (frames, 2): left tone, right silence
    wave = read_audio(write(tmp_path / "s.wav", stereo, 8000, "FLOAT"), 8000)
    assert wave.shape == (1, len(x))
    torch.testing.assert_close(wave[0], torch.from_numpy(x) / 2)


@pytest.mark.parametrize(("rate", "expected"), [(44100, 16000), (96000, 16000), (8000, 16000)])
def test_resampling_keeps_the_tone_and_the_duration(tmp_path, rate, expected):
    wave = read_audio(write(tmp_path / "t.wav", tone(440, 1.0, rate), rate, "PCM_24"), 16000)
    assert wave.shape == (1, expected)
    assert peak_hz(wave, 16000) == 440  # 1 s: 1 Hz per bin
    middle = wave[0, 1000:-1000]  # the filter's edges aside, the amplitude is kept
    assert abs(float(middle.abs().max()) - 0.5) < 0.01


def test_resampling_is_anti_aliased(tmp_path):
    """A 10 kHz tone is above 16 kHz's Nyquist (8 kHz): filtered out, not folded to 6 kHz."""
    wave = read_audio(write(tmp_path / "hi.wav", tone(10000, 0.5, 44100), 44100, "FLOAT"), 16000)
    assert float(wave[0, 500:-500].pow(2).mean().sqrt()) < 0.01  # from 0.35 rms


def test_float_file_over_full_scale_is_clipped(tmp_path):
    loud = tone(50, 0.1, 8000, amp=1.5)
    wave = read_audio(write(tmp_path / "loud.wav", loud, 8000, "FLOAT"), 8000)
    assert float(wave.abs().max()) == 1.0


def test_resample_ratio_exact_for_common_rates_and_bounded_for_odd_ones():
    assert resample_ratio(44100, 16000) == (160, 441)
    assert resample_ratio(8000, 16000) == (2, 1)
    assert resample_ratio(96000, 16000) == (1, 6)
    up, down = resample_ratio(8001, 16000)  # reduced: 16000 / 8001
    assert min(up, down) <= 1000 and abs(up / down / (16000 / 8001) - 1) < 1e-3
    up, down = resample_ratio(767_999, 16000)
    assert min(up, down) <= 1000 and abs(up / down / (16000 / 767_999) - 1) < 1e-3


def test_target_sample_rate_is_checked():
    with pytest.raises(ValueError, match=r"sample_rate=0: expected an integer in Hz"):
        read_audio("unused.wav", 0)


# ---- folders -----------------------------------------------------------------------------------


def test_flat_folder_is_nan_padded_with_relative_sources(tmp_path):
    write(tmp_path / "a.wav", tone(440, 0.5, 8000), 8000)
    write(tmp_path / "b.flac", tone(440, 0.25, 16000), 16000)  # resampled to 2,000 samples
    write(tmp_path / "c.ogg", tone(440, 0.1, 8000), 8000)
    ds = load_audio_folder(tmp_path, sample_rate=8000)
    assert ds.inputs.shape == (3, 1, 4000) and ds.inputs.dtype == torch.float32
    assert ds.sources == ["a.wav", "b.flac", "c.ogg"] and ds.targets is None
    assert clip_lengths(ds.inputs).tolist() == [4000, 2000, 800]
    assert (
        torch.isnan(ds.inputs[1, 0, 2000:]).all() and not torch.isnan(ds.inputs[1, 0, :2000]).any()
    )


def test_class_folders_label_recursively(tmp_path):
    for cls, freq in (("dog", 300), ("cat", 600)):
        for i in range(2):
            write(tmp_path / cls / "sub" / f"{i}.wav", tone(freq, 0.05, 8000), 8000)
    ds = load_audio_folder(tmp_path, sample_rate=8000)
    assert ds.classes == ["cat", "dog"] and ds.targets.tolist() == [0, 0, 1, 1]
    assert ds.sources[0] == "cat/sub/0.wav"


def test_flat_folder_labeled_by_csv_or_pattern(tmp_path):
    folder = tmp_path / "clips"
    for name in ("7_ann_0.wav", "3_bob_1.wav", "10_ann_2.wav"):
        write(folder / name, tone(440, 0.05, 8000), 8000)
    by_pattern = load_audio_folder(folder, 8000, label_pattern=r"^(\d+)_")
    assert by_pattern.classes == ["3", "7", "10"] and by_pattern.targets.tolist() == [2, 0, 1]
    csv = tmp_path / "labels.csv"
    csv.write_text("file,label\n7_ann_0.wav,yes\n3_bob_1.wav,no\n10_ann_2.wav,yes\n")
    by_file = load_audio_folder(folder, 8000, labels=csv)
    assert by_file.classes == ["no", "yes"] and by_file.targets.tolist() == [1, 0, 1]
    (folder / "labels.csv").write_text(csv.read_text())  # the folder's own labels file
    assert load_audio_folder(folder, 8000).targets.tolist() == [1, 0, 1]


def test_train_and_test_folders_share_classes(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                write(tmp_path / split / cls / f"{i}.wav", tone(440, 0.05, 8000), 8000)
    train, test = load_audio_data(tmp_path, sample_rate=8000)
    assert (len(train), len(test)) == (6, 4) and train.classes == test.classes == ["a", "b"]


def test_train_and_test_flat_folders_labeled_by_one_pattern(tmp_path):
    write(tmp_path / "train" / "1_a_0.wav", tone(440, 0.05, 8000), 8000)
    write(tmp_path / "train" / "2_a_1.wav", tone(440, 0.05, 8000), 8000)
    write(tmp_path / "val" / "2_b_0.wav", tone(440, 0.05, 8000), 8000)
    train, test = load_audio_data(tmp_path, 8000, label_pattern=r"^(\d)_")
    assert train.classes == test.classes == ["1", "2"] and test.targets.tolist() == [1]


def test_labeled_folder_without_split_is_split_80_20_unlabeled_is_not(tmp_path):
    for cls in ("a", "b"):
        for i in range(5):
            write(tmp_path / "lab" / cls / f"{i}.wav", tone(440, 0.02, 8000), 8000)
    train, test = load_audio_data(tmp_path / "lab", 8000)
    assert (len(train), len(test)) == (8, 2) and sorted(test.targets.tolist()) == [0, 1]
    assert not set(train.sources) & set(test.sources)
    for i in range(3):
        write(tmp_path / "unlab" / f"{i}.wav", tone(440, 0.02, 8000), 8000)
    train, test = load_audio_data(tmp_path / "unlab", 8000)
    assert len(train) == 3 and test is None


def test_skip_bad_files_counts_them_in_both_splits(tmp_path):
    for split in ("train", "test"):
        write(tmp_path / split / "a" / "good.wav", tone(440, 0.05, 8000), 8000)
        (tmp_path / split / "a" / "bad.wav").write_text("not audio")
    with pytest.raises(BadAudioError, match="bad.wav"):
        load_audio_data(tmp_path, 8000)
    train, test = load_audio_data(tmp_path, 8000, skip_bad_files=True)
    assert (len(train), len(test)) == (1, 1)
    assert [Path(s).relative_to(tmp_path).as_posix() for s in train.skipped] == [
        "train/a/bad.wav",
        "test/a/bad.wav",
    ]


def test_fsdd_helpers_on_names():
    names = ["7_jackson_0.wav", "7_jackson_5.wav", "0_theo_49.wav", "rec/3_george_4.wav"]
    train, test = fsdd_split(names)
    assert train.tolist() == [1, 2] and test.tolist() == [0, 3]
    targets, classes = fsdd_labels(names, "speaker")
    assert classes == ["george", "jackson", "theo"] and targets.tolist() == [1, 1, 2, 0]
    assert fsdd_labels(names)[0].tolist() == [2, 2, 0, 1]


# ---- the shared Free Spoken Digit Dataset ------------------------------------------------------


def shared_fsdd_root() -> Path | None:
    """fsdd.tar.gz unpacked once into the test cache (under a lock: xdist workers) -> the
    recordings folder; None when the shared data is absent."""
    if not FSDD_ARCHIVE.exists():
        return None
    root, marker = CACHE / "fsdd", CACHE / "fsdd.unpacked"
    stamp = str(FSDD_ARCHIVE.stat().st_mtime_ns)
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "fsdd.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists() or marker.read_text() != stamp:
            with tarfile.open(FSDD_ARCHIVE) as tar:
                tar.extractall(root, filter="data")
            marker.write_text(stamp)
    return root / "fsdd" / "recordings"


@pytest.fixture(scope="module")
def fsdd():
    """All 3,000 FSDD clips at their own 8 kHz, labeled by digit from the file names."""
    root = shared_fsdd_root()
    if root is None:
        pytest.skip(
            f"{FSDD_ARCHIVE} is absent: this test needs the shared data sets beside the repo"
        )
    return root, load_audio_folder(root, sample_rate=8000, label_pattern=r"^(\d)_")


def test_fsdd_loads_3000_clips_at_8khz_with_10_digits(fsdd):
    root, ds = fsdd
    assert ds.inputs.shape == (3000, 1, 18262) and ds.classes == [str(d) for d in range(10)]
    assert torch.bincount(ds.targets).tolist() == [300] * 10
    lengths = clip_lengths(ds.inputs)
    for i in (0, 1234, 2999):  # every sample of a clip kept, none resampled at 8 kHz
        assert lengths[i] == sf.info(root / ds.sources[i]).frames
    head = ds.inputs[:100]
    assert not ((head > 1) | (head < -1)).any()


def test_fsdd_split_and_speakers(fsdd):
    _, ds = fsdd
    train, test = fsdd_split(ds.sources)
    assert (len(train), len(test)) == (2700, 300)
    assert all(int(Path(ds.sources[i]).stem.split("_")[2]) < 5 for i in test.tolist())
    digits, _ = fsdd_labels(ds.sources, "digit")
    assert torch.equal(digits, ds.targets)
    speakers, names = fsdd_labels(ds.sources, "speaker")
    assert len(names) == 6 and torch.bincount(speakers).tolist() == [500] * 6
