"""Config at the edge: turn a RunConfig's names and argument dicts into typed components.

Each method has a builder `(encoder, **method_args) -> Method` whose keyword arguments are the
method's hyper-parameters (with the paper's defaults); unknown arguments are an error that lists
the valid ones. `METHODS` maps CLI names to builders and to the paper's view recipe.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from selfsup.augment import recipes
from selfsup.config import ConfigError
from selfsup.heads.presets import simclr_head
from selfsup.losses.modules import NTXentLoss
from selfsup.methods.base import Method
from selfsup.methods.simclr import SimCLR


def build_simclr(
    encoder: nn.Module,
    temperature: float = 0.5,
    proj_hidden_dim: int | None = None,
    proj_dim: int = 128,
    gather: bool = True,
) -> SimCLR:
    """SimCLR: T=0.5 (the paper's CIFAR-10 setting), 2-layer head (hidden = encoder width), 128-d.

    gather: use every process's samples as negatives under torchrun (the paper's global batch).
    """
    head = simclr_head(encoder.num_features, proj_hidden_dim, proj_dim)
    return SimCLR(encoder, head, NTXentLoss(temperature=temperature, gather=gather))


@dataclass(frozen=True)
class MethodSpec:
    build: Callable[..., Method]
    views: str  # name of a function in selfsup.augment.recipes
    needs_labels: bool = False


METHODS: dict[str, MethodSpec] = {
    "simclr": MethodSpec(build_simclr, "simclr_views"),
}


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
    _check_kwargs(spec.build, method_args, f"method_args for {name}")
    return spec.build(encoder, **method_args)


def build_views(method: str, recipe: str, size: int):
    """The view maker: `recipe` (a function name in augment.recipes) or the method's default."""
    name = recipe or METHODS[method].views
    fn = getattr(recipes, name, None)
    if fn is None or name.startswith("_"):
        known = [n for n in dir(recipes) if n.endswith("_views")]
        raise ConfigError(f"unknown views recipe {name!r}. Known: {', '.join(known)}")
    return fn(size)
