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

from selfsup import dist
from selfsup.data.memory import InMemoryDataset
from selfsup.data.stream import ImageFiles
from selfsup.engine.batches import EpochBatches, MemoryBatches, StreamBatches
from selfsup.engine.checkpoint import latest_valid_checkpoint, save_checkpoint, save_encoder
from selfsup.engine.config import TrainConfig
from selfsup.engine.metrics import MetricsWriter
from selfsup.engine.optim import build_optimizer
from selfsup.engine.schedule import warmup_cosine
from selfsup.methods.base import Method, StepOutput

Views = Callable[..., list[torch.Tensor]]
# Leaf keys of the run config (any section) that may change between a run and its resume.
RESUME_FREE_KEYS = {
    "resume", "progress", "log_every", "device", "checkpoint_every", "keep_checkpoints", "out_dir",
    "workers", "compile", "compile_mode",
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
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist.local_rank())
        return torch.device("cpu")
    return torch.device(name)


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
    train: InMemoryDataset | ImageFiles,
    views: Views,
    cfg: TrainConfig,
    callbacks: Sequence[Callback] = (),
    run_config: dict | None = None,
    sampler: EpochBatches | None = None,
) -> TrainResult:
    """Train `method` on `train` with `views` made per batch; return where and how it went.

    train: an InMemoryDataset (indexed on the device; views(x (B, C, H, W), generator)) or
    ImageFiles (read by `cfg.loader_workers` DataLoader workers, which apply its transform;
    views then gets that transform's list of per-view batches, e.g. `PrecroppedViews`).
    run_config: the resolved configuration saved with every checkpoint; `cfg.resume` refuses a
    checkpoint whose saved config differs on any key outside RESUME_FREE_KEYS.
    sampler: batch index source (default `EpochBatches`; e.g. a class-balanced P x K sampler).
    """
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed + dist.rank(), cfg.deterministic)
    run_dir = Path(cfg.out_dir)
    run_config = run_config or {}
    main = dist.is_main()

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

    start = _maybe_resume(cfg, run_dir, run_config, method, optimizer, scaler, view_gen)
    if isinstance(train, ImageFiles):
        source = StreamBatches(train, batches, device, start, steps, cfg.loader_workers)
    else:
        source = MemoryBatches(train, batches, device)
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
        x, y, n = source.next(step)
        out = step_fn(x, y, views, view_gen, device)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(out.loss).backward()
        if cfg.grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(method.parameters(), cfg.grad_clip)
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
                bad |= ~torch.stack([p.isfinite().all() for p in method.parameters()]).all()
            # One host sync per log step, not per step; all ranks agree, so all stop together.
            if bool(dist.all_reduce_mean(bad.float()) > 0):
                raise _nonfinite(step, last_good, cfg, run_dir)
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
    bar.close()
    wall = time.perf_counter() - t0
    writer.close()
    if main:
        save_encoder(method.backbone, run_dir / "encoder.safetensors")
    for cb in callbacks:
        cb.on_end(method, run_dir)
    dist.barrier()
    return TrainResult(run_dir, steps, wall, seen / max(wall, 1e-9), metrics, start)


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


def _maybe_resume(cfg, run_dir, run_config, method, optimizer, scaler, view_gen) -> int:
    if not cfg.resume:
        return 0
    found = latest_valid_checkpoint(run_dir)
    if found is None:
        return 0
    state, path = found
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
    method.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    rng = state["rng"]  # one dict per rank (a list) under DDP: each rank resumes its own stream
    set_rng_state(rng[dist.rank() % len(rng)] if isinstance(rng, list) else rng, view_gen)
    return int(state["step"])


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


def _nonfinite(step: int, last_good: int, cfg: TrainConfig, run_dir: Path) -> NonFiniteLossError:
    ckpts = sorted(run_dir.glob("checkpoint-*.pt"))
    keep = f"last good checkpoint: {ckpts[-1]}" if ckpts else "no checkpoint was written yet"
    return NonFiniteLossError(
        f"loss became NaN/Inf between steps {last_good + 1} and {step + 1}. Likely causes: "
        f"learning rate too high (peak lr {cfg.peak_lr:g}; try half), fp16 overflow "
        f"(precision={cfg.precision}; try bf16 or fp32), or a temperature too small. {keep} "
        "(left intact)."
    )
