"""A timm-style registry of encoders: `@register_encoder` + `create_encoder(name, **kwargs)`.

Every registered factory returns an `nn.Module` with
  - `num_features: int`, the width of the pooled representation;
  - `forward(x) -> (N, num_features)`, the pooled representation used by heads and evaluation;
  - `forward_features(x) -> (N, D, h, w) | (N, L, D)`, the unpooled features.

`create_encoder` records `encoder_name` and `encoder_kwargs` on what it builds, so a saved encoder
can be rebuilt by name. An adapter that wraps an encoder for one use (e.g. `as_masked_encoder`
for MAE) is registered with `@register_adapter` and passes those on with `keep_registry_name`:
`rebuild_encoder(name, kwargs, adapter)` then rebuilds the adapted encoder.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_ADAPTERS: dict[str, Callable[[nn.Module], nn.Module]] = {}


def register_encoder(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register `fn` under its function name."""
    name = fn.__name__
    if name in _REGISTRY:
        raise ValueError(f"encoder {name!r} is registered twice")
    _REGISTRY[name] = fn
    return fn


def register_adapter(fn: Callable[[nn.Module], nn.Module]) -> Callable[[nn.Module], nn.Module]:
    """Decorator: register `fn(encoder) -> adapted encoder` under its function name."""
    if fn.__name__ in _ADAPTERS:
        raise ValueError(f"adapter {fn.__name__!r} is registered twice")
    _ADAPTERS[fn.__name__] = fn
    return fn


def list_adapters() -> list[str]:
    """Registered adapter names, sorted."""
    return sorted(_ADAPTERS)


def is_registered(name: str) -> bool:
    """Whether `create_encoder` knows `name` (a `timm/` name is checked by timm when built)."""
    return name in _REGISTRY or (name.startswith("timm/") and len(name) > len("timm/"))


def list_encoders(pattern: str = "") -> list[str]:
    """Registered names containing `pattern`, sorted."""
    return sorted(n for n in _REGISTRY if pattern in n)


def encoder_arguments(name: str) -> set[str]:
    """The keyword arguments registered encoder `name` takes (empty for timm names), so a
    modality can size an encoder to its data (n_mels, frames) only where it asks for them."""
    if name not in _REGISTRY:
        return set()
    return set(inspect.signature(_REGISTRY[name]).parameters)


def create_encoder(name: str, **kwargs) -> nn.Module:
    """Build a registered encoder, or any timm model as `timm/<name>`.

    Unknown names raise a ValueError that lists the closest registered names.
    """
    if name.startswith("timm/"):
        from selfsup.encoders.timm_encoder import timm_encoder

        model = timm_encoder(name.removeprefix("timm/"), **kwargs)
    elif name in _REGISTRY:
        model = _REGISTRY[name](**kwargs)
    else:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown encoder {name!r}.{hint} Known: {', '.join(list_encoders())}; "
            "or 'timm/<model name>' for any timm model."
        )
    # Recorded on timm models too, so a checkpoint can rebuild whichever encoder it holds.
    model.encoder_name = name  # type: ignore[assignment]
    model.encoder_kwargs = dict(kwargs)  # type: ignore[assignment]
    return model


def keep_registry_name(adapter: nn.Module, wrapped: nn.Module, how: str) -> nn.Module:
    """Give `adapter` the registry name and kwargs of the encoder it wraps, and the name `how` of
    the registered adapter that built it, so that a saved adapter can be rebuilt by name.

    A `wrapped` that was not built by `create_encoder` has no name to pass on: the adapter stays
    unnamed, and `save_encoder` refuses it rather than write a file nothing can load.
    """
    if how not in _ADAPTERS:
        raise ValueError(f"adapter {how!r} is not registered; known: {', '.join(list_adapters())}")
    if getattr(wrapped, "encoder_name", None) is not None:
        adapter.encoder_name = wrapped.encoder_name  # type: ignore[assignment]
        adapter.encoder_kwargs = dict(getattr(wrapped, "encoder_kwargs", {}))  # type: ignore[assignment]
        adapter.encoder_adapter = how  # type: ignore[assignment]
    return adapter


def rebuild_encoder(name: str, kwargs: dict, adapter: str | None = None) -> nn.Module:
    """`create_encoder(name, **kwargs)`, then the registered `adapter` if one is named."""
    if adapter is not None and adapter not in _ADAPTERS:
        raise ValueError(f"unknown adapter {adapter!r}; known: {', '.join(list_adapters())}")
    encoder = create_encoder(name, **kwargs)
    return encoder if adapter is None else _ADAPTERS[adapter](encoder)
