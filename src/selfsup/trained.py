"""A trained run back in one call: `selfsup.load(run_dir)` -> encoder (+ tokenizer) in eval mode.

    model = selfsup.load("runs/simclr-digits-...")
    z = model.encode(images)                     # uint8 (N, C, H, W) -> (N, D)
    text = selfsup.load("runs/simcse-corpus-...")
    z = text.encode(["A man plays a guitar."])   # sentences -> (N, D); text.tokenizer too

The run folder's config.yaml names the modality; the modality reads back its own files (a
tokenizer) and turns raw inputs into the encoder's batch as the run's evaluation did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from selfsup.config import ConfigError, RunConfig, apply
from selfsup.engine.checkpoint import load_encoder
from selfsup.modalities import Modality, create_modality
from selfsup.safe_yaml import YAMLFileError, read_yaml_file


def weights_path(run: str | Path) -> Path:
    """encoder.safetensors of a run folder, or the .safetensors file itself."""
    path = Path(run)
    weights = path / "encoder.safetensors" if path.is_dir() else path
    if not weights.exists():
        raise FileNotFoundError(
            f"{weights}: not found. Pass a run folder of `selfsup pretrain` (it holds "
            "encoder.safetensors) or the .safetensors file itself."
        )
    return weights


def saved_config(run_dir: Path) -> RunConfig:
    """The run's config.yaml as a RunConfig (image defaults when the folder has none)."""
    path = run_dir / "config.yaml"
    cfg = RunConfig()
    if not path.exists():
        return cfg
    try:
        data = read_yaml_file(path)
    except YAMLFileError as e:
        raise ConfigError(str(e)) from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings; is this a run folder?")
    return apply(cfg, data, where=f" in {path}")


@dataclass
class Trained:
    """A run's encoder in eval mode with what it needs to read raw inputs (its modality)."""

    encoder: nn.Module
    modality: Modality
    config: RunConfig
    run_dir: Path

    @property
    def tokenizer(self) -> Any:
        """The text run's tokenizer (None for other kinds of data)."""
        return getattr(self.modality, "tokenizer", None)

    @torch.no_grad()
    def encode(self, raw: Any, batch_size: int = 256) -> torch.Tensor:
        """Raw inputs (uint8 images (N, C, H, W); a list of sentences) -> (N, D) float32 on
        CPU, in batches of `batch_size`, in eval mode (no dropout, BatchNorm's running stats)."""
        self.encoder.eval()
        device = next(self.encoder.parameters()).device
        out = []
        for start in range(0, len(raw), batch_size):
            x = self.modality.preprocess(raw[start : start + batch_size])
            out.append(self.encoder(x.to(device)).float().cpu())
        return torch.cat(out) if out else torch.empty(0, getattr(self.encoder, "num_features", 0))


def load(run: str | Path, device: str | torch.device = "cpu") -> Trained:
    """The encoder of a run folder (or of its encoder.safetensors) ready for `encode`."""
    weights = weights_path(run)
    run_dir = weights.parent
    cfg = saved_config(run_dir)
    modality = create_modality(cfg)
    modality.attach(run_dir)
    encoder = load_encoder(weights).to(device).eval()
    return Trained(encoder, modality, cfg, run_dir)
