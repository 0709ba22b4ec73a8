"""A small real `pretrain` run on CPU for the report tests (shared by their fixtures)."""

from __future__ import annotations

from pathlib import Path

from selfsup.config import load_config
from selfsup.run import pretrain


def small_run(out: Path, overrides: list[str]) -> Path:
    """Run `pretrain` quietly on the CPU into `out` with the config `overrides`; return `out`."""
    common = ["train.progress=false", "train.device=cpu", f"train.out_dir={out}"]
    pretrain(load_config(None, [*overrides, *common]), log=lambda *a: None)
    return out
