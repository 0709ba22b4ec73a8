"""Checkpoints that survive a kill: written to a temporary file, then renamed.

A full checkpoint (model, optimizer, RNG states, step, config) is a `torch.save` dict of tensors
and plain Python values, loaded back with `weights_only=True` so a crafted pickle cannot run
code. Final encoder weights are safetensors plus a JSON of the registry name and kwargs.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

_CKPT = re.compile(r"^checkpoint-(\d+)\.pt$")


def atomic_torch_save(obj: dict, path: Path) -> None:
    """torch.save to `path.tmp`, fsync, then os.replace: readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of `checkpoint-<step>.pt` files in `run_dir`, oldest first."""
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := _CKPT.match(p.name))]
    return sorted(found)


def save_checkpoint(state: dict, run_dir: Path, step: int, keep: int = 2) -> Path:
    """Write `checkpoint-<step>.pt` atomically and delete all but the newest `keep`."""
    path = run_dir / f"checkpoint-{step:08d}.pt"
    atomic_torch_save(state, path)
    for _, old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a full checkpoint with `weights_only=True` (no code from the file is executed)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle.UnpicklingError and friends: say what to do
        raise ValueError(
            f"{path}: not a loadable selfsup checkpoint ({type(e).__name__}: {e}). Only "
            "weights-only checkpoints are loaded; a file that needs arbitrary code is refused."
        ) from e


def latest_valid_checkpoint(run_dir: Path) -> tuple[dict, Path] | None:
    """The newest checkpoint in `run_dir` that loads, skipping corrupt ones; None if none."""
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            return load_checkpoint(path), path
        except ValueError as e:  # torn or crafted: say so, then fall back to an older one
            warnings.warn(f"skipping {e}", stacklevel=2)
    return None


def save_encoder(encoder: nn.Module, path: Path) -> None:
    """Encoder weights as safetensors at `path` and its registry name/kwargs at `path`.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, path)
    meta = {
        "encoder": getattr(encoder, "encoder_name", type(encoder).__name__),
        "kwargs": getattr(encoder, "encoder_kwargs", {}),
        "num_features": getattr(encoder, "num_features", None),
    }
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2))


def load_encoder(path: Path) -> nn.Module:
    """Rebuild an encoder from `save_encoder`'s safetensors + JSON (no pickle involved)."""
    from selfsup.encoders import create_encoder

    meta_path = Path(path).with_suffix(".json")
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: missing; it names the encoder for {path}.")
    meta = json.loads(meta_path.read_text())
    encoder = create_encoder(meta["encoder"], **meta["kwargs"])
    try:
        weights = load_file(str(path))
    except Exception as e:  # SafetensorError on a pickle or torn file: name it, run nothing
        raise ValueError(
            f"{path}: not a safetensors file ({type(e).__name__}: {e}). Encoder weights are "
            "only read as safetensors; re-export them with selfsup or safetensors.torch.save_file."
        ) from e
    encoder.load_state_dict(weights)
    return encoder
