"""Encoders: images (or tokens) -> representations, built by name through one registry.

    create_encoder("resnet18_cifar")           # a registered encoder
    create_encoder("resnet18_cifar", width=16) # any factory argument
    create_encoder("timm/resnet10t")           # any timm model (selfsup.encoders.timm_encoder)

Every encoder has `num_features`, `forward(x) -> (N, num_features)` and `forward_features(x)`.
Importing this package imports the modules that register encoders; timm is imported only when a
`timm/` name is asked for.
"""

from selfsup.encoders import (  # noqa: F401  (imported to register encoders)
    atari,
    audio,
    convnet,
    hf_text,
    resnet,
    sequence,
    text_transformer,
    ts2vec_encoder,
    vit,
)
from selfsup.encoders.convnet import ConvNet
from selfsup.encoders.registry import create_encoder, list_encoders, register_encoder
from selfsup.encoders.resnet import ResNet

__all__ = ["ConvNet", "ResNet", "create_encoder", "list_encoders", "register_encoder"]
