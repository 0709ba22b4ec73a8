"""The method registry: each method's builder, with its paper's defaults, registered once.

`register_method(name, views)` marks a builder `(encoder, **hyper_parameters) -> Method` whose
keyword defaults are the paper's (cited in its docstring); `create_method(name, encoder, **kw)`
gives the method the CLI builds for `--method name`, from Python, in one call. timm's pattern:
unknown names and unknown arguments are errors that list the known ones.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from torch import nn

from selfsup.methods.base import Method

Builder = Callable[..., Method]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its builder, its paper's view recipe (a function name in
    `selfsup.augment.recipes`) and whether it trains on labels (P x K batches)."""

    build: Builder
    views: str
    needs_labels: bool = False


_METHODS: dict[str, MethodSpec] = {}


def register_method(name: str, views: str, needs_labels: bool = False):
    """Decorator: register `builder` as method `name` with its paper's view recipe."""

    def add(builder: Builder) -> Builder:
        if name in _METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        _METHODS[name] = MethodSpec(builder, views, needs_labels)
        return builder

    return add


def registered_methods() -> Mapping[str, MethodSpec]:
    """Every registration, name -> MethodSpec (a read-only view that follows the registry)."""
    return MappingProxyType(_METHODS)


def list_methods() -> list[str]:
    """Names of the registered methods, sorted."""
    return sorted(_METHODS)


def method_spec(name: str) -> MethodSpec:
    """The registration of `name`; ValueError naming the nearest known method."""
    if name not in _METHODS:
        close = difflib.get_close_matches(name, _METHODS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown method {name!r}.{hint} Known: {', '.join(list_methods())}")
    return _METHODS[name]


def paper_defaults(name: str) -> dict:
    """{argument: default} of method `name`'s builder: its paper's hyper-parameters."""
    params = inspect.signature(method_spec(name).build).parameters
    return {k: p.default for k, p in params.items() if k != "encoder"}


def create_method(name: str, encoder: nn.Module, **overrides) -> Method:
    """Method `name` around `encoder`, paper defaults except `overrides` (checked by name)."""
    defaults = paper_defaults(name)
    unknown = [k for k in overrides if k not in defaults]
    if unknown:
        close = difflib.get_close_matches(unknown[0], defaults, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"method {name!r}: unknown argument {unknown[0]!r}.{hint} Valid: {', '.join(defaults)}"
        )
    return method_spec(name).build(encoder, **overrides)
