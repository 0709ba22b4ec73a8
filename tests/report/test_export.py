import importlib.util

import pytest
import torch

from selfsup.cli import main
from selfsup.encoders import create_encoder
from selfsup.engine.checkpoint import save_encoder
from selfsup.export import check_export, example_input, export_encoder, onnx_missing, run_export


@pytest.fixture
def encoder():
    torch.manual_seed(0)
    enc = create_encoder("convnet_small", width=4)
    enc.train()  # export must switch batch norm to its running statistics
    with torch.no_grad():  # make the running statistics non-trivial
        enc(torch.randn(16, 3, 16, 16))
    return enc.eval()


def test_torchscript_gives_the_same_outputs_at_any_batch_size(encoder, tmp_path):
    path = export_encoder(encoder, "torchscript", tmp_path / "enc.pt", image_size=16)
    assert check_export(encoder, example_input(encoder, 16), path) < 1e-5
    x = torch.randn(5, 3, 16, 16)  # another batch size than the traced example
    assert torch.allclose(run_export(encoder, x, path), encoder(x), atol=1e-5)


_NO_ORT = None if importlib.util.find_spec("onnxruntime") else "onnxruntime is not installed"
_ONNX_SKIP = "; ".join(r for r in (onnx_missing(), _NO_ORT) if r)


@pytest.mark.skipif(bool(_ONNX_SKIP), reason=_ONNX_SKIP)
def test_onnx_gives_the_same_outputs(encoder, tmp_path):
    path = export_encoder(encoder, "onnx", tmp_path / "enc.onnx", image_size=16)
    assert check_export(encoder, example_input(encoder, 16), path) < 1e-4


def test_onnx_without_its_packages_says_what_to_install(encoder, tmp_path, capsys):
    if onnx_missing() is None:
        pytest.skip("onnx and onnxscript are installed")
    save_encoder(encoder, tmp_path / "encoder.safetensors")
    assert main(["export", str(tmp_path), "--format", "onnx", "--out", "x.onnx"]) == 2
    assert "pip install" in capsys.readouterr().err


def test_export_cli_from_a_run_folder(encoder, tmp_path, capsys):
    save_encoder(encoder, tmp_path / "encoder.safetensors")
    out = tmp_path / "exported" / "enc.pt"
    assert main(["export", str(tmp_path), "--out", str(out), "--image-size", "16"]) == 0
    assert "max difference" in capsys.readouterr().out
    x = torch.randn(3, 3, 16, 16)
    assert torch.allclose(run_export(encoder, x, out), encoder(x), atol=1e-5)


def test_unknown_format_is_an_error(encoder, tmp_path):
    with pytest.raises(ValueError, match="torchscript"):
        export_encoder(encoder, "tflite", tmp_path / "x", 16)
