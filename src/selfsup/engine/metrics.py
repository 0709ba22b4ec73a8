"""Metrics to JSONL (one object per log step), CSV (at close) and TensorBoard, on rank 0 only."""

from __future__ import annotations

import csv
import json
from pathlib import Path


class MetricsWriter:
    """Append-only metrics log of a run directory.

    On resume from step s, lines with step >= s are dropped first, so the log reads as one
    uninterrupted run.
    """

    def __init__(self, run_dir: Path, enabled: bool = True, resume_step: int = 0):
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self._tb = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        kept = [r for r in self.read() if r.get("step", 0) < resume_step] if resume_step else []
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step or None)
        except ImportError:  # tensorboard is a declared dependency; tolerate a minimal install
            self._tb = None

    def write(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"step": step, **metrics}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, int | float):
                    self._tb.add_scalar(k, v, step)

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def close(self) -> None:
        if not self.enabled:
            return
        rows = self.read()
        keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "step", k))
        with open(self.path.with_suffix(".csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
        if self._tb is not None:
            self._tb.close()
