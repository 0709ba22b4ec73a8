"""The one training loop: one process or torchrun DDP through the same code path.

Per step: index a batch of the in-memory data, make the views on the training device, run the
method under autocast, step the optimizer, let the method update its targets. No host syncs
in the step except on log/checkpoint steps (`.item()` stalls an accelerator).
"""

from __future__ import annotations

import functools
import io
import random
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from selfsup import dist
from selfsup.data.memory import InMemoryDataset
from selfsup.data.stream import ImageFiles
from selfsup.engine.batches import (
    DatasetBatches,
    EpochBatches,
    MemoryBatches,
    StreamBatches,
    check_map_dataset,
)
from selfsup.engine.checkpoint import (
    checkpoint_path,
    encoder_meta,
    list_checkpoints,
    save_checkpoint,
    save_encoder,
    state_mismatch,
    valid_checkpoints,
)
from selfsup.engine.config import TrainConfig
from selfsup.engine.metrics import MetricsWriter
from selfsup.engine.optim import build_optimizer, set_weight_decay
from selfsup.engine.run_dir import RunDirError, claim_run_dir, timestamped_run_dir
from selfsup.engine.schedule import warmup_cosine
from selfsup.methods.base import Method, StepOutput

Views = Callable[..., list[torch.Tensor]]
# Leaf keys of the run config (any section) that may change between a run and its resume.
RESUME_FREE_KEYS = {
    "resume", "overwrite", "progress", "log_every", "device", "checkpoint_every",
    "keep_checkpoints", "out_dir", "workers", "compile", "compile_mode",
}  # fmt: skip


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or Inf; the last good checkpoint is left untouched."""


class Callback:
    """Hooks into the loop. `on_log` may add entries to `metrics` before they are written."""

    def on_log(self, step: int, method: Method, out: StepOutput, metrics: dict) -> None:
        """Called on log steps (every `log_every` steps and the last)."""

    def on_end(self, method: Method, run_dir: Path) -> None:
        """Called once after the last step (all ranks)."""


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    wall_time: float
    samples_per_second: float
    last_metrics: dict = field(default_factory=dict)
    resumed_from: int = 0  # the checkpoint step training continued from (0: a fresh start)


def resolve_device(name: str) -> torch.device:
    """ "auto" (this rank's GPU, else the CPU) or a torch device name that exists here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist.local_rank())
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(
            f"device {name!r}: not a device name; use auto, cpu, cuda, cuda:N or mps"
        ) from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: no CUDA GPU is visible here; use --device cpu or auto")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device {name!r}: only {torch.cuda.device_count()} CUDA devices are visible"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r}: MPS is not available here; use --device cpu or auto")
    return device


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def rng_state(view_gen: torch.Generator) -> dict:
    state = {
        "python": random.getstate(),
        # numpy's state holds an ndarray, which weights_only loading refuses: store a tensor.
        "numpy": _numpy_state_as_tensors(),
        "torch": torch.get_rng_state(),
        "views": view_gen.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_state_as_tensors() -> tuple:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return name, torch.from_numpy(keys.copy()), int(pos), int(has_gauss), float(cached)


def set_rng_state(state: dict, view_gen: torch.Generator) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    view_gen.set_state(state["views"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def total_steps(cfg: TrainConfig, steps_per_epoch: int) -> tuple[int, int]:
    """(total steps, warmup steps) from epochs or explicit steps."""
    total = cfg.steps if cfg.steps is not None else max(1, round(cfg.epochs * steps_per_epoch))
    warm = (
        cfg.warmup_steps
        if cfg.warmup_steps is not None
        else round(cfg.warmup_epochs * steps_per_epoch)
    )
    return total, min(warm, total)


def autocast(device: torch.device, precision: str):
    """The forward's precision context. bf16 on a CPU without fast bf16 kernels (no AVX-512 /
    AMX: oneDNN then emulates bf16, slower than fp32) falls back to fp32, with one warning."""
    if precision == "bf16" and device.type == "cpu" and not cpu_has_fast_bf16():
        precision = "fp32"
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """oneDNN's own test for native bf16 (AVX-512 BF16 / AMX or AVX-512 core); warns once if not."""
    fast = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if not fast:
        warnings.warn(
            "this CPU has no fast bf16 kernels: running in fp32 instead of bf16 "
            "(set train.precision=fp32 to silence this)",
            stacklevel=3,
        )
    return fast


def fit(
    method: Method,
    train: InMemoryDataset | ImageFiles | Dataset,
    views: Views,
    cfg: TrainConfig,
    callbacks: Sequence[Callback] = (),
    run_config: dict | None = None,
    sampler: EpochBatches | None = None,
    run_dir: Path | None = None,
) -> TrainResult:
    """Train `method` on `train` with `views` made per batch; return where and how it went.

    train: an InMemoryDataset (indexed on the device; views(x (B, C, H, W), generator)),
    ImageFiles (read by `cfg.loader_workers` DataLoader workers, which apply its transform;
    views then gets that transform's list of per-view batches, e.g. `PrecroppedViews`), or a
    user's map-style dataset: any object with `__len__` and `__getitem__` (a
    `torch.utils.data.Dataset`) whose `train[i]` is one raw sample tensor or numpy array (uint8
    image (C, H, W), 1-D token ids, a series), alone or as `(sample, target, ...)`. Its samples
    are read by `cfg.loader_workers` workers and stacked to x (B, ...) (token ids right-padded
    with 0 to (B, L_max)); views(x, generator) as for an InMemoryDataset; the targets are
    (B,) long, or None when the samples come without targets (or all -1). The same seed reads
    the same samples per step as an InMemoryDataset of the same rows (`DatasetBatches`).
    Anything else: TypeError.
    run_config: the resolved configuration saved with every checkpoint; `cfg.resume` refuses a
    checkpoint whose saved config differs on any key outside RESUME_FREE_KEYS.
    sampler: batch index source (default `EpochBatches`; e.g. a class-balanced P x K sampler).
    run_dir: a folder `claim_run_dir` already claimed for this run (pretrain claims it before
    writing config.yaml); None: claim `cfg.out_dir` here ("" picks runs/<method>-<time>).
    """
    if not isinstance(train, InMemoryDataset | ImageFiles):
        check_map_dataset(train)  # TypeError before a run folder is claimed
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed + dist.rank(), cfg.deterministic)
    if run_dir is None:
        default = timestamped_run_dir(type(method).__name__.lower())
        run_dir = claim_run_dir(cfg.out_dir, cfg.resume, cfg.overwrite, default)
    run_config = run_config or {}
    main = dist.is_main()
    savable = _encoder_savable(method.backbone, run_dir / "encoder.safetensors")

    method.to(device)
    if cfg.channels_last and device.type != "mps":
        method.to(memory_format=torch.channels_last)
    model: nn.Module = method
    if dist.world_size() > 1:
        if cfg.sync_bn:
            if device.type != "cuda":  # torch's SyncBatchNorm has GPU kernels only
                raise ValueError("train.sync_bn=true needs CUDA devices; set it false on CPU")
            method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
        model = nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None
        )
    optimizer = build_optimizer(method, cfg)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    batches = sampler or EpochBatches(
        len(train), cfg.batch_size, cfg.seed, dist.rank(), dist.world_size()
    )
    steps, warmup = total_steps(cfg, batches.steps_per_epoch)
    view_gen = torch.Generator(device=device).manual_seed(cfg.seed * 7919 + dist.rank())

    # good: the newest checkpoint known finite (the one resumed from, then each one saved)
    start, good = _maybe_resume(cfg, run_dir, run_config, method, optimizer, scaler, view_gen)
    if isinstance(train, ImageFiles):
        source = StreamBatches(train, batches, device, start, steps, cfg.loader_workers)
    elif isinstance(train, InMemoryDataset):
        source = MemoryBatches(train, batches, device)
    else:
        workers = cfg.loader_workers
        source = DatasetBatches(train, batches, device, start, steps, workers, cfg.seed)
    writer = MetricsWriter(run_dir, enabled=main, resume_step=start)
    _compile(method, views, cfg)
    step_fn = _forward_step(cfg, model)

    from tqdm.auto import tqdm

    bar = tqdm(total=steps, initial=start, disable=not (main and cfg.progress), desc="pretrain")
    bad = torch.zeros((), dtype=torch.bool, device=device)
    last_good, metrics, t0, seen = start, {}, time.perf_counter(), 0
    method.train()
    for step in range(start, steps):
        lr = warmup_cosine(step, steps, cfg.peak_lr, warmup, cfg.peak_lr * cfg.min_lr_ratio)
        for g in optimizer.param_groups:
            g["lr"] = lr
        wd = method.weight_decay(step, steps, cfg.weight_decay)
        if wd is not None:
            set_weight_decay(optimizer, wd)
        x, y, n = source.next(step)
        out = step_fn(x, y, views, view_gen, device)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(out.loss).backward()
        scaler.unscale_(optimizer)  # true gradients for clipping and after_backward (fp16)
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(method.parameters(), cfg.grad_clip)
        method.after_backward(step, steps)
        scaler.step(optimizer)
        scaler.update()
        method.after_step(step, steps)
        bad |= ~torch.isfinite(out.loss.detach())
        seen += n * dist.world_size()
        bar.update(1)

        is_last = step + 1 == steps
        save = is_last or (step + 1) % cfg.checkpoint_every == 0
        if save or (step + 1) % cfg.log_every == 0:
            if save:  # a finite loss can still leave inf/NaN weights (overflowing gradient)
                bad |= ~_all_finite(method)
            # One host sync per log step, not per step; all ranks agree, so all stop together.
            if bool(dist.all_reduce_mean(bad.float()) > 0):
                raise _nonfinite(step, last_good, cfg, good)
            last_good = step + 1
            metrics = {
                "loss": out.loss.item(),
                "lr": lr,
                "epoch": (step + 1) / batches.steps_per_epoch,
                **{k: float(v) for k, v in out.logs.items()},
            }
            for cb in callbacks:
                cb.on_log(step + 1, method, out, metrics)
            writer.write(step + 1, metrics)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", lr=f"{lr:.3g}")
        rng = _all_rng_states(view_gen) if save else None  # a collective: every rank joins
        if save and main:
            state = {
                "step": step + 1,
                "model": method.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng,
                "config": run_config,
            }
            save_checkpoint(state, run_dir, step + 1, cfg.keep_checkpoints)
        if save:
            good = checkpoint_path(run_dir, step + 1)
    bar.close()
    wall = time.perf_counter() - t0
    writer.close()
    if main and savable:
        save_encoder(method.backbone, run_dir / "encoder.safetensors")
    for cb in callbacks:
        cb.on_end(method, run_dir)
    dist.barrier()
    return TrainResult(run_dir, steps, wall, seen / max(wall, 1e-9), metrics, start)


def _encoder_savable(encoder: nn.Module, path: Path) -> bool:
    """Whether `save_encoder` can write a loadable encoder file for `encoder`, decided before
    training rather than after it. A user's own encoder class (not built by `create_encoder`)
    still trains; it gets a warning now, and its weights live in the checkpoints."""
    try:
        encoder_meta(encoder, path)
    except ValueError as e:
        warnings.warn(
            f"{e} Training goes on, but {path.name} will not be written: the checkpoints hold the "
            "weights (state['model']), or register the encoder to get a loadable file.",
            stacklevel=3,
        )
        return False
    return True


def _compile(method: Method, views: Views, cfg: TrainConfig) -> None:
    """torch.compile what `cfg.compile` names, in place (state_dict keys stay the plain ones).

    "step" compiles the method's whole forward (backbone, heads, loss; their backward follows)
    and the views' deterministic half: on a GPU at batch 512 the step was bound by launching
    the uncompiled parts from Python, not by the GPU (docs/performance.md). `compile_mode`
    applies to the model; the views compile in the default mode (no CUDA graphs: they write
    into an output buffer passed in, a mutated input that CUDA graphs skip).
    """
    module = {"backbone": method.backbone, "step": method}.get(cfg.compile)
    # A method trained again (a warm-up run, then the timed one) keeps its compiled forward.
    if module is not None and getattr(module, "_compiled_call_impl", None) is None:
        module.compile(mode=cfg.compile_mode)
    if cfg.compile == "step":
        compile_views = getattr(views, "compile", None)
        if callable(compile_views):  # batched pipelines; other callables stay eager
            compile_views()


def _forward_step(cfg: TrainConfig, model: nn.Module):
    """The forward half of a step: views (fp32, on device) then the method under autocast."""
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format

    def step(x, y, views, gen, device) -> StepOutput:
        crops = views(x, generator=gen)
        crops = [c.contiguous(memory_format=fmt) if c.ndim == 4 else c for c in crops]
        with autocast(device, cfg.precision):
            return model(crops, y)

    return step


def _maybe_resume(
    cfg, run_dir, run_config, method, optimizer, scaler, view_gen
) -> tuple[int, Path | None]:
    """(step, checkpoint path) to continue from: the newest checkpoint that loads, is finite
    and fits this model; (0, None) without `cfg.resume`."""
    if not cfg.resume:
        return 0, None
    for state, path in valid_checkpoints(run_dir):
        _check_same_config(state, run_config, path)
        try:
            _check_structure(state, method)
            step = int(state["step"])
            method.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            rng = state["rng"]  # one dict per rank (a list) under DDP: each rank its own stream
            set_rng_state(rng[dist.rank() % len(rng)] if isinstance(rng, list) else rng, view_gen)
        except (KeyError, ValueError, RuntimeError, TypeError, IndexError, AttributeError) as e:
            # An older good checkpoint overwrites whatever this one partly loaded.
            warnings.warn(
                f"skipping {path}: it does not fit this model and optimizer "
                f"({type(e).__name__}: {e}); trying an older checkpoint",
                stacklevel=3,
            )
            continue
        return step, path
    held = ", ".join(p.name for _, p in list_checkpoints(run_dir)) or "none"
    raise RunDirError(
        f"{run_dir}: nothing to resume, no checkpoint there loads, is finite and fits this model "
        f"(checkpoints: {held}; the warnings above say why each was skipped). Start a new run "
        "in another folder (drop --resume), or use --overwrite to replace this one."
    )


def _check_same_config(state: dict, run_config: dict, path: Path) -> None:
    """Refuse a checkpoint saved under other settings (leaf keys outside RESUME_FREE_KEYS)."""
    # Compare leaf keys ("train.lr"), not whole sections: `train.resume` itself always differs.
    saved, now = _flatten(state.get("config", {})), _flatten(run_config)
    diff = sorted(
        k
        for k in set(saved) | set(now)
        if k.rsplit(".", 1)[-1] not in RESUME_FREE_KEYS and saved.get(k) != now.get(k)
    )
    if diff:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in diff)
        raise ValueError(
            f"{path}: refusing to resume, the config differs ({detail}). Use the same settings, "
            "or a new --out directory to start afresh."
        )


def _check_structure(state: dict, method: Method) -> None:
    """Raise ValueError if the saved model's keys or shapes differ from `method`'s, before
    anything is copied into it."""
    mismatch = state_mismatch(method.state_dict(), state["model"])
    if mismatch:
        raise ValueError(f"the saved model differs: {mismatch}")


def _all_finite(module: nn.Module) -> torch.Tensor:
    """One bool tensor: every floating parameter and buffer (BatchNorm running stats) finite."""
    tensors = [t for t in [*module.parameters(), *module.buffers()] if t.is_floating_point()]
    return torch.stack([t.isfinite().all() for t in tensors]).all()


def _flatten(d: dict, prefix: str = "") -> dict:
    """{"train": {"lr": 0.1}} -> {"train.lr": 0.1}."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _all_rng_states(view_gen: torch.Generator) -> dict | list[dict]:
    """This process's RNG states, or every rank's (a list, rank order) under DDP."""
    state = rng_state(view_gen)
    if dist.world_size() == 1:
        return state
    # Ship bytes, not the dict: all_gather_object cannot unpickle tensors inside objects here.
    buf = io.BytesIO()
    torch.save(state, buf)
    payloads: list = [None] * dist.world_size()
    torch.distributed.all_gather_object(payloads, buf.getvalue())
    return [torch.load(io.BytesIO(p), weights_only=True) for p in payloads]


def _nonfinite(
    step: int, last_good: int, cfg: TrainConfig, good: Path | None
) -> NonFiniteLossError:
    """The error for a NaN/Inf loss or weights; `good`: the newest checkpoint known finite."""
    keep = f"last good checkpoint: {good}" if good else "no checkpoint was written yet"
    return NonFiniteLossError(
        f"loss became NaN/Inf between steps {last_good + 1} and {step + 1}. Likely causes: "
        f"learning rate too high (peak lr {cfg.peak_lr:g}; try half), fp16 overflow "
        f"(precision={cfg.precision}; try bf16 or fp32), or a temperature too small. {keep} "
        "(left intact)."
    )
