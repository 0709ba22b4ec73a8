"""Config at the edge: turn a RunConfig's names and argument dicts into typed components.

Each method's builder `(encoder, **method_args) -> Method`, with its paper's defaults, lives
beside the method and is registered there (`selfsup.methods.registry`); `METHODS` is that
registry (CLI name -> builder, view recipe, labels or not). Unknown arguments are an error that
lists the valid ones. The `build_<method>` names stay importable from here.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable

import torch
from torch import nn

from selfsup.augment import recipes
from selfsup.config import ConfigError
from selfsup.data.samplers import ClassBalancedBatches
from selfsup.methods.barlow_twins import build_barlow_twins
from selfsup.methods.base import Method
from selfsup.methods.byol import build_byol
from selfsup.methods.cola import build_cola
from selfsup.methods.cpc import build_cpc
from selfsup.methods.dino import build_dino
from selfsup.methods.mae import build_mae
from selfsup.methods.mlm import build_mlm
from selfsup.methods.moco import build_moco, build_moco_v3
from selfsup.methods.nnclr import build_nnclr
from selfsup.methods.queue import MemoryQueue
from selfsup.methods.registry import MethodSpec, registered_methods
from selfsup.methods.simclr import build_simclr
from selfsup.methods.simcse import build_simcse
from selfsup.methods.simsiam import build_simsiam
from selfsup.methods.supervised import (
    build_contrastive,
    build_logistic,
    build_npair,
    build_supcon,
    build_triplet,
)
from selfsup.methods.support_set import SupportSet
from selfsup.methods.ts2vec import build_ts2vec
from selfsup.methods.vicreg import build_vicreg

__all__ = [  # the builders, re-exported: `from selfsup.build import build_simclr` keeps working
    "build_barlow_twins", "build_byol", "build_contrastive", "build_dino", "build_logistic",
    "build_mae", "build_mlm", "build_moco", "build_moco_v3", "build_nnclr", "build_npair",
    "build_simclr", "build_simcse", "build_simsiam", "build_supcon", "build_triplet",
    "build_vicreg", "build_ts2vec", "build_cpc", "build_cola", "MethodSpec", "METHODS",
    "build_method", "build_sampler", "build_views", "check_batch_size",
]  # fmt: skip

# K of the P x K batches (Hermans et al. 2017); `method_args.samples_per_class` overrides it.
SAMPLES_PER_CLASS = 4


def build_sampler(
    method_args: dict,
    targets: torch.Tensor | None,
    batch_size: int,
    seed: int,
    rank: int = 0,
    world: int = 1,
) -> ClassBalancedBatches:
    """The P x K sampler of a supervised method. K = `method_args["samples_per_class"]`, or by
    default 4, raised to ceil(batch_size / classes) when the data has too few classes for P = B/4.
    """
    if targets is None:
        raise ConfigError(
            "this method is supervised and needs labels, but the data has none (a flat folder?). "
            "Use a folder with one sub-folder per class, or a self-supervised method (simclr)."
        )
    classes = len(targets.unique())
    if classes < 2:  # every pair would be a positive: the loss has no negative to push away
        raise ConfigError(
            f"the labels of the data hold {classes} class: a supervised method needs >= 2 "
            "classes in a batch (negatives). Use a folder with one sub-folder per class (at "
            "least 2), or a self-supervised method (simclr) for unlabeled data."
        )
    k = method_args.get("samples_per_class")
    if k is None:
        k = max(SAMPLES_PER_CLASS, math.ceil(batch_size / classes))
    return ClassBalancedBatches(targets, batch_size, int(k), seed, rank, world)


# Name -> MethodSpec. Defaults are each paper's (ResNet-50 / ImageNet widths);
# configs/cifar10-*.yaml shrink them.
METHODS = registered_methods()


def _check_kwargs(fn: Callable, kwargs: dict, what: str) -> None:
    params = [p for p in inspect.signature(fn).parameters if p != "encoder"]
    for key in kwargs:
        if key not in params:
            close = difflib.get_close_matches(key, params, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{what}: unknown argument {key!r}.{hint} Valid: {', '.join(params)}")


def build_method(name: str, encoder: nn.Module, method_args: dict) -> Method:
    """The method `name` around `encoder`, with `method_args` as its hyper-parameters."""
    if name not in METHODS:
        close = difflib.get_close_matches(name, METHODS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown method {name!r}.{hint} Known: {', '.join(sorted(METHODS))}")
    spec = METHODS[name]
    if spec.needs_labels:  # the P x K sampler's K travels with the method's arguments
        method_args = {k: v for k, v in method_args.items() if k != "samples_per_class"}
    _check_kwargs(spec.build, method_args, f"method_args for {name}")
    return spec.build(encoder, **method_args)


def check_batch_size(name: str, method: Method, batch_size: int, world: int = 1) -> None:
    """Refuse batch sizes `method` cannot learn from; the error says what to change.

    Every method here compares samples within a batch (negatives, BN / covariance statistics,
    mined pairs), so one sample per batch (or per process, with BatchNorm) teaches nothing.
    A queue or support set smaller than the global batch would hold only the current batch.
    """
    if batch_size < 2:
        raise ConfigError(
            f"train.batch_size={batch_size}: {name} learns by comparing the samples of a batch "
            "(negatives or batch statistics); use train.batch_size >= 2 (typically 256-4096)."
        )
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in method.modules())
    if has_bn and batch_size // world < 2:
        raise ConfigError(
            f"train.batch_size={batch_size} over {world} processes leaves {batch_size // world} "
            f"sample per process, and BatchNorm needs >= 2; use train.batch_size >= {2 * world}."
        )
    for m in method.modules():
        if isinstance(m, MemoryQueue) and m.size < batch_size:
            arg = "support_set_size" if isinstance(m, SupportSet) else "queue_size"
            raise ConfigError(
                f"method_args.{arg}={m.size} is smaller than train.batch_size={batch_size}: "
                f"it would hold less than one batch. Use {arg} >= {batch_size} (a multiple of "
                "the batch, e.g. MoCo's 4096 on CIFAR-10 / 65536 on ImageNet) or a smaller batch."
            )


def build_views(method: str, recipe: str, size: int):
    """The view maker: `recipe` (a function name in augment.recipes) or the method's default."""
    name = recipe or METHODS[method].views
    fn = getattr(recipes, name, None)
    if fn is None or name.startswith("_"):
        known = [n for n in dir(recipes) if n.endswith("_views")]
        raise ConfigError(f"unknown views recipe {name!r}. Known: {', '.join(known)}")
    return fn(size)
