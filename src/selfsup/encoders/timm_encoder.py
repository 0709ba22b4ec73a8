"""Any timm model as an encoder: `create_encoder("timm/<name>", **kwargs)`.

timm (Wightman, pytorch-image-models) already separates a trunk from its classifier; built with
`num_classes=0` its `forward` returns the pooled pre-logits and `forward_features` the unpooled
map or tokens. This adapter only adds the `num_features` our contract promises: the width of what
`forward` returns, which is timm's `head_hidden_size` where a model has a pre-logits layer (e.g.
MobileNetV3: 1024) and `num_features` elsewhere.

Pretrained weights download from the Hugging Face Hub, so `pretrained` is False by default; pass
`pretrained=True` only where there is network access (or a populated HF cache).
"""

from __future__ import annotations

import timm
from torch import Tensor, nn


class TimmEncoder(nn.Module):
    """Wraps a timm model built with `num_classes=0`; the timm model is `self.model`.

    `forward(x) -> (N, num_features)`; `forward_features(x)` is timm's own: `(N, D, h, w)` for
    conv nets, `(N, L, D)` tokens for ViTs (class token first). `D` may differ from
    `num_features` where timm adds a pre-logits layer after pooling.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        hidden = getattr(model, "head_hidden_size", None)
        self.num_features: int = int(hidden if hidden is not None else model.num_features)

    def forward_features(self, x: Tensor) -> Tensor:
        """`x: (N, C, H, W)` -> timm's unpooled features."""
        return self.model.forward_features(x)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (N, C, H, W)` -> `(N, num_features)`, pooled by the model's own head."""
        return self.model(x)


def timm_encoder(
    name: str, pretrained: bool = False, in_chans: int = 3, **kwargs: object
) -> TimmEncoder:
    """`timm.create_model(name, pretrained, num_classes=0, in_chans, **kwargs)` as an encoder.

    `pretrained=True` downloads weights (network needed). Extra kwargs go to timm, e.g.
    `img_size=32` for a ViT on CIFAR-sized images.
    """
    model = timm.create_model(
        name, pretrained=pretrained, num_classes=0, in_chans=in_chans, **kwargs
    )
    return TimmEncoder(model)
