"""Metrics to JSONL (one object per log step), CSV (at close) and TensorBoard, on rank 0 only."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

from selfsup.engine.run_dir import append_text, check_no_links, write_atomic


class MetricsWriter:
    """Append-only metrics log of a run directory.

    On resume from step s (the step of the checkpoint), lines with step > s are dropped first:
    the row of step s itself was logged before its checkpoint was saved, so the log reads as
    one uninterrupted run.
    """

    def __init__(self, run_dir: Path, enabled: bool = True, resume_step: int = 0):
        self.enabled = enabled
        self.run_dir = run_dir
        self.path = run_dir / "metrics.jsonl"
        self._tb = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        check_no_links(self.path)  # before reading it: a link would read (then lose) another file
        kept = [r for r in self.read() if r.get("step", 0) <= resume_step] if resume_step else []
        # A new file (not a truncation in place): appends then go to our own file, never to
        # whatever a planted link or hard link pointed at.
        write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        try:
            from torch.utils.tensorboard import SummaryWriter

            tb = run_dir / "tensorboard"
            check_no_links(tb, run_dir)
            # purge_step drops events at steps >= it: the resumed step's own event stays.
            self._tb = SummaryWriter(str(tb), purge_step=resume_step + 1 if resume_step else None)
        except ImportError:  # tensorboard is a declared dependency; tolerate a minimal install
            self._tb = None

    def write(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        append_text(self.path, json.dumps({"step": step, **metrics}) + "\n")
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, int | float):
                    self._tb.add_scalar(k, v, step)

    def read(self) -> list[dict]:
        return read_metrics(self.path)

    def close(self) -> None:
        if not self.enabled:
            return
        rows = self.read()
        keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "step", k))
        text = io.StringIO(newline="")
        w = csv.DictWriter(text, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
        write_atomic(self.path.with_suffix(".csv"), text.getvalue())
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: Path) -> list[dict]:
    """Rows of a metrics.jsonl; a torn last line (a run killed mid-write) is dropped with a
    warning, a bad line before it is an error naming the file and line."""
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                warnings.warn(f"{path}: dropping a torn last line {line[:40]!r}", stacklevel=3)
                break
            raise ValueError(
                f"{path}: line {i + 1} is not JSON ({e}); delete or fix that line."
            ) from e
        if not isinstance(row, dict):
            raise ValueError(f"{path}: line {i + 1} is not a JSON object; delete or fix it.")
        rows.append(row)
    return rows
