"""SupCon and triplet learning on CIFAR-10 labels (a subset), against the same random encoder.

Budget: 14.5 s on the faster CI kind (two trainings, SupCon 300 steps x 128 x 2 views and
triplet 600 steps x 40, of a width-16 ConvNet on 5,000 images at 16 px; evaluation on 1,000 test
queries). Calibrated 2026-12-01 (fp32): Recall@1 / kNN top-1 random 21.8 / 26.0 %, SupCon
35.4 / 43.3 %, triplet (all) 34.6 / 39.3 %; asserted +5 points each. A broken label path (the
sampler's labels not matching the images, the loss ignoring labels, no gradient reaching the
encoder) leaves Recall@1 and kNN at the random-init figures. Batch-hard mining from scratch is
left out: it collapses at this budget (docs/metric_learning.md) and was only ever recorded.
"""

import pytest
import torch

from selfsup.augment.pipeline import MultiView, ViewPipeline
from selfsup.augment.recipes import eval_view
from selfsup.build import build_method, build_sampler
from selfsup.data import class_subset
from selfsup.encoders import create_encoder
from selfsup.engine import TrainConfig, fit
from selfsup.eval.features import extract_features
from selfsup.eval.knn import knn_accuracy
from selfsup.eval.retrieval import retrieval_metrics

# Supervised training needs milder crops than SimCLR's (0.08, 1): labels, not views, bring the
# invariances, and at this budget the strong recipe mostly slows learning down.
SIZE = 16  # CIFAR-10 at half resolution, as tests/methods/test_learning.py: 4x cheaper a step
VIEW = ViewPipeline(size=SIZE, scale=(0.5, 1.0), jitter_p=0.5, gray_p=0.0)

# (method, method_args, views, steps, batch, K)
RUNS = {
    "supcon": ({}, 2, 300, 128, None),
    "triplet (all)": ({"miner": "all"}, 1, 600, 40, 4),
}


def _scores(encoder, bank, queries) -> dict[str, float]:
    fb = extract_features(encoder, bank, eval_view(SIZE), precision="fp32")
    fq = extract_features(encoder, queries, eval_view(SIZE), precision="fp32")
    out = retrieval_metrics(fq, queries.targets)  # test queries against the other test images
    out["knn_top1"] = knn_accuracy(fb, bank.targets, fq, queries.targets, k=20)["top1"]
    return out


def _train(name, train, tmp_path) -> torch.nn.Module:
    args, n_views, steps, batch, k = RUNS[name]
    torch.manual_seed(0)
    encoder = create_encoder("convnet_small", width=16)
    method = build_method(name.split(" ")[0], encoder, args)
    cfg = TrainConfig(
        steps=steps, batch_size=batch, optimizer="adamw", lr=1e-3, warmup_steps=10,
        weight_decay=5e-4, precision="fp32", out_dir=str(tmp_path / name.replace(" ", "_")),
        progress=False, log_every=100, device="cpu",
    )  # fmt: skip
    sampler = build_sampler({"samples_per_class": k} if k else {}, train.targets, batch, seed=0)
    fit(method, train, MultiView([VIEW] * n_views), cfg, sampler=sampler)
    return encoder


@pytest.mark.slow
def test_supcon_and_triplet_learn_on_cifar10_labels(cifar10, tmp_path):
    train, test = cifar10
    subset = class_subset(train, 500)
    bank, queries = class_subset(train, 100, seed=1), class_subset(test, 100)
    torch.manual_seed(0)
    rows = {"random init": _scores(create_encoder("convnet_small", width=16), bank, queries)}
    for name in RUNS:
        rows[name] = _scores(_train(name, subset, tmp_path), bank, queries)
    cols = ["recall@1", "recall@5", "map@r", "knn_top1"]
    print("\n" + f"{'':<22}" + "".join(f"{c:>10}" for c in cols))
    for name, r in rows.items():
        print(f"{name:<22}" + "".join(f"{100 * r[c]:>9.1f}%" for c in cols))
    base = rows["random init"]
    for name in ("supcon", "triplet (all)"):
        assert rows[name]["recall@1"] >= base["recall@1"] + 0.05, name
        assert rows[name]["knn_top1"] >= base["knn_top1"] + 0.05, name
