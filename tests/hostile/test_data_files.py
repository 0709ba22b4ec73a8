"""Hostile and careless data files, one test per case: each builds the bad file in tmp_path and
expects a clear error naming it (BadImageError for images; a ValueError naming file and line for
text), or with `skip_bad_files` a counted skip. Issue items in each docstring.

The decompression bombs run in one subprocess whose address space is capped at 1 GiB above what
the imports take (resource.RLIMIT_AS): a decoder that allocated what the header claims would fail
there with a MemoryError / RuntimeError instead of the clean refusal these tests expect.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.data import BadImageError, load_image_data, load_image_folder
from selfsup.data.stream import ImageFiles, read_image
from selfsup.data.text import read_corpus, read_labeled, read_pairs


def _jpeg(size=(8, 8), seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A valid 8x8 JPEG whose SOF0 header is patched to claim width x height."""
    raw = bytearray(_jpeg())
    sof = raw.index(b"\xff\xc0")
    raw[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(raw)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bilevel_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG of width x height, built without holding its pixels: a
    196-megapixel one is ~25 kB."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


_BOMB_SCRIPT = """
import json, resource, sys, warnings
from pathlib import Path
from selfsup.data.folder import load_image_folder
from selfsup.data.stream import ImageFiles, read_image

warnings.simplefilter("ignore")
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize"))
cap = vm * 1024 + 2**30  # 1 GiB above the imports: a 20000x20000 RGB image needs 1.2 GB
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
base = Path(sys.argv[1])

def outcome(fn):
    try:
        return {"ok": repr(fn())}
    except BaseException as e:
        return {"error": type(e).__name__, "message": str(e)[:300]}

def skipped(folder):
    ds = load_image_folder(folder, cache_dir=base / "cache", skip_bad_files=True)
    return len(ds), [Path(s).name for s in ds.skipped]

def streamed(folder):
    ds = ImageFiles.from_folder(folder, skip_bad_files=True)
    ds[0]
    return [Path(s).name for s in ds.skipped]

cases = {
    "jpeg_folder": lambda: load_image_folder(base / "jpeg", cache_dir=base / "cache"),
    "jpeg_folder_skip": lambda: skipped(base / "jpeg"),
    "jpeg_65000": lambda: load_image_folder(base / "huge", cache_dir=base / "cache"),
    "jpeg_stream": lambda: read_image(base / "jpeg" / "bomb.jpg"),
    "png_stream": lambda: read_image(base / "png" / "bomb.png"),
    "png_stream_skip": lambda: streamed(base / "png"),
    "png_folder": lambda: load_image_folder(base / "png", cache_dir=base / "cache"),
}
print(json.dumps({name: outcome(fn) for name, fn in cases.items()}))
"""


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, dict]:
    """Every bomb case decoded in one memory-capped subprocess -> {case: outcome}."""
    base = tmp_path_factory.mktemp("bombs")
    good = _jpeg((8, 8))
    _folder(base / "jpeg", {"bomb.jpg": _jpeg_claiming(20000, 20000), "good.jpg": good})
    _folder(base / "huge", {"bomb.jpg": _jpeg_claiming(65000, 65000), "good.jpg": good})
    png = _bilevel_png(14000, 14000)  # 196 megapixels, 588 MB as RGB
    _folder(base / "png", {"bomb.png": png, "good.png": _png_rgb()})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = textwrap.dedent(_BOMB_SCRIPT)
    out = subprocess.run(
        [sys.executable, "-c", script, str(base)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _png_rgb(size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, "PNG")
    return buf.getvalue()


def _refused(outcome: dict, name: str) -> None:
    assert outcome.get("error") == "BadImageError", outcome
    assert name in outcome["message"] and "max_image_pixels" in outcome["message"], outcome


def test_jpeg_claiming_20000x20000_is_refused_before_decoding(bombs):
    """#15.4: an 852-byte-class JPEG whose SOF claims 20000x20000 (the fast decoder took 1.9 GB):
    a BadImageError naming it, under a 1 GiB memory cap."""
    _refused(bombs["jpeg_folder"], "bomb.jpg")


def test_jpeg_bomb_is_skipped_and_counted(bombs):
    """#15.4: with skip_bad_files the bomb is skipped and counted, the good image kept."""
    assert bombs["jpeg_folder_skip"] == {"ok": "(1, ['bomb.jpg'])"}


def test_jpeg_claiming_65000x65000_is_refused(bombs):
    """#15.4: the header that tried 12.7 GB."""
    _refused(bombs["jpeg_65000"], "bomb.jpg")


def test_streamed_jpeg_bomb_is_refused(bombs):
    """#15.4: --stream's reader (torchvision first) applies the same limit."""
    _refused(bombs["jpeg_stream"], "bomb.jpg")


def test_streamed_196_megapixel_png_is_refused(bombs):
    """#15.4: with --stream a valid 196-megapixel PNG was decoded silently on every read."""
    _refused(bombs["png_stream"], "bomb.png")


def test_streamed_png_bomb_is_skipped_and_counted(bombs):
    """#15.4: --stream --skip-bad-files skips the bomb, counted once."""
    assert bombs["png_stream_skip"] == {"ok": "['bomb.png']"}


def test_png_bomb_in_memory_folder_is_refused(bombs):
    """#15.4 / #15.15: the PIL path gave a raw DecompressionBombError; now the limit's
    BadImageError naming the file."""
    _refused(bombs["png_folder"], "bomb.png")


def test_pixel_limit_is_configurable_on_every_path(tmp_path):
    """#15.4: max_image_pixels is one limit for the batched JPEG path, the PIL path and the
    stream reader; None lifts it."""
    root = _folder(tmp_path / "f", {"a.jpg": _jpeg((20, 10)), "b.png": _png_rgb((20, 10))})
    for name in ("a.jpg", "b.png"):
        with pytest.raises(BadImageError, match=rf"{name}.*200 pixels.*max_image_pixels=199"):
            read_image(root / name, max_image_pixels=199)
    with pytest.raises(BadImageError, match=r"a\.jpg.*max_image_pixels=199"):
        load_image_folder(root, image_size=8, cache_dir=tmp_path / "c", max_image_pixels=199)
    assert len(load_image_folder(root, 8, cache_dir=tmp_path / "c", max_image_pixels=200)) == 2
    assert len(load_image_folder(root, 8, cache_dir=tmp_path / "c2", max_image_pixels=None)) == 2
    files = ImageFiles.from_folder(root, max_image_pixels=199, skip_bad_files=True)
    with pytest.raises(BadImageError, match="cannot be decoded"):
        files[0]


def test_pixel_limit_skip_keeps_the_small_images(tmp_path):
    """#15.4: a large image over a configured limit is skipped and counted, the rest decoded."""
    root = _folder(tmp_path / "f", {"big.jpg": _jpeg((64, 64)), "small.jpg": _jpeg((8, 8))})
    ds = load_image_folder(
        root, 8, cache_dir=tmp_path / "c", skip_bad_files=True, max_image_pixels=1000
    )
    assert len(ds) == 1 and [Path(s).name for s in ds.skipped] == ["big.jpg"]


def test_zero_byte_jpg_is_named_or_skipped(tmp_path):
    """#15.15: a 0-byte .jpg made the folder unusable ("both buffer length (0) and count (-1)
    must not be 0"), with no file named and --skip-bad-files not helping."""
    root = _folder(tmp_path / "f", {"empty.jpg": b"", "good.jpg": _jpeg()})
    with pytest.raises(BadImageError, match=r"empty\.jpg.*--skip-bad-files"):
        load_image_folder(root, cache_dir=tmp_path / "c")
    ds = load_image_folder(root, cache_dir=tmp_path / "c", skip_bad_files=True)
    assert len(ds) == 1 and [Path(s).name for s in ds.skipped] == ["empty.jpg"]


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".gif", ".webp"])
def test_zero_byte_file_streamed_is_named_or_skipped(tmp_path, suffix):
    """#15.15: with --stream a 0-byte .jpg/.png/.gif/.webp raised the raw buffer error."""
    root = _folder(tmp_path / "f", {f"a{suffix}": b"", "b.png": _png_rgb()})
    with pytest.raises(BadImageError, match=rf"a\{suffix}.*--skip-bad-files"):
        read_image(root / f"a{suffix}")
    ds = ImageFiles.from_folder(root, skip_bad_files=True)
    with pytest.warns(UserWarning, match=rf"a\{suffix}"):
        (image,), _, _ = ds[0]
    assert image.shape == (3, 8, 8) and ds.skipped == [str(root / f"a{suffix}")]


def test_pils_own_bomb_check_yields_to_the_configured_limit(tmp_path, monkeypatch):
    """#15.15 / #15.4: PIL's decompression-bomb check raised a raw DecompressionBombError; the
    configured limit is now the one that applies (PIL's is raised to it), as a BadImageError
    naming the file, skippable; max_image_pixels=None lifts it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # a user's setting, below ours
    root = _folder(tmp_path / "f", {"bomb.bmp": _bmp((10, 10)), "good.png": _png_rgb((1, 1))})
    with pytest.raises(BadImageError, match=r"bomb\.bmp.*10x10 = 100 pixels.*=50"):
        load_image_folder(root, 8, cache_dir=tmp_path / "c", max_image_pixels=50)
    ds = load_image_folder(
        root, 8, cache_dir=tmp_path / "c", skip_bad_files=True, max_image_pixels=50
    )
    assert [Path(s).name for s in ds.skipped] == ["bomb.bmp"]
    ds = load_image_folder(root, 8, cache_dir=tmp_path / "c", max_image_pixels=None)
    assert len(ds) == 2 and not ds.skipped


def _bmp(size) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size).save(buf, "BMP")
    return buf.getvalue()


def test_top_level_images_beside_a_sub_folder_are_refused(tmp_path):
    """#15.8: one stray sub-folder switched a flat folder to class folders and silently dropped
    every top-level image. Now the ambiguity is refused, naming both."""
    root = _folder(tmp_path / "f", {f"{i}.png": _png_rgb() for i in range(3)})
    _folder(root, {"stray/x.png": _png_rgb()})
    with pytest.raises(BadImageError, match=r"3 images at the top level.*sub-folders stray"):
        load_image_folder(root, cache_dir=tmp_path / "c")
    with pytest.raises(BadImageError, match=r"3 images at the top level"):
        ImageFiles.from_folder(root)


def test_directory_symlink_in_a_flat_folder_is_refused(tmp_path):
    """#15.8: a directory symlink counted as a class folder too."""
    other = _folder(tmp_path / "other", {"x.png": _png_rgb()})
    root = _folder(tmp_path / "f", {f"{i}.png": _png_rgb() for i in range(2)})
    (root / "link").symlink_to(other, target_is_directory=True)
    with pytest.raises(BadImageError, match=r"2 images at the top level.*sub-folders link"):
        load_image_folder(root, cache_dir=tmp_path / "c")


def test_top_level_images_beside_train_split_are_refused(tmp_path):
    """#15.8: root/train + root/test used, images at root's top level silently ignored."""
    root = _folder(tmp_path / "f", {"train/a/0.png": _png_rgb(), "test/a/0.png": _png_rgb()})
    _folder(root, {"lost.png": _png_rgb()})
    with pytest.raises(BadImageError, match=r"1 images at the top level.*sub-folders test, train"):
        load_image_data(str(root))


def test_truncated_decode_cache_is_rebuilt_with_a_warning(tmp_path):
    """#15.10: a truncated cache file broke every later run of the folder with a raw traceback."""
    root = _folder(tmp_path / "f", {f"{i}.png": _png_rgb() for i in range(3)})
    first = load_image_folder(root, cache_dir=tmp_path / "c")
    (cached,) = (tmp_path / "c").glob("*.safetensors")
    cached.write_bytes(cached.read_bytes()[:50])
    with pytest.warns(UserWarning, match=rf"{cached.name}.*decoding the folder again"):
        again = load_image_folder(root, cache_dir=tmp_path / "c")
    assert torch.equal(again.inputs, first.inputs)
    assert torch.equal(load_image_folder(root, cache_dir=tmp_path / "c").inputs, first.inputs)


def test_swapped_same_size_images_with_preserved_mtimes_miss_the_cache(tmp_path):
    """#15.10: the cache was keyed on names, sizes and mtimes: swapping two same-size images
    (mtimes preserved) trained on stale pixels. Now keyed on content."""
    a, b = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    root = tmp_path / "f"
    root.mkdir()
    a.save(root / "a.bmp")
    b.save(root / "b.bmp")
    first = load_image_folder(root, cache_dir=tmp_path / "c")
    times = {p: os.stat(p).st_mtime_ns for p in (root / "a.bmp", root / "b.bmp")}
    b.save(root / "a.bmp")
    a.save(root / "b.bmp")
    for p, t in times.items():
        os.utime(p, ns=(t, t))
    swapped = load_image_folder(root, cache_dir=tmp_path / "c")
    assert torch.equal(swapped.inputs[0], first.inputs[1])
    assert torch.equal(swapped.inputs[1], first.inputs[0])


def test_stream_counts_a_bad_file_once(tmp_path):
    """#15.12: --stream --skip-bad-files counted one bad file once per read (1 file -> 4)."""
    root = _folder(tmp_path / "f", {"0.jpg": b"junk", "1.png": _png_rgb(), "2.png": _png_rgb()})
    ds = ImageFiles.from_folder(root, skip_bad_files=True)
    with pytest.warns(UserWarning):
        for _ in range(4):
            ds[0]
    assert ds.skipped == [str(root / "0.jpg")]


def test_non_utf8_corpus_names_file_and_line(tmp_path):
    """#15.16: a Latin-1 corpus raised a bare UnicodeDecodeError; now the file and line (an
    error, not a silent replacement: the text would train as something else)."""
    path = tmp_path / "c.txt"
    path.write_bytes(b"one\ntwo\ncaf\xe9\nfour\n")
    with pytest.raises(ValueError, match=r"c\.txt:3: not UTF-8.*iconv"):
        read_corpus(path)


def test_non_utf8_far_into_a_gzip_corpus_names_the_line(tmp_path):
    """#15.16: the line is exact beyond the decoder's first chunk, in a .gz too."""
    path = tmp_path / "c.gz"
    path.write_bytes(gzip.compress(b"ok line\n" * 5000 + b"bad \xff\n"))
    with pytest.raises(ValueError, match=r"c\.gz:5001: not UTF-8"):
        read_corpus(path)


def test_fake_gz_is_named(tmp_path):
    """#15.16: a plain file named .gz raised gzip.BadGzipFile (a traceback in the CLI)."""
    path = tmp_path / "corpus.gz"
    path.write_text("plain text\n")
    with pytest.raises(ValueError, match=r"corpus\.gz: not a valid gzip file.*\.gz suffix"):
        read_corpus(path)


def test_empty_corpus_says_it_has_no_sentences(tmp_path):
    """#15.16: an empty corpus surfaced later as "lower batch_size to <= 0"."""
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n")
    with pytest.raises(ValueError, match=r"the corpus .*empty\.txt has no sentences"):
        read_corpus(path)


def test_non_utf8_pairs_file_names_file_and_line(tmp_path):
    """#15.16: the supervised SimCSE pairs file, same rule."""
    path = tmp_path / "p.tsv"
    path.write_bytes(b"a\tb\n\xff\tc\n")
    with pytest.raises(ValueError, match=r"p\.tsv:2: not UTF-8"):
        read_pairs(path)


def test_non_utf8_labeled_file_names_file_and_line(tmp_path):
    """#15.16: labeled sentences (`label<TAB>text`), same rule."""
    path = tmp_path / "l.tsv"
    path.write_bytes(b"pos\tgood\nneg\tba\xe9d\n")
    with pytest.raises(ValueError, match=r"l\.tsv:2: not UTF-8"):
        read_labeled(path)


def test_non_utf8_labels_csv_names_file_and_line(tmp_path):
    """#15.16: an image folder's labels.csv, same rule (a BadImageError the CLI prints)."""
    root = _folder(tmp_path / "f", {"a.png": _png_rgb(), "labels.csv": b"a.png,caf\xe9\n"})
    with pytest.raises(BadImageError, match=r"labels\.csv:1: not UTF-8"):
        load_image_folder(root, cache_dir=tmp_path / "c")
