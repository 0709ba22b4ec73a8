"""Few-label fine-tuning: a linear head on the encoder, everything trained on 1 % / 10 % of labels.

The semi-supervised protocol of SimCLR (Chen et al. 2020, Sec. 6 / App. B.5): take a
class-balanced 1 % or 10 % of the training labels, fine-tune the whole network (encoder
unfrozen) with light augmentation (random crop + flip only), report top-1 on the test split.
SimCLR's defaults: SGD with Nesterov momentum 0.9, no weight decay, 60 epochs for 1 % and 30
for 10 %. We keep those and add a floor of `min_steps` so tiny subsets (1 % of a small data
set is a handful of images) still take enough steps. lr: SimCLR's 0.05 * batch / 256 (0.8 at
batch 4096), with a cosine decay, but at least 0.1: small subsets mean small batches, and the
scaled lr (0.002 at batch 10) barely moves the weights. Measured on digits (1 % = 10 labels,
10 % = 126, 100 steps, a 60-step SimCLR convnet): lr 0.002 / 0.05 / 0.2 gave 17 / 57 / 53 %
at 1 % and 64 / 77 / 88 % at 10 %. The encoder passed in is not modified.

`optimizer="adamw"` is the Vision Transformer recipe of MAE's fine-tuning (He et al. 2022,
App. A.3, as its public CIFAR-10 reproduction runs it): AdamW betas (0.9, 0.999), weight decay
0.05 on weight tensors (not on norms and biases), lr 1e-3 * batch / 256, linear
warm-up (5 of 100 epochs) then cosine.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.augment.pipeline import EvalView, ViewPipeline
from selfsup.data.memory import InMemoryDataset
from selfsup.engine.batches import EpochBatches, indices_to
from selfsup.engine.loop import autocast
from selfsup.engine.optim import param_groups
from selfsup.engine.schedule import warmup_cosine
from selfsup.eval.features import extract_features

# SimCLR App. B.5: epochs per label fraction.
EPOCHS = {0.01: 60, 0.1: 30}


def label_fraction(data: InMemoryDataset, fraction: float, seed: int = 0) -> InMemoryDataset:
    """A class-balanced `fraction` of `data` (at least one sample per class), seeded."""
    if data.targets is None:
        raise ValueError(f"{data.name}: fine-tuning needs labels")
    g = torch.Generator().manual_seed(seed)
    keep = []
    for c in data.targets.unique():
        idx = (data.targets == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        keep.append(idx[: max(1, round(fraction * len(idx)))])
    return data.subset(torch.cat(keep).sort().values)


def light_augment(view: EvalView) -> ViewPipeline:
    """Random resized crop (scale 0.5..1, a milder crop than pretraining) + flip, no colour."""
    return ViewPipeline(
        size=view.size, scale=(0.5, 1.0), jitter_p=0.0, gray_p=0.0, mean=view.mean, std=view.std
    )


def finetune(
    encoder: nn.Module,
    train: InMemoryDataset,
    test: InMemoryDataset,
    transform: EvalView,
    fraction: float = 0.1,
    epochs: int | None = None,
    batch_size: int = 256,
    lr: float | None = None,
    min_steps: int = 100,
    device: str | torch.device = "cpu",
    precision: str = "bf16",
    seed: int = 0,
    optimizer: str = "sgd",
    warmup_fraction: float = 0.0,
) -> dict[str, float]:
    """Fine-tune a copy of `encoder` + a linear head on `fraction` of the train labels.

    transform: the eval view (its size and normalization are reused for the augmentation).
    optimizer: "sgd" (SimCLR's, above) or "adamw" (MAE's, above; its lr default 1e-3 * B/256).
    warmup_fraction: share of the steps with a linear lr warm-up (MAE: 0.05), then cosine.
    Returns {"top1": test accuracy in [0, 1], "labels": samples used, "steps": steps taken}.
    """
    device = torch.device(device)
    subset = label_fraction(train, fraction, seed)
    model = _Classifier(copy.deepcopy(encoder), train.num_classes).to(device)
    epochs = epochs if epochs is not None else EPOCHS.get(fraction, 30)
    bs = min(batch_size, len(subset))
    steps = max(min_steps, epochs * math.ceil(len(subset) / bs))
    opt, lr = _optimizer(model, optimizer, lr, bs)
    warmup = round(warmup_fraction * steps)
    aug, batches = light_augment(transform), EpochBatches(len(subset), bs, seed)
    view_gen = torch.Generator(device=device).manual_seed(seed)
    inputs, targets = subset.inputs.to(device), subset.targets.to(device)
    # fp16 gradients underflow to 0 below 6e-8: scale the loss up, unscale before the step.
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    model.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(step, steps, lr, warmup)
        idx = indices_to(batches.indices(step), device)
        x = aug(inputs[idx], generator=view_gen)
        with autocast(device, precision):
            loss = F.cross_entropy(model(x).float(), targets[idx])
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)  # skipped when the scaled gradients overflowed
        scaler.update()
    logits = extract_features(model, test, transform, device=device, precision=precision)
    top1 = (logits.argmax(1) == test.targets).float().mean().item()
    return {"top1": top1, "labels": float(len(subset)), "steps": float(steps)}


def _optimizer(
    model: nn.Module, name: str, lr: float | None, batch: int
) -> tuple[torch.optim.Optimizer, float]:
    """(optimizer, peak lr) for SimCLR's SGD recipe or MAE's AdamW recipe (module docstring)."""
    if name == "sgd":
        lr = lr if lr is not None else max(0.1, 0.05 * batch / 256)
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True), lr
    if name == "adamw":
        lr = lr if lr is not None else 1e-3 * batch / 256
        groups = [{k: v for k, v in g.items() if k != "lars"} for g in param_groups(model, 0.05)]
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999)), lr
    raise ValueError(f"fine-tune optimizer {name!r}: use 'sgd' or 'adamw'")


class _Classifier(nn.Module):
    """encoder (N, C, H, W) -> (N, D) followed by a linear layer -> (N, num_classes) logits."""

    def __init__(self, encoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def few_label_finetune(
    encoder: nn.Module,
    train: InMemoryDataset,
    test: InMemoryDataset,
    transform: EvalView,
    fractions: tuple[float, ...] = (0.01, 0.1),
    **kwargs,
) -> dict[str, float]:
    """{"finetune_1pct": top-1, "finetune_10pct": top-1, ...} for each label fraction."""
    return {
        f"finetune_{100 * f:g}pct": finetune(encoder, train, test, transform, f, **kwargs)["top1"]
        for f in fractions
    }
