"""Does our SimCLR learn as well as lightly's, step for step? kNN after the same short run.

    python benchmarks/learning_vs_lightly.py --data path/to/cifar10 --steps 600 --seeds 0 1

Both sides start from the same random ResNet-18 (CIFAR stem, width/4) and head (SimCLR's
2-layer MLP to 128-d), T=0.2, SGD lr 0.5 momentum 0.9 weight decay 5e-4, 30 warm-up steps
then cosine (the same function of the step), batch 128, bf16 autocast + channels_last, jitter
strength 0.5 and no blur (lightly's CIFAR-10 benchmark). What differs is each library's own
code: ours is `selfsup.engine.fit` (batched views on the device, one forward over both views,
no weight decay on norms and biases); lightly's is its documented loop (`SimCLRTransform` on
PIL images in a DataLoader, two forwards, `NTXentLoss`, decay on every parameter). Prints kNN
top-1 (k=200, t=0.1; bank 1,000 train images per class, 200 test images per class) per seed.
lightly is an optional benchmark extra (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile

import torch

from selfsup.augment.recipes import eval_view, simclr_views
from selfsup.data import class_subset, load_image_data
from selfsup.encoders import create_encoder
from selfsup.engine import TrainConfig, fit
from selfsup.engine.loop import autocast
from selfsup.engine.schedule import warmup_cosine
from selfsup.eval.protocol import evaluate_encoder
from selfsup.heads.presets import simclr_head
from selfsup.losses.modules import NTXentLoss
from selfsup.methods.simclr import SimCLR

LR, MOMENTUM, WD, T, WARMUP = 0.5, 0.9, 5e-4, 0.2, 30


def ours(method: SimCLR, train, steps: int, batch: int, seed: int) -> None:
    cfg = TrainConfig(
        steps=steps, batch_size=batch, lr=LR, momentum=MOMENTUM, weight_decay=WD,
        warmup_steps=WARMUP, seed=seed, out_dir=tempfile.mkdtemp(), progress=False,
        log_every=10**9, checkpoint_every=10**9,
    )  # fmt: skip
    fit(method, train, simclr_views(32), cfg)


def lightly(method: SimCLR, train, steps: int, batch: int, seed: int, workers: int) -> None:
    from lightly.loss import NTXentLoss as LightlyNTXent
    from lightly.transforms import SimCLRTransform
    from throughput import _PILImages  # this folder's script: torchvision CIFAR10's __getitem__

    torch.manual_seed(seed)
    model = torch.nn.Sequential(method.backbone, method.projector).train()
    model.to(memory_format=torch.channels_last)
    transform = SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.0)
    loader = torch.utils.data.DataLoader(
        _PILImages(train.inputs, train.targets, transform),
        batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
        persistent_workers=workers > 0,
    )  # fmt: skip
    criterion = LightlyNTXent(temperature=T)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    step, cpu = 0, torch.device("cpu")
    while step < steps:
        for (x0, x1), _ in loader:
            for g in opt.param_groups:
                g["lr"] = warmup_cosine(step, steps, LR, WARMUP)
            x0, x1 = (x.contiguous(memory_format=torch.channels_last) for x in (x0, x1))
            with autocast(cpu, "bf16"):
                loss = criterion(model(x0), model(x1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step == steps:
                break


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", required=True, help="cifar10, or a folder with train/ and test/")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--workers", type=int, default=1, help="lightly's DataLoader workers")
    args = ap.parse_args()
    train, test = load_image_data(args.data)
    bank, queries = class_subset(train, 1000), class_subset(test, 200)
    knn = {"random init": [], "ours": [], "lightly": []}
    for seed in args.seeds:
        torch.manual_seed(seed)
        encoder = create_encoder("resnet18_cifar_w4")
        start = SimCLR(encoder, simclr_head(encoder.num_features), NTXentLoss(temperature=T))
        runs = {"random init": copy.deepcopy(start)}
        runs["ours"] = copy.deepcopy(start)
        ours(runs["ours"], train, args.steps, args.batch, seed)
        runs["lightly"] = copy.deepcopy(start)
        lightly(runs["lightly"], train, args.steps, args.batch, seed, args.workers)
        for name, m in runs.items():
            r = evaluate_encoder(m.backbone, bank, queries, eval_view(32), linear=False)
            knn[name].append(100 * r["knn_top1"])
        print(f"seed {seed}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in knn.items()), flush=True)
    print("kNN top-1 %, mean over seeds: " + ", ".join(
        f"{k} {statistics.mean(v):.1f}" for k, v in knn.items()
    ))  # fmt: skip


if __name__ == "__main__":
    main()
