"""Typed settings of one training run (the CLI fills them from YAML; the engine reads them)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def default_workers() -> int:
    """DataLoader workers for reading files: none on 2 cores or fewer, else one per core left
    after the training process, at most 8. On 2 cores (benchmarks/stream_folder.py, CIFAR JPEGs,
    ResNet-18/4) the step ran at 0.95x the in-memory rate reading in the main process and at
    0.78-0.88x with 1-2 workers: workers and the step's own threads then fight for the cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 0 if (cores or 1) <= 2 else min(8, cores - 1)


COMPILE_TARGETS = ("none", "backbone", "step")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainConfig:
    """Settings of the training loop.

    batch_size is the *global* batch (all processes together); each of W processes takes
    batch_size / W. lr is the learning rate at `batch_size`; with `lr_scaling="linear"` the
    given lr is read as a base for 256 samples and multiplied by batch_size / 256 (Goyal et al.
    2017; SimCLR, MoCo, MAE state their lr this way).
    """

    epochs: float = 10.0
    steps: int | None = None  # overrides epochs when set
    batch_size: int = 256
    optimizer: str = "sgd"  # sgd | lars | adamw
    lr: float = 0.06
    lr_scaling: str = "none"  # none | linear (lr * batch_size / 256)
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.0
    warmup_steps: int | None = None  # overrides warmup_epochs when set
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    precision: str = "bf16"  # fp32 | bf16 | fp16
    channels_last: bool = True
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0
    deterministic: bool = False
    # The run folder; "" picks a new one, runs/<method>-<time> (unique). "~" is expanded.
    out_dir: str = ""
    log_every: int = 20
    checkpoint_every: int = 500  # steps; the last step is always saved
    keep_checkpoints: int = 2
    resume: bool = False
    overwrite: bool = False  # a fresh run into a folder holding a run: delete its files first
    progress: bool = True
    grad_clip: float | None = None
    sync_bn: bool = False
    # torch.compile: "none"; "backbone"; "step" (the method's whole forward - backbone, heads,
    # loss - and the deterministic half of the views). true/false read as backbone/none.
    compile: bool | str = "none"
    compile_mode: str = "default"  # torch.compile's mode; "reduce-overhead": CUDA graphs
    # DataLoader workers when images are read from files (ImageFiles); None: `default_workers()`
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "lars", "adamw"):
            raise ValueError(f"optimizer={self.optimizer!r}: use sgd, lars or adamw")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision={self.precision!r}: use fp32, bf16 or fp16")
        if self.lr_scaling not in ("none", "linear"):
            raise ValueError(f"lr_scaling={self.lr_scaling!r}: use none or linear")
        self.compile = {True: "backbone", False: "none"}.get(self.compile, self.compile)
        if self.compile not in COMPILE_TARGETS:
            raise ValueError(f"compile={self.compile!r}: use one of {', '.join(COMPILE_TARGETS)}")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(
                f"compile_mode={self.compile_mode!r}: use one of {', '.join(COMPILE_MODES)}"
            )
        self._check_numbers()
        self.out_dir = os.path.expanduser(self.out_dir)  # else "~/x" makes a folder named "~"
        if self.resume and self.overwrite:
            raise ValueError("resume=true and overwrite=true: choose one (continue or replace)")

    def _check_numbers(self) -> None:
        """Ranges of the numeric settings: a bad value fails here, not steps into a run."""
        at_least_one = ("batch_size", "log_every", "checkpoint_every", "keep_checkpoints")
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be an integer >= 1")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps={self.steps}: must be >= 1 (or null to train by epochs)")
        if self.steps is None and self.epochs <= 0:
            raise ValueError(f"epochs={self.epochs}: must be > 0 (or set steps)")
        for name in ("lr", "weight_decay", "momentum", "warmup_epochs", "min_lr_ratio"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 0")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError(f"warmup_steps={self.warmup_steps}: must be >= 0 (or null)")
        if self.grad_clip is not None and self.grad_clip < 0:
            raise ValueError(
                f"grad_clip={self.grad_clip}: must be > 0 (the max gradient norm), or null / 0 "
                "for no clipping"
            )
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas={list(self.betas)}: must be two numbers in [0, 1)")

    @property
    def loader_workers(self) -> int:
        return default_workers() if self.workers is None else self.workers

    @property
    def peak_lr(self) -> float:
        return self.lr * self.batch_size / 256 if self.lr_scaling == "linear" else self.lr
