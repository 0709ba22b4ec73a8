"""MAE learns on a CIFAR-10 subset (../shared/data): the reconstruction loss falls, and a linear
probe and a kNN classifier on the pretrained ViT beat the same ViT at its random initialization.

Budget: about 2 min of CPU (measured below). vit_micro_cifar (dim 128, depth 4) on 16x16 px
views (CIFAR-10 at half resolution, as tests/methods/test_learning.py: 16 patches of 4x4, four
times cheaper per step than 32x32), decoder 2 x 128, batch 128, 500 AdamW steps
(lr 2e-3, warm-up 20, cosine), bf16 autocast, on 5,000 training images (500 per class).
Deviation from the paper for the budget: mask ratio 0.5, not 0.75 (both masks were measured
here; with 0.75 the probe stays at the random-init level for the first ~300 steps).

What a short MAE run buys (this test on 3,000 test images; verified 2026-11-22 in three runs
of this file alone, each an XPASS; then the xfail marker was removed):
                         OMP_NUM_THREADS=2 (2 runs)   OMP_NUM_THREADS=1
  loss, step 20 -> 500   0.946 -> 0.666               0.946 -> 0.665
  linear, 200 per class  0.358 -> 0.395 (+3.7)        0.358 -> 0.403 (+4.5)   asserted: +2
  linear, all labels     0.388 -> 0.416               0.388 -> 0.421          (not asserted)
  kNN (k=200)            0.270 -> 0.309 (+3.9)        0.270 -> 0.309 (+3.9)   asserted: +2
Wall time: 125 s (119 s CPU) with one thread on a free core. With two OpenMP threads on this
shared 2-core machine while another process held a core: 10 min (with 1 other process) and
17 min (with 2), because the threads wait for each other. 60 steps took 137 s at 2 threads
against 15.5 s at 1 under that load. On an idle machine, two threads should take no longer
than one.

In exploratory runs (1,000 test images) the all-label linear probe gained 0-3 points, the
few-label probe and kNN ~4: random ViT features are already a fair linear basis given many
labels (MAE's linear-probe gains need long schedules, He et al. 2022, Fig. 7), so the asserted
probe is the few-label one, plus kNN.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

from selfsup.augment.recipes import eval_view, mae_views
from selfsup.data import class_subset
from selfsup.encoders.registry import create_encoder
from selfsup.engine import TrainConfig, fit
from selfsup.eval.features import extract_features
from selfsup.eval.knn import knn_accuracy
from selfsup.eval.linear import linear_probe
from selfsup.methods.mae import MAE

SIZE, STEPS, BATCH, LR, MASK_RATIO = 16, 500, 128, 2e-3, 0.5
PROBE_LABELS = 200  # per class
MARGIN = 0.02  # top-1 points over the random-init encoder


def probe(encoder, train, test) -> dict[str, float]:
    """Linear probe on PROBE_LABELS labels per class and on all; kNN with all as the bank."""
    view = eval_view(SIZE)
    f_train, f_test = extract_features(encoder, train, view), extract_features(encoder, test, view)
    few = torch.cat([(train.targets == c).nonzero()[:PROBE_LABELS, 0] for c in range(10)])
    return {
        "linear": linear_probe(f_train[few], train.targets[few], f_test, test.targets),
        "linear_all": linear_probe(f_train, train.targets, f_test, test.targets),
        "knn": knn_accuracy(f_train, train.targets, f_test, test.targets)["top1"],
    }


@pytest.mark.slow
def test_mae_learns_on_cifar10(cifar10, tmp_path):
    train, test = cifar10
    train, test = class_subset(train, 500), class_subset(test, 300)
    torch.manual_seed(0)
    encoder = create_encoder("vit_micro_cifar", img_size=SIZE, global_pool="avg")
    before = probe(copy.deepcopy(encoder), train, test)

    method = MAE(
        encoder, MASK_RATIO, decoder_dim=128, decoder_depth=2, decoder_heads=4, norm_pix=True
    )
    cfg = TrainConfig(
        steps=STEPS,
        batch_size=BATCH,
        optimizer="adamw",
        lr=LR,
        betas=(0.9, 0.95),
        weight_decay=0.05,
        warmup_steps=20,
        precision="bf16",
        device="cpu",
        out_dir=str(tmp_path),
        progress=False,
        log_every=20,
        checkpoint_every=10**6,
    )
    fit(method, train, mae_views(SIZE), cfg)
    rows = (tmp_path / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(row)["reconstruction"] for row in rows]
    after = probe(encoder, train, test)

    print(f"\nMAE reconstruction loss (steps 20 -> {STEPS}): {losses[0]:.3f} -> {losses[-1]:.3f}")
    for key in before:
        print(f"{key:<11} random {before[key]:.3f} -> MAE {after[key]:.3f}")
    assert losses[-1] < 0.8 * losses[0]
    assert after["linear"] >= before["linear"] + MARGIN
    assert after["knn"] >= before["knn"] + MARGIN
