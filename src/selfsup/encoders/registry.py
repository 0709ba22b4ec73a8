"""A timm-style registry of encoders: `@register_encoder` + `create_encoder(name, **kwargs)`.

Every registered factory returns an `nn.Module` with
  - `num_features: int`, the width of the pooled representation;
  - `forward(x) -> (N, num_features)`, the pooled representation used by heads and evaluation;
  - `forward_features(x) -> (N, D, h, w) | (N, L, D)`, the unpooled features.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_encoder(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register `fn` under its function name."""
    name = fn.__name__
    if name in _REGISTRY:
        raise ValueError(f"encoder {name!r} is registered twice")
    _REGISTRY[name] = fn
    return fn


def list_encoders(pattern: str = "") -> list[str]:
    """Registered names containing `pattern`, sorted."""
    return sorted(n for n in _REGISTRY if pattern in n)


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
