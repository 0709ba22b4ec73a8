"""Training from a folder read file by file (`--stream`), against the in-memory path and lightly.

    python benchmarks/stream_folder.py --side 32 --size 32          # CIFAR-10 JPEGs as they are
    python benchmarks/stream_folder.py --side 160 --size 64         # larger JPEGs, 64-px views
    python benchmarks/stream_folder.py --device cuda --encoder resnet18_cifar --batch 512 \
        --steps 97 --workers 12 --lightly-workers 12                 # a GPU: the CIFAR train set

The folder: the first `steps x batch` images of the CIFAR-10 JPEG training set
(../shared/data/cifar10-jpg.tar.gz), re-encoded at `--side` px (JPEG quality 90) when that differs
from 32, written once into a cache folder (class sub-folders). Every side reads the same files,
wall clock, measured alternately in one process (`--repeats` rounds; min/median; ratios of
medians), SimCLR with the same encoder, head, batch, views, temperature and optimizer
(`throughput.py`'s settings):
- memory: `selfsup.engine.fit` on the folder decoded into memory beforehand (not timed), at the
  view size: the reference for a folder that fits;
- stream: `fit` on `ImageFiles` (`--workers` DataLoader workers, default as `selfsup pretrain
  --stream`: 0 on 2 cores, i.e. the training process itself, decode and crop each file; flip,
  colour jitter, grayscale and normalization batched on the device): what `--stream` runs;
- lightly: lightly 1.6's documented step on the folder (`LightlyDataset` + `SimCLRTransform` in a
  DataLoader with `--lightly-workers`, two forwards, `NTXentLoss`);
and the loaders alone (views ready for the model, no model): stream vs lightly.
One measurement is one pass over the folder (an epoch), workers' start included.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import throughput as tp  # the sibling benchmark: shared encoder, method and hyper-parameters
import torch
from PIL import Image

from selfsup.augment.recipes import simclr_views
from selfsup.augment.split import split_views
from selfsup.data import load_image_folder
from selfsup.data.stream import ImageFiles
from selfsup.engine import TrainConfig, fit
from selfsup.engine.batches import EpochBatches, StreamBatches
from selfsup.engine.config import default_workers
from selfsup.engine.loop import autocast

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.tar.gz"
CACHE = Path(tempfile.gettempdir()) / "selfsup-bench"


def make_folder(n: int, side: int) -> Path:
    """n CIFAR-10 training JPEGs (class sub-folders) at `side` px, written once."""
    root = CACHE / f"cifar-{n}-{side}"
    if (root / ".done").exists():
        return root
    if not SHARED.exists():
        raise SystemExit(f"{SHARED} is absent: this benchmark reads the shared CIFAR-10 JPEGs")
    with tarfile.open(SHARED) as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.isfile() and "/train/" in m.name),
            key=lambda m: (m.name.rsplit("/", 1)[-1], m.name),  # interleave the classes
        )[:n]
        for m in members:
            out = root / Path(m.name).parent.name / Path(m.name).name
            out.parent.mkdir(parents=True, exist_ok=True)
            data = tar.extractfile(m).read()
            if side == 32:
                out.write_bytes(data)
            else:
                with Image.open(tar.extractfile(m)) as im:
                    im.resize((side, side), Image.BICUBIC).save(out, quality=90)
    (root / ".done").write_text("")
    return root


def _cfg(args, steps: int) -> TrainConfig:
    return TrainConfig(
        steps=steps,
        batch_size=args.batch,
        lr=tp.LR,
        momentum=tp.MOMENTUM,
        weight_decay=tp.WEIGHT_DECAY,
        precision=args.precision,
        device=args.device,
        out_dir=tempfile.mkdtemp(prefix="bench-"),
        progress=False,
        log_every=10**9,
        checkpoint_every=10**9,
        workers=args.workers,
    )


def fit_rate(args, data) -> float:
    """images/s of `fit` over one epoch of `data` (InMemoryDataset or ImageFiles)."""
    views = simclr_views(args.size)
    if isinstance(data, ImageFiles):
        data.transform, views = split_views(views)
    method = tp._method(args.encoder, torch.device(args.device), True)
    fit(method, data, views, _cfg(args, 1))  # warm-up: kernels, allocator
    steps = len(data) // args.batch
    t = time.perf_counter()
    fit(method, data, views, _cfg(args, steps))
    return steps * args.batch / (time.perf_counter() - t)


def stream_loader_rate(args, files: ImageFiles) -> float:
    """images/s of the streaming loader alone: views ready for the model, no model."""
    files.transform, views = split_views(simclr_views(args.size))
    batches = EpochBatches(len(files), args.batch)
    steps = batches.steps_per_epoch
    device = torch.device(args.device)
    gen = torch.Generator(device=device).manual_seed(0)
    t = time.perf_counter()
    source = StreamBatches(files, batches, device, 0, steps, args.workers)
    for step in range(steps):
        crops, _, _ = source.next(step)
        views(crops, gen)
    tp._sync(device)
    return steps * args.batch / (time.perf_counter() - t)


def _lightly_loader(args, root: Path):
    from lightly.data import LightlyDataset
    from lightly.transforms import SimCLRTransform

    # lightly's CIFAR-10 benchmark transform: jitter strength 0.5, no blur.
    transform = SimCLRTransform(input_size=args.size, cj_strength=0.5, gaussian_blur=0.0)
    dataset = LightlyDataset(input_dir=str(root), transform=transform)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=args.batch,
        shuffle=True,
        drop_last=True,
        num_workers=args.lightly_workers,
        pin_memory=args.device.startswith("cuda"),
    )


def lightly_loader_rate(args, root: Path) -> float:
    t, n = time.perf_counter(), 0
    for views, _, _ in _lightly_loader(args, root):
        n += len(views[0])
    return n / (time.perf_counter() - t)


def lightly_fit_rate(args, root: Path) -> float:
    from lightly.loss import NTXentLoss

    device = torch.device(args.device)
    method = tp._method(args.encoder, device, True)
    model = torch.nn.Sequential(method.backbone, method.projector)
    criterion = NTXentLoss(temperature=tp.TEMPERATURE)
    opt = torch.optim.SGD(
        model.parameters(), lr=tp.LR, momentum=tp.MOMENTUM, weight_decay=tp.WEIGHT_DECAY
    )

    def step(views) -> None:
        fmt = torch.channels_last
        x0, x1 = (v.to(device, non_blocking=True).contiguous(memory_format=fmt) for v in views)
        with autocast(device, args.precision):
            loss = criterion(model(x0), model(x1))
        loss.backward()
        opt.step()
        opt.zero_grad()

    loader = _lightly_loader(args, root)
    step(next(iter(torch.utils.data.DataLoader(loader.dataset, batch_size=args.batch)))[0])
    t, n = time.perf_counter(), 0
    for views, _, _ in loader:
        step(views)
        n += len(views[0])
    tp._sync(device)
    return n / (time.perf_counter() - t)


def _mm(xs: list[float]) -> str:
    return f"{min(xs):.0f}/{statistics.median(xs):.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--side", type=int, default=32, help="side of the JPEGs in the folder")
    ap.add_argument("--size", type=int, default=32, help="side of the training views")
    ap.add_argument("--encoder", default="resnet18_cifar_w4")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=8, help="steps per epoch (folder size / batch)")
    ap.add_argument(
        "--workers", type=int, default=default_workers(), help="ours (default as `--stream`)"
    )
    ap.add_argument("--lightly-workers", type=int, default=2, help="lightly's DataLoader workers")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    ap.add_argument("--device", default="cpu", help="cpu | cuda (views and model there)")
    ap.add_argument("--no-lightly", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tp.CLOCK = "wall"
    root = make_folder(args.steps * args.batch, args.side)
    memory = load_image_folder(root, args.size, cache_dir=CACHE / "decoded")
    use_lightly = importlib.util.find_spec("lightly") is not None and not args.no_lightly
    print(
        f"folder={root} ({len(memory)} JPEGs, {args.side} px) views={args.size} px "
        f"encoder={args.encoder} batch={args.batch}x2 workers={args.workers} "
        f"(lightly {args.lightly_workers}) "
        f"threads={torch.get_num_threads()} precision={args.precision} device={args.device} "
        f"lightly={use_lightly}"
    )
    files = ImageFiles.from_folder(root)
    runs = {
        "memory": lambda: fit_rate(args, memory),
        "stream": lambda: fit_rate(args, files),
        "stream loader": lambda: stream_loader_rate(args, files),
    }
    if use_lightly:
        runs["lightly"] = lambda: lightly_fit_rate(args, root)
        runs["lightly loader"] = lambda: lightly_loader_rate(args, root)
    rates: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            rates.setdefault(name, []).append(run())
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"{'':<16}{'img/s (min/med)':>17}")
    for name, xs in rates.items():
        print(f"{name:<16}{_mm(xs):>17}")
    print(f"stream / memory: {med['stream'] / med['memory']:.2f}")
    if use_lightly:
        print(f"stream / lightly (training step): {med['stream'] / med['lightly']:.2f}x")
        loaders = med["stream loader"] / med["lightly loader"]
        print(f"stream loader / lightly loader: {loaders:.2f}x")


if __name__ == "__main__":
    main()
