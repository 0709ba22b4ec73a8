"""Speed of an audio training step against its limit: the same step on pre-made log-mels.

    python benchmarks/audio_speed.py                       # BYOL-A and COLA on audio_ntt, 16 kHz
    python benchmarks/audio_speed.py --methods mae --encoder audio_vit_tiny --clip-seconds 0.95
    python benchmarks/audio_speed.py --rate 8000 --batch 64 --threads 1

Every piece is the library's own, built as `selfsup pretrain --modality audio` builds it
(`run_config` -> `AudioModality`: its encoder sized to the log-mel, `build_method`, the method's
views recipe, `build_optimizer` with the modality's AdamW):

  full step   the raw waveform batch (B, 1, S) -> the views (random crops, the log-mel front end
              on the device, normalization, the recipe's spectrogram views: BYOL-A's mixup and
              random resize crop; COLA's two segments) -> the method's forward (encoder, head,
              loss) -> backward -> the optimizer step and the method's after_step (BYOL's
              target EMA), as `engine.fit` runs it;
  limit       the same forward, backward and optimizer step on log-mels the same views made
              before the clock started: the encoder, head and loss alone;
  views       the views alone (no gradient), and in them the front end alone: `LogMel` on the
              batch's crops, in microseconds per clip (`benchmarks/audio_frontend.py` times it
              against scipy's STFT).

A clip counts once (its two views are part of its cost). The four are timed alternately in one
process (rounds of `--steps` each, after one warm-up round; medians), so machine noise hits them
alike; full / limit is the cost of everything that is not the model (the image methods run at
1.00x, docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from selfsup.augment.audio_views import centre_crop
from selfsup.build import METHODS, build_method
from selfsup.engine.loop import autocast, resolve_device
from selfsup.engine.optim import build_optimizer
from selfsup.modalities import create_modality
from selfsup.run import run_config


def waveforms(batch: int, samples: int, rate: int) -> torch.Tensor:
    """(B, 1, S) float32: a tone of a random pitch in noise per clip, 1.5x the crop, so the
    random crops have room to move."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(samples) / rate
    hz = 200 + 3000 * torch.rand(batch, 1, 1, generator=g)
    noise = torch.randn(batch, 1, samples, generator=g)
    return 0.5 * torch.sin(2 * torch.pi * hz * t) + 0.05 * noise


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else platform's guess."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def bench(method_name: str, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """Median seconds per step of full, limit, views and frontend for one method."""
    cfg = run_config(None, [
        f"method={method_name}", f"encoder={args.encoder}", f"train.batch_size={args.batch}",
        f"train.precision={args.precision}", f"train.device={device}",
        f"data_args={{sample_rate: {args.rate}, clip_seconds: {args.clip_seconds}}}",
    ], "audio")  # fmt: skip
    modality = create_modality(cfg)
    x = waveforms(args.batch, round(1.5 * modality.clip), args.rate).to(device)
    modality.frontend.to(device)
    raw = modality.eval_transform()(x)  # the run measures its norm on the training clips
    modality.norm = (float(raw.mean()), float(raw.std()))
    torch.manual_seed(0)
    method = build_method(cfg.method, modality.encoder(), cfg.method_args).to(device)
    views = modality.views(cfg.views or METHODS[cfg.method].views)
    opt = build_optimizer(method, cfg.train)
    g = torch.Generator(device=device)
    total = 10**6  # the schedule's length for after_step (BYOL's EMA rate); never reached

    def train_on(crops: list[torch.Tensor], step: int) -> None:
        with autocast(device, cfg.train.precision):
            loss = method(crops).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        method.after_backward(step, total)
        opt.step()
        method.after_step(step, total)

    made: list[list[torch.Tensor]] = []

    @torch.no_grad()
    def views_only(_: int) -> None:
        views(x, generator=g)

    crops = centre_crop(x, modality.clip)

    @torch.no_grad()
    def frontend_only(_: int) -> None:
        modality.frontend(crops)

    steps: dict[str, Callable[[int], None]] = {
        "full": lambda i: train_on(views(x, generator=g), i),
        "limit": lambda i: train_on(made[i], i),
        "views": views_only,
        "frontend": frontend_only,
    }
    times: dict[str, list[float]] = {k: [] for k in steps}
    method.train()
    for r in range(args.rounds + 1):  # round 0 warms up
        g.manual_seed(r)
        with torch.no_grad():
            made[:] = [views(x, generator=g) for _ in range(args.steps)]
        for name, fn in steps.items():
            g.manual_seed(r)
            _sync(device)
            t0 = time.perf_counter()
            for i in range(args.steps):
                fn(i)
            _sync(device)
            if r:
                times[name].append((time.perf_counter() - t0) / args.steps)
    shape = tuple(made[0][0].shape[1:])
    print(f"  {method_name} + {args.encoder}: log-mels {shape} x {len(made[0])} views, "
          f"{sum(p.numel() for p in method.parameters()) / 1e6:.2f} M parameters")  # fmt: skip
    return {k: statistics.median(v) for k, v in times.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--methods", nargs="+", default=["byol", "cola"])
    p.add_argument("--encoder", default="audio_ntt")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rate", type=int, default=16000, help="sample rate (64 mel bands at 16 kHz)")
    p.add_argument("--clip-seconds", type=float, default=1.0, help="the crop (data_args)")
    p.add_argument("--steps", type=int, default=1, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds, after one warm-up round")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    where = cpu_name() if device.type == "cpu" else torch.cuda.get_device_name(device)
    # The load average says how shared the machine was: timings on busy cores run slow.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"batch {args.batch} x {args.clip_seconds} s clips at {args.rate} Hz, {args.precision}, "
          f"{args.threads} torch threads, {device} ({where}, {os.cpu_count()} cores, load "
          f"average {load:.1f}), torch {torch.__version__}; median of {args.rounds} alternating "
          f"rounds of {args.steps} step(s)")  # fmt: skip
    rows = {m: bench(m, args, device) for m in args.methods}
    b = args.batch
    print(f"{'method':<8}{'full step':>22}{'limit (pre-made log-mels)':>30}{'full/limit':>12}"
          f"{'views':>10}{'front end':>14}")  # fmt: skip
    for m, t in rows.items():
        print(f"{m:<8}{1000 * t['full']:9.0f} ms {b / t['full']:6.1f} clips/s"
              f"{1000 * t['limit']:13.0f} ms {b / t['limit']:6.1f} clips/s"
              f"{t['full'] / t['limit']:11.2f}x{1000 * t['views']:7.1f} ms"
              f"{1e6 * t['frontend'] / b:8.0f} us/clip")  # fmt: skip


if __name__ == "__main__":
    main()
