"""Hostile and careless audio files (`selfsup.data.audio`): each test builds the bad file in
tmp_path and expects a `BadAudioError` (a ValueError: exit code 2 from the CLI, once the audio
modality passes it on) naming the file and the fix, or with `skip_bad_files` a counted skip.

Memory: a header may claim more audio than its file holds (a FLAC claiming 2^36 samples made
`soundfile.read` ask for 256 GiB). These cases are checked in this process with tracemalloc,
which sees numpy's allocations, where the decoding happens: the peak stays at one block. (A
subprocess under RLIMIT_AS, as the image bombs use, costs 6-14 s here importing torch on two
loaded cores; the test would exceed its 2 s.)
"""

from __future__ import annotations

import os
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from selfsup.data import audio
from selfsup.data.audio import (
    BadAudioError,
    fsdd_split,
    load_audio_data,
    load_audio_folder,
    read_audio,
)

SKIP_FIX = r"or pass --skip-bad-files to skip it"


def wav(path: Path, frames: int = 8000, rate: int = 8000, subtype: str = "PCM_16") -> Path:
    """A 440 Hz tone of `frames` frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(frames) / rate)
    sf.write(path, x.astype(np.float32), rate, subtype=subtype)
    return path


def patched(src: Path, dst: Path, offset: int, value: bytes) -> Path:
    """dst: a copy of src with `value` written at byte `offset`."""
    raw = bytearray(src.read_bytes())
    raw[offset : offset + len(value)] = value
    dst.write_bytes(bytes(raw))
    return dst


def flac_claiming_2_36_samples(tmp_path: Path) -> Path:
    """A valid 1 s FLAC whose STREAMINFO claims 2^36 - 1 samples (99 days at 8 kHz)."""
    src = tmp_path / "src.flac"
    sf.write(src, np.zeros(8000, dtype=np.float32), 8000)
    raw = bytearray(src.read_bytes())
    at = 8 + 10  # 'fLaC', the block header, then STREAMINFO: total samples in bits 28-63 of 8
    field = int.from_bytes(raw[at : at + 8], "big") | (1 << 36) - 1
    return patched(src, tmp_path / "claims.flac", at, field.to_bytes(8, "big"))


def peak_bytes(fn) -> tuple[object, int]:
    """(fn() or the exception it raised, the peak of numpy/Python allocations while it ran)."""
    tracemalloc.start()
    try:
        try:
            out: object = fn()
        except BadAudioError as e:
            out = e
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---- broken files ------------------------------------------------------------------------------


def test_truncated_header_names_file_and_fix(tmp_path):
    bad = tmp_path / "cut.wav"
    bad.write_bytes(wav(tmp_path / "a.wav").read_bytes()[:20])  # RIFF + part of 'fmt '
    with pytest.raises(BadAudioError, match=rf"cut\.wav: cannot read audio \(.+\)\. .*{SKIP_FIX}"):
        read_audio(bad, 8000)


def test_truncated_data_reads_the_frames_present(tmp_path):
    """A download cut inside the samples: libsndfile reads what is there, as players do."""
    bad = tmp_path / "cut.wav"
    bad.write_bytes(wav(tmp_path / "a.wav").read_bytes()[:1000])  # 44-byte header + 478 frames
    assert read_audio(bad, 8000).shape == (1, 478)


def test_zero_frames_and_zero_bytes(tmp_path):
    with pytest.raises(BadAudioError, match=rf"none\.wav: no audio \(0 frames\)\. .*{SKIP_FIX}"):
        read_audio(wav(tmp_path / "none.wav", frames=0), 8000)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(BadAudioError, match=r"empty\.wav: cannot read audio \(Format not recog"):
        read_audio(tmp_path / "empty.wav", 8000)


def test_text_file_named_wav(tmp_path):
    (tmp_path / "notes.wav").write_text("these are my notes, not audio\n" * 20)
    with pytest.raises(BadAudioError, match=r"notes\.wav: cannot read audio.*Remove or replace"):
        read_audio(tmp_path / "notes.wav", 8000)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_or_inf_samples_in_a_float_wav(tmp_path, value):
    x = np.full(800, 0.1, dtype=np.float32)
    x[100], x[500:502] = value, value
    sf.write(tmp_path / "f.wav", x, 8000, subtype="FLOAT")
    with pytest.raises(
        BadAudioError,
        match=r"f\.wav: 3 of 800 samples are NaN or infinite \(the first at 0\.013 s, sample "
        rf"100\)\. Re-export .*{SKIP_FIX}",
    ):
        read_audio(tmp_path / "f.wav", 8000)


def test_all_nan_float_wav(tmp_path):
    sf.write(tmp_path / "n.wav", np.full(50, np.nan, dtype=np.float32), 8000, subtype="FLOAT")
    with pytest.raises(BadAudioError, match=r"n\.wav: 50 of 50 samples are NaN or infinite"):
        read_audio(tmp_path / "n.wav", 8000)


def test_header_claiming_an_impossible_sample_rate(tmp_path):
    src = wav(tmp_path / "a.wav")
    bad = patched(src, tmp_path / "rate.wav", 24, struct.pack("<I", 2**31 - 1))  # fmt: rate
    with pytest.raises(BadAudioError, match=r"rate\.wav: .*sample rate of 2,147,483,647 Hz"):
        read_audio(bad, 8000)


# ---- lengths: refused before decoding, memory bounded by the data present ----------------------


def test_flac_claiming_2_36_samples_is_refused_before_decoding(tmp_path, monkeypatch):
    """soundfile.read would allocate the claimed 256 GiB; the header check refuses first."""
    bad = flac_claiming_2_36_samples(tmp_path)

    def never(_f):
        raise AssertionError("decoded a file its header should have refused")

    monkeypatch.setattr(audio, "_decode_mono", never)
    err, peak = peak_bytes(lambda: read_audio(bad, 8000))
    assert isinstance(err, BadAudioError) and peak < 2**20
    assert "claims.flac: the header claims 8,589,934.6 s of audio" in str(err)
    assert "over max_seconds=600. Trim or split it, raise max_seconds" in str(err)


def test_flac_claiming_2_36_samples_without_a_limit_allocates_one_block(tmp_path):
    bad = flac_claiming_2_36_samples(tmp_path)
    err, peak = peak_bytes(lambda: read_audio(bad, 8000, max_seconds=None))
    assert isinstance(err, BadAudioError) and "claims.flac: cannot read audio" in str(err)
    assert peak < 3 * audio.BLOCK_SAMPLES * 4  # one block of float32 and its mix-down


def test_wav_data_chunk_claiming_4_gb_reads_the_frames_present(tmp_path):
    src = wav(tmp_path / "a.wav")
    at = src.read_bytes().index(b"data") + 4
    bad = patched(src, tmp_path / "big.wav", at, struct.pack("<I", 0xFFFFFFF0))
    wave, peak = peak_bytes(lambda: read_audio(bad, 8000))
    assert wave.shape == (1, 8000) and peak < 2**20


def test_wav_claiming_1000_channels_reads_only_its_bytes(tmp_path):
    src = wav(tmp_path / "a.wav")
    bad = patched(src, tmp_path / "ch.wav", 22, struct.pack("<H", 1000))  # fmt: channels
    wave, peak = peak_bytes(lambda: read_audio(bad, 8000))
    assert wave.shape == (1, 8) and peak < 2**20  # 16,000 bytes = 8 frames of 1,000 channels


def test_file_over_max_seconds_is_refused_or_skipped(tmp_path):
    long = wav(tmp_path / "d" / "long.wav", frames=601_000, rate=1000, subtype="PCM_U8")
    wav(tmp_path / "d" / "short.wav")
    with pytest.raises(BadAudioError, match=r"long\.wav: the header claims 601\.0 s .*=600\."):
        read_audio(long, 8000)
    with pytest.raises(BadAudioError, match=r"long\.wav: .* over max_seconds=0\.5"):
        load_audio_folder(tmp_path / "d", 8000, max_seconds=0.5)
    ds = load_audio_folder(tmp_path / "d", 8000, skip_bad_files=True)
    assert ds.sources == ["short.wav"] and ds.skipped == [str(long)]


def test_padding_past_the_memory_limit_names_the_longest_file(tmp_path, monkeypatch):
    """One long recording among short clips: N x its length of float32 is refused."""
    wav(tmp_path / "a.wav", frames=100)
    wav(tmp_path / "long.wav", frames=8000)
    monkeypatch.setattr(audio, "MAX_PADDED_BYTES", 50_000)
    with pytest.raises(
        BadAudioError, match=r"padding 2 clips to the longest, .*long\.wav \(8,000 samples\)"
    ):
        load_audio_folder(tmp_path, 8000)


# ---- folders -----------------------------------------------------------------------------------


def test_non_audio_files_fifos_and_hidden_files_are_ignored(tmp_path):
    wav(tmp_path / "a.wav")
    wav(tmp_path / "b.WAV")
    for name in ("README.md", "metadata.py", ".DS_Store", "cover.png", "noext"):
        (tmp_path / name).write_text("x")
    (tmp_path / "._a.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # a macOS resource fork
    os.mkfifo(tmp_path / "pipe.wav")  # opening it would block forever
    ds = load_audio_folder(tmp_path, 8000)
    assert ds.sources == ["a.wav", "b.WAV"] and not ds.skipped


def test_directory_named_like_audio(tmp_path):
    """Beside audio files it is a sub-folder: a mixed layout, refused with both names; inside
    a class folder it is not a file and is skipped over."""
    wav(tmp_path / "flat" / "a.wav")
    (tmp_path / "flat" / "x.wav").mkdir()
    with pytest.raises(BadAudioError, match=r"flat: 1 audio files at the top level and .*x\.wav"):
        load_audio_folder(tmp_path / "flat", 8000)
    wav(tmp_path / "classes" / "dog" / "a.wav")
    (tmp_path / "classes" / "dog" / "x.wav").mkdir()
    assert load_audio_folder(tmp_path / "classes", 8000).sources == ["dog/a.wav"]


def test_audio_beside_train_and_test_folders_is_refused(tmp_path):
    """Read as a split, the stray top-level file would be dropped without a word."""
    wav(tmp_path / "train" / "a" / "1.wav")
    wav(tmp_path / "test" / "a" / "1.wav")
    wav(tmp_path / "stray.wav")
    with pytest.raises(BadAudioError, match=r"1 audio files at the top level and sub-folders"):
        load_audio_data(tmp_path, 8000)


def test_a_file_a_folder_or_a_pipe_where_the_other_is_expected(tmp_path):
    one = wav(tmp_path / "one.wav")
    with pytest.raises(BadAudioError, match=r"one\.wav: a file, not a folder"):
        load_audio_data(one, 8000)
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(BadAudioError, match=r"dir\.wav: not a regular file"):
        read_audio(tmp_path / "dir.wav", 8000)
    os.mkfifo(tmp_path / "pipe.wav")
    with pytest.raises(BadAudioError, match=r"pipe\.wav: not a regular file"):  # not a hang
        read_audio(tmp_path / "pipe.wav", 8000)
    with pytest.raises(FileNotFoundError, match=r"gone\.wav: no such audio file"):
        read_audio(tmp_path / "gone.wav", 8000)


def test_folder_without_audio_and_missing_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(BadAudioError, match=r"no audio files found \(\.wav, \.flac, \.ogg"):
        load_audio_folder(tmp_path, 8000)
    with pytest.raises(FileNotFoundError, match=r"nope: no such folder"):
        load_audio_data(tmp_path / "nope", 8000)


def test_every_file_bad_with_skip_says_none_could_be_read(tmp_path):
    (tmp_path / "a.wav").write_text("x")
    (tmp_path / "b.flac").write_bytes(b"fLaC")
    with pytest.raises(BadAudioError, match=r"none of 2 audio files could be read"):
        load_audio_folder(tmp_path, 8000, skip_bad_files=True)


def test_labels_file_errors_are_bad_audio_errors(tmp_path):
    wav(tmp_path / "a.wav")
    wav(tmp_path / "b.wav")
    (tmp_path / "labels.csv").write_text("a.wav,yes\n")
    no_label = r"labels\.csv: 1 file of .* has no label: b\.wav \(add rows"
    with pytest.raises(BadAudioError, match=no_label):
        load_audio_folder(tmp_path, 8000)


def test_fsdd_helpers_refuse_other_names():
    with pytest.raises(ValueError, match=r"clip\.wav: not an FSDD file name; expected"):
        fsdd_split(["7_jackson_0.wav", "sub/clip.wav"])
