"""bf16 autocast must not cost accuracy: the same tiny SimCLR run in bf16 and in fp32 reaches the
same kNN top-1 on digits, within seed noise.

Budget: about 40 s of CPU time single-threaded on an idle machine (two 400-step runs of
convnet_small width 16 at batch 128 on 16 px digits, ~16 s each, plus two kNN evaluations).
Tolerance: 0.025 kNN top-1. Measured (539 test images): at a fixed precision two seeds differ
by 0.011-0.013 (fp32 0.965 / 0.976, bf16 0.972 / 0.963); the binomial standard deviation of
one accuracy near 0.97 on 539 images is 0.007, of a difference 0.010, so 0.025 is 2.5 sigma.
Both runs must also beat the random-init encoder (0.944 on digits, where raw pixels are already
strong), so a run that learns nothing in one precision cannot pass by matching the other.
"""

from __future__ import annotations

import copy

import pytest
import torch

from selfsup.augment.recipes import eval_view, simclr_views
from selfsup.build import build_method
from selfsup.data.digits import load_digits
from selfsup.encoders import create_encoder
from selfsup.engine import TrainConfig, fit
from selfsup.engine.loop import cpu_has_fast_bf16
from selfsup.eval.protocol import evaluate_encoder

SIZE, STEPS, BATCH = 16, 400, 128
TOLERANCE = 0.025  # kNN top-1, see the module docstring
LEARNED = 0.01  # each run beats the random-init encoder by at least this much


def _knn(encoder: torch.nn.Module, train, test) -> float:
    # Features in fp32 for both: only the training precision differs.
    scores = evaluate_encoder(
        encoder, train, test, eval_view(SIZE), precision="fp32", linear=False, k=20
    )
    return scores["knn_top1"]


@pytest.mark.slow
def test_bf16_training_matches_fp32_knn(tmp_path):
    if not cpu_has_fast_bf16():  # the check would compare fp32 with fp32 (and cost 2 runs)
        pytest.skip("this CPU has no fast bf16 kernels: bf16 training falls back to fp32 here")
    train, test = load_digits(SIZE)
    torch.manual_seed(0)
    initial = create_encoder("convnet_small", width=16)
    random_knn = _knn(initial, train, test)
    knn = {}
    for precision in ("bf16", "fp32"):
        encoder = copy.deepcopy(initial)
        method = build_method("simclr", encoder, {"temperature": 0.2})
        cfg = TrainConfig(
            steps=STEPS,
            batch_size=BATCH,
            lr=0.3,
            warmup_steps=10,
            precision=precision,
            seed=0,
            out_dir=str(tmp_path / precision),
            progress=False,
            log_every=10**6,
            checkpoint_every=10**6,
        )
        fit(method, train, simclr_views(SIZE), cfg)
        knn[precision] = _knn(encoder, train, test)
    print(f"kNN top-1: random {random_knn:.3f}, bf16 {knn['bf16']:.3f}, fp32 {knn['fp32']:.3f}")
    assert min(knn.values()) >= random_knn + LEARNED, knn
    assert abs(knn["bf16"] - knn["fp32"]) <= TOLERANCE, knn
