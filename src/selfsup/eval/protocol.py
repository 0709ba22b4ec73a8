"""The frozen-encoder evaluation protocol: one set of settings, one feature pass per split.

`EvalProtocol` is what `selfsup pretrain` evaluates with, what it records in results.json
("eval_protocol"), what `selfsup evaluate RUN` reads back (so it reproduces the run's numbers
on the same data) and what the kNN curve during training and the report use. Each encoder's
train and test features are extracted once and shared by kNN, the linear probe and retrieval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from selfsup.data.memory import InMemoryDataset
from selfsup.eval.features import extract_features
from selfsup.eval.knn import knn_accuracy
from selfsup.eval.linear import C_GRID, HOLDOUT, MAX_ITER, linear_probe
from selfsup.eval.retrieval import retrieval_metrics

# The bank-size rule for k: InstDisc's 200 (Wu et al. 2018) on banks of >= 10,000 samples; on the
# 1,258-image digits bank 200 neighbours span 1.6 classes (kNN 91.8 % at k=200 vs 98.0 % at 20).
LARGE_BANK, K_LARGE, K_SMALL = 10_000, 200, 20


class EvaluationError(ValueError):
    """Evaluation would print meaningless numbers (one class, non-finite features)."""


def knn_k_for(bank_size: int, k: int | None = None) -> int:
    """`k` when set, else the bank-size rule: 200 for >= 10,000 samples, 20 below."""
    if k is not None:
        return k
    return K_LARGE if bank_size >= LARGE_BANK else K_SMALL


@dataclass(frozen=True)
class EvalProtocol:
    """Settings of kNN, linear probe, retrieval and feature extraction (module docstring)."""

    knn_k: int | None = None  # None: `knn_k_for`'s bank-size rule; `resolve` fixes it
    knn_t: float = 0.1  # InstDisc (Wu et al. 2018)
    linear: bool = True
    c_grid: tuple[float, ...] = C_GRID  # linear probe (eval.linear's docstring)
    holdout: float = HOLDOUT
    seed: int = 0
    max_iter: int = MAX_ITER
    retrieval_ks: tuple[int, ...] = (1, 5, 10)  # Recall@K; () skips retrieval
    batch_size: int = 512
    precision: str = "bf16"  # the training default (engine.config.TrainConfig)

    def resolve(self, bank_size: int) -> EvalProtocol:
        """This protocol with `knn_k` fixed for a kNN bank of `bank_size` samples."""
        return dataclasses.replace(self, knn_k=knn_k_for(bank_size, self.knn_k))

    def to_dict(self) -> dict:
        """JSON-ready fields (tuples as lists), as recorded in results.json."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict, source: str = "eval_protocol") -> EvalProtocol:
        """The protocol `to_dict` wrote; `source` names the file in errors."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise EvaluationError(
                f"{source}: unknown evaluation settings {unknown}; known: {sorted(names)}. "
                "The run was written by another selfsup version: pass the settings as flags."
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def label_problem(train: InMemoryDataset, test: InMemoryDataset | None) -> str | None:
    """Why `train`/`test` cannot measure anything (no labels, < 2 classes), or None if they can."""
    if test is None or train.targets is None or test.targets is None:
        return f"{train.name or 'data'}: evaluation needs labeled data with a test split"
    classes = train.targets.unique()
    if len(classes) < 2:
        return (
            f"{train.name or 'data'}: the labels hold {len(classes)} class; kNN, linear and "
            "retrieval accuracy need >= 2 (with one class every metric is 100 %). Evaluate on "
            "data with at least two labeled classes (a folder with one sub-folder per class)."
        )
    return None


def check_finite(features: torch.Tensor, name: str, data: str = "data") -> torch.Tensor:
    """`features` (N, D) unchanged, or EvaluationError when rows hold NaN/Inf."""
    bad = int((~features.isfinite().all(1)).sum()) if features.numel() else 0
    if bad:
        raise EvaluationError(
            f"{name}: the encoder outputs NaN/Inf for {bad} of {len(features)} samples of "
            f"{data}; are the weights finite? (Retrain with train.precision=fp32 or a lower lr.)"
        )
    return features


def encoder_features(
    encoder: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    data: InMemoryDataset,
    transform: Callable[[torch.Tensor], torch.Tensor] | None,
    protocol: EvalProtocol,
    device: str | torch.device = "cpu",
    name: str = "encoder",
) -> torch.Tensor:
    """Finite frozen features (N, D) of `data` at the protocol's batch size and precision."""
    f = extract_features(encoder, data, transform, protocol.batch_size, device, protocol.precision)
    return check_finite(f, name, data.name or "data")


def evaluate_features(
    train_f: torch.Tensor,
    train_y: torch.Tensor,
    test_f: torch.Tensor,
    test_y: torch.Tensor,
    protocol: EvalProtocol | None = None,
) -> dict[str, float]:
    """{"knn_top1", "knn_top5", "linear_top1", "recall@K"..., "map@r"} in [0, 1] from train
    (N, D)/(N,) and test (M, D)/(M,) features; retrieval: every test row queries the others."""
    p = (protocol or EvalProtocol()).resolve(len(train_f))
    knn = knn_accuracy(train_f, train_y, test_f, test_y, k=p.knn_k, temperature=p.knn_t)
    out = {"knn_top1": knn["top1"], "knn_top5": knn["top5"]}
    if p.linear:
        out["linear_top1"] = linear_probe(
            train_f, train_y, test_f, test_y, p.c_grid, p.holdout, p.seed, p.max_iter
        )
    # Musgrave et al. 2020: the held-out split as query and gallery; it needs a class with two
    # test samples (a query with a same-label neighbour), else the metrics are left out.
    if p.retrieval_ks and test_y.unique(return_counts=True)[1].max() >= 2:
        out |= retrieval_metrics(test_f, test_y, ks=p.retrieval_ks)
    return out


def evaluate_encoder(
    encoder: nn.Module,
    train: InMemoryDataset,
    test: InMemoryDataset,
    transform: Callable[[torch.Tensor], torch.Tensor] | None,
    device: str | torch.device = "cpu",
    precision: str = "bf16",
    linear: bool = True,
    k: int = 200,
    temperature: float = 0.1,
    protocol: EvalProtocol | None = None,
    name: str = "encoder",
) -> dict[str, float]:
    """`evaluate_features` of `encoder`'s train and test features, each extracted once.

    protocol: the settings; without one, kNN (k, temperature) and linear as given, no retrieval.
    """
    if protocol is None:
        protocol = EvalProtocol(k, temperature, linear, retrieval_ks=(), precision=precision)
    problem = label_problem(train, test)
    if problem:
        raise EvaluationError(problem)
    train_f = encoder_features(encoder, train, transform, protocol, device, name)
    test_f = encoder_features(encoder, test, transform, protocol, device, name)
    return evaluate_features(train_f, train.targets, test_f, test.targets, protocol)


def raw_pixel_features(data: InMemoryDataset) -> torch.Tensor:
    """The trivial baseline: flattened pixels in [0, 1], (N, C*H*W)."""
    return data.inputs.flatten(1).float() / 255.0
