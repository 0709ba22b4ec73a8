"""Views/s: torchvision.transforms.v2 per-sample loop vs selfsup's batched ViewPipeline.

Both make SimCLR views (random resized crop, flip, colour jitter 0.4/0.4/0.4/0.1 with p 0.8,
grayscale p 0.2, normalize) of the same uint8 images, measured alternately in one run; prints
views/s of each and the ratio.

    python benchmarks/augment_speed.py --device cpu --batch 512 --size 32 --repeats 5 --threads 1
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch
from torchvision.transforms import v2

from selfsup.augment import CIFAR10_MEAN, CIFAR10_STD, ViewPipeline


def torchvision_transform(size: int) -> v2.Compose:
    """The per-image SimCLR transform, as peers write it with torchvision v2."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(CIFAR10_MEAN, CIFAR10_STD),
        ]
    )


def run_torchvision(images: torch.Tensor, transform: v2.Compose) -> torch.Tensor:
    return torch.stack([transform(img) for img in images])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--size", type=int, default=32, help="image side (input and view)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (both sides)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    shape = (args.batch, 3, args.size, args.size)
    images = torch.randint(
        0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    images = images.to(device)  # torchvision's loop gets the same tensors, on the same device
    gen = torch.Generator(device=device).manual_seed(0)
    ours = ViewPipeline(size=args.size)
    theirs = torchvision_transform(args.size)
    run_ours = partial(ours, images, gen)
    run_theirs = partial(run_torchvision, images, theirs)
    run_ours(), run_theirs()  # warm-up
    t_ours, t_theirs = [], []
    for _ in range(args.repeats):  # alternate, so both see the same machine load
        t_theirs.append(time_once(run_theirs, device))
        t_ours.append(time_once(run_ours, device))
    best_ours, best_theirs = min(t_ours), min(t_theirs)
    print(f"device={device} batch={args.batch} size={args.size} threads={args.threads}")
    print(f"torchvision v2 per-sample: {args.batch / best_theirs:10.0f} views/s")
    print(f"selfsup ViewPipeline     : {args.batch / best_ours:10.0f} views/s")
    print(f"ratio (ours / torchvision): {best_theirs / best_ours:.1f}x")


if __name__ == "__main__":
    main()
