"""The batched JPEG path gives PIL's pixels, and hands PIL what it should not decode."""

import numpy as np
import pytest
from PIL import Image

from selfsup.data import folder, jpeg
from selfsup.data.folder import decode_image, load_image_folder

pytestmark = pytest.mark.skipif(jpeg.decode_jpeg is None, reason="torchvision lacks decode_jpeg")


def _jpeg(path, size=(16, 12), mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert(mode).save(
        path, quality=85
    )
    return path


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_same_pixels_as_pil(tmp_path, mode):
    path = _jpeg(tmp_path / "a.jpg", mode=mode)
    [fast] = jpeg.decode_jpegs([path], None, max_pixels=None)
    assert fast is not None and fast.shape == (12, 16, 3)
    np.testing.assert_array_equal(fast, decode_image(path, None))


def test_resizes_and_broken_files_go_to_pil(tmp_path):
    good = _jpeg(tmp_path / "good.jpg", size=(8, 8))
    wrong_size = _jpeg(tmp_path / "big.jpg", size=(16, 12))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:40])
    out = jpeg.decode_jpegs([good, wrong_size, broken], size=8, max_pixels=None)
    assert out[0] is not None and out[1] is None and out[2] is None


def test_images_over_the_pixel_limit_go_to_pil_undecoded(tmp_path):
    """#15.4: the batched path decoded whatever the header claimed; over the limit (and empty,
    #15.15) it now leaves the file to PIL, which refuses it by name."""
    path = _jpeg(tmp_path / "a.jpg", size=(16, 12))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    out = jpeg.decode_jpegs([path, empty], None, max_pixels=16 * 12 - 1)
    assert out == [None, None]
    assert jpeg.decode_jpegs([path], None, max_pixels=16 * 12)[0] is not None
    assert jpeg.decode_file(path, max_pixels=16 * 12 - 1) is None
    assert jpeg.decode_file(empty, max_pixels=None) is None


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_dimensions_come_from_the_frame_header(tmp_path, progressive):
    """#15.4: (width, height) from the SOF marker, without decoding; None for what is not a
    JPEG header (PIL then names the file)."""
    path = tmp_path / "a.jpg"
    Image.new("RGB", (37, 21)).save(path, progressive=progressive)
    data = path.read_bytes()
    assert jpeg.jpeg_dimensions(data) == (37, 21)
    assert jpeg.jpeg_dimensions(data[:20]) is None
    assert jpeg.jpeg_dimensions(b"") is None and jpeg.jpeg_dimensions(b"not a jpeg") is None
    assert jpeg.header_dimensions(data, ".JPG") == (37, 21)


def test_folder_takes_the_fast_path_for_jpegs(tmp_path, monkeypatch):
    (tmp_path / "set" / "c").mkdir(parents=True)
    for i in range(3):
        _jpeg(tmp_path / "set" / "c" / f"{i}.jpg", seed=i)
    expected = [decode_image(tmp_path / "set" / "c" / f"{i}.jpg", None) for i in range(3)]

    def pil_refused(path, size, max_pixels=None):
        raise AssertionError(f"PIL was asked to decode {path}")

    monkeypatch.setattr(folder, "decode_image", pil_refused)
    ds = load_image_folder(tmp_path / "set", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(ds.inputs.permute(0, 2, 3, 1).numpy(), np.stack(expected))
