"""Fine-tune accuracy after MAE pretraining vs from scratch, same schedule, side by side.

    selfsup pretrain --config configs/cifar10-mae.yaml --set data=DIR ... --out runs/mae
    python benchmarks/mae_finetune.py --run runs/mae --data DIR --epochs 30 --device cuda

The MAE paper's comparison (He et al. 2022, Table 1 / Sec. 5): the same ViT fine-tuned end to
end from MAE weights and from a random init with one recipe: here MAE's (AdamW, lr 1e-3 x B/256,
weight decay 0.05, 5 % warm-up, cosine; `selfsup.eval.finetune`) on all train labels with
random resized crop (0.5-1) + flip. Prints one table: top-1 on the test split and minutes.
Public reference (IcarusWizard/MAE, ViT-Tiny, 2000 pretraining + 100 fine-tuning epochs):
89.8 % with MAE vs 74.1 % from scratch.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from selfsup.augment import recipes
from selfsup.data import load_image_data
from selfsup.encoders import create_encoder
from selfsup.engine.checkpoint import load_encoder
from selfsup.eval.finetune import finetune


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--run", required=True, help="an MAE run folder (holds encoder.safetensors)")
    ap.add_argument("--data", required=True, help="cifar10, or a folder with train/ and test/")
    ap.add_argument("--epochs", type=int, default=100, help="fine-tuning epochs (reference: 100)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=None, help="peak lr (default 1e-3 x batch/256)")
    ap.add_argument("--fraction", type=float, default=1.0, help="share of the train labels")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    args = ap.parse_args()

    train, test = load_image_data(args.data)
    if test is None:
        raise SystemExit(f"{args.data}: no labeled test split to fine-tune against")
    mae = load_encoder(Path(args.run) / "encoder.safetensors")
    torch.manual_seed(0)
    scratch = create_encoder(mae.encoder_name, **mae.encoder_kwargs)
    view = recipes.eval_view(train.inputs.shape[-1])
    print(f"encoder={mae.encoder_name} train={len(train)} test={len(test)} epochs={args.epochs}")
    print(f"{'init':<10}{'top-1 %':>9}{'minutes':>9}")
    for name, encoder in (("scratch", scratch), ("MAE", mae)):
        t = time.perf_counter()
        r = finetune(
            encoder, train, test, view, args.fraction, epochs=args.epochs,
            batch_size=args.batch, lr=args.lr, min_steps=1, device=args.device,
            precision=args.precision, optimizer="adamw", warmup_fraction=0.05,
        )  # fmt: skip
        print(f"{name:<10}{100 * r['top1']:>9.1f}{(time.perf_counter() - t) / 60:>9.1f}")


if __name__ == "__main__":
    main()
