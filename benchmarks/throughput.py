"""Throughput of the full SimCLR training step against its limit, measured side by side.

    python benchmarks/throughput.py --encoders resnet18_cifar_w4 resnet18_cifar --batch 128

Prints, per encoder: images/s of the full step (the real `selfsup.engine.fit` loop: index the
in-memory uint8 batch, make 2 views on the device, encoder + head + NT-Xent, backward,
optimizer, EMA hooks) and of the limit (encoder + head forward/backward alone on pre-made view
tensors of the same shapes), and their ratio. An image counts once (its 2 views are part of
its cost). Runs alternate between the two measurements `--repeats` times; min and median of
each are printed, and the ratio is taken between medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from selfsup.augment.recipes import simclr_views
from selfsup.build import build_method
from selfsup.data.memory import InMemoryDataset
from selfsup.encoders import create_encoder
from selfsup.engine import TrainConfig, fit
from selfsup.engine.loop import autocast


def make_data(n: int, size: int) -> InMemoryDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    return InMemoryDataset(images, torch.randint(0, 10, (n,), generator=g))


def full_step_rate(name, data, batch, steps, precision, device, channels_last) -> float:
    torch.manual_seed(0)
    method = build_method("simclr", create_encoder(name), {"temperature": 0.2})
    cfg = TrainConfig(
        steps=steps,
        batch_size=batch,
        lr=0.06,
        precision=precision,
        device=device,
        channels_last=channels_last,
        out_dir=tempfile.mkdtemp(prefix="bench-"),
        progress=False,
        log_every=10**9,
        checkpoint_every=10**9,
    )
    fit(method, data, simclr_views(data.inputs.shape[-1]), cfg)  # warm-up: allocator, kernels
    result = fit(method, data, simclr_views(data.inputs.shape[-1]), cfg)
    return result.samples_per_second


def limit_rate(name, batch, size, steps, precision, device, channels_last) -> float:
    torch.manual_seed(0)
    method = build_method("simclr", create_encoder(name), {}).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    method.to(memory_format=fmt)
    x = torch.randn(2 * batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    dev = torch.device(device)

    def once():
        with autocast(dev, precision):
            z = method.projector(method.backbone(x))
        z.float().sum().backward()

    once()
    _sync(dev)
    t = time.perf_counter()
    for _ in range(steps):
        once()
    _sync(dev)
    return steps * batch / (time.perf_counter() - t)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--encoders", nargs="+", default=["resnet18_cifar_w4", "resnet18_cifar"])
    ap.add_argument("--batch", type=int, default=128, help="images per step (2 views each)")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cl = not args.no_channels_last
    data = make_data(max(4 * args.batch, 1024), args.size)
    print(
        f"device={args.device} precision={args.precision} channels_last={cl} batch={args.batch}"
        f" threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    print(
        f"{'encoder':<20}{'limit img/s (min/med)':>24}{'full step img/s (min/med)':>28}{'ratio':>8}"
    )
    for name in args.encoders:
        limits, fulls = [], []
        for _ in range(args.repeats):  # alternate so drift hits both alike
            limits.append(
                limit_rate(name, args.batch, args.size, args.steps, args.precision, args.device, cl)
            )
            fulls.append(
                full_step_rate(name, data, args.batch, args.steps, args.precision, args.device, cl)
            )
        lim, full = statistics.median(limits), statistics.median(fulls)
        print(
            f"{name:<20}{min(limits):>12.0f} /{lim:>9.0f}"
            f"{min(fulls):>16.0f} /{full:>9.0f}{full / lim:>8.2f}"
        )


if __name__ == "__main__":
    main()
