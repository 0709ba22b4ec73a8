"""Throughput of the full SimCLR training step against its limit and against lightly, side by side.

    python benchmarks/throughput.py --threads 1 --encoders resnet18_cifar_w4 resnet18_cifar

Prints one table. Per encoder, measured alternately in one process (`--repeats` rounds; min
and median of each, ratios between medians):
- limit: encoder + head forward/backward alone on pre-made view tensors (2 x batch views);
- ours: the real `selfsup.engine.fit` loop (index the in-memory uint8 batch, make 2 views on
  the device, one forward over both views, NT-Xent, backward, optimizer);
- lightly: lightly's SimCLR step as its docs write it (`SimCLRTransform` on PIL images in a
  torch DataLoader with workers, two forwards, `NTXentLoss`, torch SGD) with the same encoder,
  head, batch, views (lightly's CIFAR-10 benchmark settings: jitter strength 0.5, no blur),
  temperature, optimizer hyper-parameters, precision and memory format.
An image counts once (its 2 views are part of its cost). Above the table: augmentation alone,
views/s of our batched pipeline vs torchvision v2 per sample. Below it: peak RSS of a short run
of each side in a fresh child process (resource.getrusage; lightly's workers listed apart),
and peak GPU memory on CUDA. lightly is optional (`pip install -e .[bench]`): without it those
columns read "-".
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from selfsup.augment.recipes import simclr_views
from selfsup.build import build_method
from selfsup.data.memory import InMemoryDataset
from selfsup.encoders import create_encoder
from selfsup.engine import TrainConfig, fit
from selfsup.engine.loop import autocast

# Hyper-parameters both sides share: lightly's CIFAR-10 benchmark (SGD lr 0.06 at batch 128,
# momentum 0.9, weight decay 5e-4) and T=0.2 as our CIFAR-10 SimCLR config.
LR, MOMENTUM, WEIGHT_DECAY, TEMPERATURE = 0.06, 0.9, 5e-4, 0.2

# An optional benchmark extra, never a runtime dependency; imported only where it runs, so our
# side's memory probe does not carry it.
HAVE_LIGHTLY = importlib.util.find_spec("lightly") is not None


def make_data(n: int, size: int) -> InMemoryDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    return InMemoryDataset(images, torch.randint(0, 10, (n,), generator=g))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CLOCK = "cpu"  # set by --clock
COMPILE = "none"  # set by --compile: torch.compile the backbone, or the whole step (limit, ours)
COMPILE_MODE = "default"  # set by --compile-mode


def _now() -> float:
    """Seconds on the chosen clock. "cpu": CPU time of this process, all its threads (lightly's
    workers are added by `_children_cpu`): on a shared, oversubscribed machine wall time
    rewards whoever runs more processes (each gets its own share of the cores); CPU time
    does not."""
    return time.perf_counter() if CLOCK == "wall" else time.process_time()


def _memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


def _method(name: str, device: torch.device, channels_last: bool):
    torch.manual_seed(0)
    method = build_method("simclr", create_encoder(name), {"temperature": TEMPERATURE})
    return method.to(device).to(memory_format=_memory_format(channels_last))


# ---- augmentation alone -------------------------------------------------------------------


def augment_rates(images: torch.Tensor, device: torch.device, tv_images: int) -> tuple:
    """(ours views/s, torchvision v2 per-sample views/s) for SimCLR views of `images`."""
    from augment_speed import run_torchvision, torchvision_transform  # this folder's script

    x = images.to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    views = simclr_views(x.shape[-1])
    if COMPILE == "step":
        views.compile()
    tv = torchvision_transform(x.shape[-1])
    few = x[:tv_images]

    def ours() -> float:
        _sync(device)
        t = _now()
        views(x, generator=gen)
        _sync(device)
        return 2 * len(x) / (_now() - t)

    def theirs() -> float:
        t = _now()
        run_torchvision(few, tv)
        return len(few) / (_now() - t)

    ours(), theirs()  # warm-up
    return ours(), theirs()


# ---- the limit: encoder + head forward/backward -------------------------------------------


def limit_rate(name, batch, size, steps, precision, device, channels_last) -> float:
    method = _method(name, device, channels_last)
    fmt = _memory_format(channels_last)
    x = torch.randn(2 * batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    net = torch.nn.Sequential(method.backbone, method.projector)
    if COMPILE != "none":
        (method.backbone if COMPILE == "backbone" else net).compile(mode=COMPILE_MODE)

    def once():
        with autocast(device, precision):
            z = net(x)
        z.float().sum().backward()

    once()
    _sync(device)
    t = _now()
    for _ in range(steps):
        once()
    _sync(device)
    return steps * batch / (_now() - t)


# ---- ours: the real training loop ---------------------------------------------------------


def ours_rate(name, data, batch, steps, precision, device, channels_last) -> float:
    method = _method(name, device, channels_last)
    views = simclr_views(data.inputs.shape[-1])  # one object: compiled once with the method

    def run(n: int) -> float:
        cfg = TrainConfig(
            steps=n,
            batch_size=batch,
            lr=LR,
            momentum=MOMENTUM,
            weight_decay=WEIGHT_DECAY,
            precision=precision,
            device=str(device),
            channels_last=channels_last,
            out_dir=tempfile.mkdtemp(prefix="bench-"),
            progress=False,
            log_every=10**9,
            checkpoint_every=10**9,
            compile=COMPILE,
            compile_mode=COMPILE_MODE,
        )
        t = _now()
        result = fit(method, data, views, cfg)
        # fit's own figure is wall time over its loop; on the CPU clock count the whole call
        # (its setup before the loop is a few ms against seconds of steps).
        return result.samples_per_second if CLOCK == "wall" else n * batch / (_now() - t)

    run(2)  # warm-up: allocator, kernels
    return run(steps)


# ---- lightly, as its documentation writes a SimCLR step -----------------------------------


class _PILImages(torch.utils.data.Dataset):
    """What torchvision's CIFAR10 does per item: a uint8 HWC array -> PIL image -> transform."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, transform):
        self.images = images.permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, 3) uint8
        self.targets = targets.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), self.targets[i]


def lightly_rate(name, data, batch, steps, precision, device, channels_last, workers) -> float:
    from lightly.loss import NTXentLoss
    from lightly.transforms import SimCLRTransform

    method = _method(name, device, channels_last)
    model = torch.nn.Sequential(method.backbone, method.projector)
    # lightly's CIFAR-10 benchmark transform: jitter 0.4/0.4/0.4/0.1 (strength 0.5), no blur.
    transform = SimCLRTransform(
        input_size=data.inputs.shape[-1], cj_strength=0.5, gaussian_blur=0.0
    )
    loader = torch.utils.data.DataLoader(
        _PILImages(data.inputs, data.targets, transform),
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    criterion = NTXentLoss(temperature=TEMPERATURE)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    fmt = _memory_format(channels_last)

    def step(views) -> None:
        x0, x1 = (v.to(device, non_blocking=True).contiguous(memory_format=fmt) for v in views)
        with autocast(device, precision):
            z0, z1 = model(x0), model(x1)
            loss = criterion(z0, z1)
        loss.backward()
        opt.step()
        opt.zero_grad()

    warm = torch.utils.data.DataLoader(loader.dataset, batch_size=batch, num_workers=0)
    step(next(iter(warm))[0])  # warm-up: kernels, allocator
    # One whole epoch is timed, workers' start included (lightly's docs use non-persistent
    # workers): on the CPU clock the workers' CPU time arrives in RUSAGE_CHILDREN once the
    # epoch's end joins them.
    _sync(device)
    t, n = _now() + _children_cpu(), 0
    for views, _ in loader:
        step(views)
        n += 1
    _sync(device)
    return n * batch / (_now() + _children_cpu() - t)


def _children_cpu() -> float:
    """CPU seconds of this process's joined children (0 on the wall clock)."""
    if CLOCK == "wall":
        return 0.0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# ---- peak memory, in a fresh process per side ---------------------------------------------


def probe(args) -> None:
    """Child-process mode: one short run of one side; print its peak memory as JSON."""
    device = torch.device(args.device)
    name = args.encoders[0]
    data = make_data(args.steps * args.batch, args.size)
    cl = not args.no_channels_last
    common = (name, data, args.batch, args.steps, args.precision, device, cl)
    if args.probe == "ours":
        ours_rate(*common)
    else:
        lightly_rate(*_lightly_args(args, common), args.lightly_workers)
    out = {
        "rss_mib": _peak_rss_mib(),
        # ru_maxrss is KiB on Linux; a worker's RSS counts the pages it shares with its parent
        "workers_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    if device.type == "cuda":
        out["gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(out))


def _peak_rss_mib() -> float:
    """This process's peak RSS. Not RUSAGE_SELF's ru_maxrss: Linux carries that across exec,
    so a child spawned by a 1 GB parent starts at 1 GB; VmHWM belongs to the new image."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory(args, name: str, side: str) -> dict | None:
    cmd = [sys.executable, __file__, "--probe", side, "--encoders", name]
    for flag in ("device", "batch", "size", "precision", "threads", "lightly_workers"):
        cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    cmd += ["--lightly-fp32"] if args.lightly_fp32 else []
    cmd += ["--compile", args.compile, "--compile-mode", args.compile_mode]
    cmd += ["--steps", "2"] + (["--no-channels-last"] if args.no_channels_last else [])
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"[{side} memory probe failed: {done.stderr.strip()[-300:]}]", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the table ----------------------------------------------------------------------------


def _mm(xs: list[float]) -> str:
    return f"{min(xs):.0f}/{statistics.median(xs):.0f}" if xs else "-"


def _lightly_args(args, common: tuple) -> tuple:
    """lightly's arguments: ours, or with --lightly-fp32 fp32 and the contiguous format."""
    return common[:4] + ("fp32", common[5], False) if args.lightly_fp32 else common


def measure(args, name: str, data: InMemoryDataset) -> dict:
    device, cl = torch.device(args.device), not args.no_channels_last
    common = (name, data, args.batch, args.steps, args.precision, device, cl)
    limits, ours, theirs = [], [], []
    for _ in range(args.repeats):  # alternate, so drift in the machine's load hits all alike
        limits.append(limit_rate(name, args.batch, args.size, *common[3:]))
        ours.append(ours_rate(*common))
        if HAVE_LIGHTLY and not args.no_lightly:
            theirs.append(lightly_rate(*_lightly_args(args, common), args.lightly_workers))
    return {"limit": limits, "ours": ours, "lightly": theirs}


def print_row(name: str, r: dict, mem: dict) -> None:
    lim, ours = statistics.median(r["limit"]), statistics.median(r["ours"])
    vs = f"{ours / statistics.median(r['lightly']):.2f}x" if r["lightly"] else "-"
    print(
        f"{name:<19}{_mm(r['limit']):>13}{_mm(r['ours']):>13}{ours / lim:>7.2f}"
        f"{_mm(r['lightly']):>13}{vs:>8}{mem.get('ours', '-'):>12}{mem.get('lightly', '-'):>18}"
    )


def _mem_text(m: dict | None, workers: int) -> str:
    if m is None:
        return "-"
    text = f"{m['rss_mib']:.0f}"
    if workers and m["workers_mib"]:
        text += f"+{workers}x{m['workers_mib']:.0f}"
    if "gpu_mib" in m:
        text += f" g{m['gpu_mib']:.0f}"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--encoders", nargs="+", default=["resnet18_cifar_w4", "resnet18_cifar"])
    ap.add_argument("--batch", type=int, default=128, help="images per step (2 views each)")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds (min/median)")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--lightly-workers", type=int, default=2, help="lightly's DataLoader workers")
    ap.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        help="rates per CPU-second (process + lightly's workers; default on CPU: the machine "
        "may be shared) or per wall-second (default on CUDA)",
    )
    ap.add_argument(
        "--lightly-fp32",
        action="store_true",
        help="run lightly as its docs do (fp32, contiguous) instead of with our precision and "
        "memory format",
    )
    ap.add_argument(
        "--compile",
        nargs="?",
        const="backbone",
        default="none",
        choices=["none", "backbone", "step"],
        help="torch.compile the backbone (alone: the default), or the whole step (limit: "
        "backbone + head; ours: train.compile=step, the views included)",
    )
    ap.add_argument(
        "--compile-mode",
        default="default",
        help="torch.compile mode (reduce-overhead: CUDA graphs) for the limit and ours",
    )
    ap.add_argument("--no-lightly", action="store_true", help="skip lightly even if installed")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    ap.add_argument("--probe", choices=["ours", "lightly"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    global CLOCK, COMPILE, COMPILE_MODE
    CLOCK = args.clock or ("cpu" if args.device == "cpu" else "wall")
    COMPILE, COMPILE_MODE = args.compile, args.compile_mode
    if args.probe:
        return probe(args)
    device = torch.device(args.device)
    data = make_data(args.steps * args.batch, args.size)  # lightly: one epoch = `steps` steps
    use_lightly = HAVE_LIGHTLY and not args.no_lightly
    version = importlib.metadata.version("lightly") if use_lightly else "-"
    print(
        f"device={device} precision={args.precision} channels_last={not args.no_channels_last}"
        f" batch={args.batch}x2 views size={args.size} threads={torch.get_num_threads()}"
        f" torch={torch.__version__} lightly={version}"
        f" (workers={args.lightly_workers}{', fp32' if args.lightly_fp32 else ''}) clock={CLOCK}"
        f" compile={COMPILE} ({COMPILE_MODE})"
    )
    aug = [augment_rates(data.inputs[: 2 * args.batch], device, 256) for _ in range(args.repeats)]
    ours_v, tv_v = [a[0] for a in aug], [a[1] for a in aug]
    print(
        f"augmentation views/s (min/med): ours {_mm(ours_v)}, torchvision v2 per-sample "
        f"{_mm(tv_v)}, ratio {statistics.median(ours_v) / statistics.median(tv_v):.1f}x"
    )
    print(
        f"{'encoder':<19}{'limit img/s':>13}{'ours img/s':>13}{'/limit':>7}{'lightly img/s':>13}"
        f"{'ours/li':>8}{'ours MiB':>12}{'lightly MiB':>18}"
    )
    rows = {}
    for name in args.encoders:
        r = measure(args, name, data)
        mem = {}
        if not args.no_memory:
            mem["ours"] = _mem_text(peak_memory(args, name, "ours"), 0)
            if use_lightly:
                mem["lightly"] = _mem_text(peak_memory(args, name, "lightly"), args.lightly_workers)
        print_row(name, r, mem)
        rows[name] = r
    print("img/s as min/median over rounds; ratios between medians; MiB: peak RSS of a")
    print("fresh process (lightly: main + workers x each worker's peak; g: peak GPU memory)")
    for name, r in rows.items():
        secs = {k: f"{50_000 / statistics.median(v):.1f} s" for k, v in r.items() if v}
        print(f"{name}: a CIFAR-10 epoch (50,000 images) at the median rates: {secs}")


if __name__ == "__main__":
    np.random.seed(0)
    main()
