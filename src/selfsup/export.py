"""Export a trained encoder for use without selfsup: TorchScript or ONNX.

The run folder already holds the portable form: encoder.safetensors + encoder.json (registry
name and kwargs; `selfsup.engine.checkpoint.load_encoder`). These exporters trace the encoder
on an example batch and write one file that takes the encoder's input (normalized images
(N, 3, H, W) float32, or token ids (N, L) long) and returns (N, num_features) features;
`check_export` compares it with the original.
The batch dimension is dynamic in both; H and W are those of the example for ONNX.
"""

from __future__ import annotations

import importlib.util
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

FORMATS = ("torchscript", "onnx")


@contextmanager
def _quiet_jit():
    """Silence torch.jit's deprecation notices: TorchScript is asked for by name here (its
    files load in C++ libtorch without Python, which is why users want it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        # Shape checks seen while tracing (a text encoder's max length) are data-independent.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def onnx_missing() -> str | None:
    """Why ONNX export cannot run here (a missing package), or None when it can."""
    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        return f"ONNX export needs {' and '.join(missing)} (pip install {' '.join(missing)})"
    return None


def example_input(encoder: nn.Module, image_size: int, batch: int = 2) -> torch.Tensor:
    """A seeded (batch, in_chans, size, size) float32 example on the encoder's device."""
    device = next(encoder.parameters()).device
    g = torch.Generator().manual_seed(0)
    chans = getattr(encoder, "in_chans", 3)
    return torch.randn(batch, chans, image_size, image_size, generator=g).to(device)


@torch.no_grad()
def export_torchscript(encoder: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """torch.jit.trace `encoder` (in eval mode) on `example` (N, C, H, W); save to `path`."""
    encoder.eval()
    with _quiet_jit():
        traced = torch.jit.trace(encoder, example, check_trace=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(path))
    return path


def export_onnx(encoder: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """torch.onnx.export (the torch.export-based exporter) with a dynamic batch dimension."""
    why = onnx_missing()
    if why:
        raise ImportError(why)
    encoder.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dims = {0: torch.export.Dim("batch")}
    if example.dim() == 2:  # token ids (N, L): sentences come in any length
        dims[1] = torch.export.Dim("length", min=2, max=getattr(encoder, "max_len", 512))
    torch.onnx.export(
        encoder,
        (example,),
        str(path),
        input_names=["inputs"],
        output_names=["features"],
        dynamic_shapes=(dims,),
        dynamo=True,
    )
    return path


def run_export(encoder: nn.Module, example: torch.Tensor, path: Path) -> torch.Tensor:
    """Load the exported file at `path` and run it on `example` -> (N, D) features (CPU)."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime  # optional: only for checking an ONNX file

        sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (out,) = sess.run(None, {sess.get_inputs()[0].name: example.cpu().numpy()})
        return torch.from_numpy(out)
    with _quiet_jit():
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(example.cpu())


@torch.no_grad()
def check_export(encoder: nn.Module, example: torch.Tensor, path: Path, atol=1e-4) -> float:
    """Max |exported(example) - encoder(example)|; raises ValueError when above `atol`."""
    encoder.eval()
    want = encoder(example).float().cpu()
    got = run_export(encoder, example, path).float()
    err = float((got - want).abs().max())
    if err > atol:
        raise ValueError(f"{path}: exported outputs differ from the encoder by {err:.2e}")
    return err


def export_encoder(
    encoder: nn.Module,
    fmt: str,
    path: Path,
    image_size: int | None = None,
    example: torch.Tensor | None = None,
) -> Path:
    """Export to `fmt` (torchscript | onnx) at `path`, traced on `example` (an input batch:
    images (N, C, H, W) float32, token ids (N, L) long), or on a (2, C, size, size) image batch."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    encoder = encoder.float().cpu().eval()
    if example is None:
        if image_size is None:
            raise ValueError("export_encoder needs an example batch or an image_size")
        example = example_input(encoder, image_size)
    example = example.cpu()
    fn = export_torchscript if fmt == "torchscript" else export_onnx
    return fn(encoder, example, path)
