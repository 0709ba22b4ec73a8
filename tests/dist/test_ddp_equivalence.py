"""2 gloo processes on half-batches == 1 process on the full batch, through method + DDP.

For every registered image method (those whose loss spans the batch, and the per-sample ones):
the same encoder/head/loss the CLI builds, wrapped in DistributedDataParallel as `fit` wraps
it, in float64 (the gradient all-reduce is DDP's own). Each rank gets its half of the rows of
the same views; the mean of the ranks' losses must equal the full-batch loss and DDP's averaged
gradients must equal the full-batch gradients (1e-6). The peers' shipped bugs were off by
exactly 1/world_size (lightly #1920, #1977).

BatchNorm choice: BN layers are put in eval mode (running statistics), so normalization is the
same per process and on the full batch. Train-mode BN normalizes per process (as in the papers'
per-GPU BN unless SyncBN) and is not expected to match; that is a modelling choice, not a bug.

Also: distributed feature extraction for kNN (strided shards, gathered) equals one process.
"""

from __future__ import annotations

import inspect
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from torch import nn

from selfsup.augment import recipes
from selfsup.build import METHODS, build_views
from selfsup.data.memory import InMemoryDataset
from selfsup.encoders import create_encoder
from tests.two_processes import WORLD, run_on_ranks

N = 8  # full batch; each rank holds N / WORLD
SIZE = 16
# The papers' head widths (8192-d Barlow Twins, 65536-d DINO) and queues (MoCo 65536, NNCLR
# 98304) cost gigabytes in float64; the equality does not depend on them.
SMALL = dict(
    proj_hidden_dim=32, proj_dim=16, pred_hidden_dim=32, hidden_dim=32, bottleneck_dim=16,
    out_dim=64, embed_dim=16, queue_size=64, support_set_size=64,
)  # fmt: skip
# NNCLR casts its projections with .float() (for autocast), so it runs in float32 here.
DTYPE = {"nnclr": torch.float32}


def _buildable(name: str) -> bool:
    """Whether method `name` builds on an image encoder with default arguments (not text)."""
    try:
        _build(name)
    except Exception:  # a method that needs other inputs (text) is out of scope here
        return False
    return True


def _build(name: str) -> nn.Module:
    torch.manual_seed(0)
    encoder = create_encoder("convnet_small", width=4)
    params = inspect.signature(METHODS[name].build).parameters
    small = {k: v for k, v in SMALL.items() if k in params}
    method = METHODS[name].build(encoder, **small).to(DTYPE.get(name, torch.float64))
    method.train()
    for m in method.modules():  # see the module docstring: per-process-equivalent BN
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    return method


def _views(name: str) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The same views in every process: (list of (N, 3, S, S) float64/32, labels (N,))."""
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (N, 3, SIZE, SIZE), dtype=torch.uint8, generator=g)
    views = build_views(name, "", SIZE)(images, generator=g)
    return [v.to(DTYPE.get(name, torch.float64)) for v in views], torch.arange(N) % 3


def _loss_and_grads(model: nn.Module, method: nn.Module, views, labels) -> dict:
    loss = model(views, labels).loss
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in method.named_parameters() if p.grad is not None}
    return {"loss": loss.detach(), "grads": grads}


# Every image method: batch-spanning losses (gathered) and per-sample losses (averaged by DDP)
# must both match, label losses included (they mine the gathered global batch; mining only the
# local batch was solo-learn's bug #229).
IMAGE_METHODS = [
    name for name in sorted(METHODS) if hasattr(recipes, METHODS[name].views) and _buildable(name)
]


def _run_method(name: str, rank: int | None) -> dict:
    method = _build(name)
    views, labels = _views(name)
    labels = labels if METHODS[name].needs_labels else None
    if rank is None:
        return _loss_and_grads(method, method, views, labels)
    rows = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
    model = nn.parallel.DistributedDataParallel(method)  # as engine.loop.fit wraps it
    local = None if labels is None else labels[rows]
    return _loss_and_grads(model, method, [v[rows] for v in views], local)


def _run_or_error(name: str, rank: int) -> dict:
    """One method's result, or its error as text (so one broken method fails only its case)."""
    try:
        return _run_method(name, rank)
    except Exception as e:  # reported by the parametrized test of `name`
        return {"error": f"{type(e).__name__}: {e}"}


def _features(rank: int | None) -> torch.Tensor:
    from selfsup.augment.recipes import eval_view
    from selfsup.eval.features import extract_features

    torch.manual_seed(0)
    encoder = create_encoder("convnet_small", width=4)
    g = torch.Generator().manual_seed(2)
    n = 11  # not a multiple of the world size: the last shard is padded, then trimmed
    data = InMemoryDataset(
        torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=g)
    )
    return extract_features(encoder, data, eval_view(SIZE), batch_size=4, precision="fp32")


def _rank_results(rank: int) -> dict:
    result = {name: _run_or_error(name, rank) for name in IMAGE_METHODS}
    result["_features"] = _features(rank)
    return result


@pytest.fixture(scope="module")
def two_ranks() -> list[dict]:
    """Every rank's results, computed once for all parametrized cases (one process launch)."""
    return run_on_ranks(_rank_results)


def test_simclr_is_covered():
    assert "simclr" in IMAGE_METHODS


@pytest.mark.skipif(not torch_dist.is_available(), reason="torch.distributed unavailable")
@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_two_processes_equal_one_full_batch(two_ranks, name):
    for r in two_ranks:
        assert "error" not in r[name], r[name].get("error")
    full = _run_method(name, None)
    mean_loss = sum(r[name]["loss"] for r in two_ranks) / WORLD
    torch.testing.assert_close(mean_loss, full["loss"], rtol=1e-6, atol=1e-6)
    for r in two_ranks:
        assert r[name]["grads"].keys() == full["grads"].keys()
        for k, g in full["grads"].items():
            torch.testing.assert_close(r[name]["grads"][k], g, rtol=1e-6, atol=1e-6, msg=k)


@pytest.mark.skipif(not torch_dist.is_available(), reason="torch.distributed unavailable")
def test_distributed_feature_extraction_equals_single_process(two_ranks):
    single = _features(None)
    assert single.shape == (11, 32)
    for r in two_ranks:  # other batch compositions: float32 rounding differs (~1e-8) only
        torch.testing.assert_close(r["_features"], single, rtol=1e-5, atol=1e-6)
