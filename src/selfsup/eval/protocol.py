"""The standard frozen-encoder protocol: kNN and linear probe on train -> test features."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from selfsup.data.memory import InMemoryDataset
from selfsup.eval.features import extract_features
from selfsup.eval.knn import knn_accuracy
from selfsup.eval.linear import linear_probe


def evaluate_features(
    train_f: torch.Tensor,
    train_y: torch.Tensor,
    test_f: torch.Tensor,
    test_y: torch.Tensor,
    k: int = 200,
    temperature: float = 0.1,
    linear: bool = True,
) -> dict[str, float]:
    """{"knn_top1", "knn_top5", "linear_top1"} (accuracies in [0, 1])."""
    knn = knn_accuracy(train_f, train_y, test_f, test_y, k=k, temperature=temperature)
    out = {"knn_top1": knn["top1"], "knn_top5": knn["top5"]}
    if linear:
        out["linear_top1"] = linear_probe(train_f, train_y, test_f, test_y)
    return out


def evaluate_encoder(
    encoder: nn.Module,
    train: InMemoryDataset,
    test: InMemoryDataset,
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: str | torch.device = "cpu",
    precision: str = "bf16",
    linear: bool = True,
    k: int = 200,
    temperature: float = 0.1,
) -> dict[str, float]:
    """Extract frozen features of train and test once, then kNN (k=200, t=0.1) and linear."""
    if train.targets is None or test.targets is None:
        raise ValueError("evaluation needs labels on both train and test data")
    train_f = extract_features(encoder, train, transform, device=device, precision=precision)
    test_f = extract_features(encoder, test, transform, device=device, precision=precision)
    return evaluate_features(train_f, train.targets, test_f, test.targets, k, temperature, linear)


def raw_pixel_features(data: InMemoryDataset) -> torch.Tensor:
    """The trivial baseline: flattened pixels in [0, 1], (N, C*H*W)."""
    return data.inputs.flatten(1).float() / 255.0
