"""COLA (Saeed, Grangier & Zeghidour 2021, "Contrastive learning of general-purpose audio
representations", ICASSP, arXiv:2010.10915).

Two segments of the same recording are a positive pair; the other recordings' segments in the
batch are the negatives. Encoder f, projection head g (one dense layer, layer norm, tanh), a
learned bilinear similarity s(x, y) = g(x)^T W g(y), and multi-class cross-entropy of picking
the anchor's own positive among the batch's (`selfsup.losses.bilinear`). The paper's encoder is
EfficientNet-B0 with global max pooling on 64-band log-mels of 1 s segments (official code:
16 kHz, 25 ms windows, 10 ms hop, 98 frames, 60-7800 Hz); here any registered encoder serves
(`audio_ntt`, `audio_resnet18` ...). The segment views are the modality's `cola_views` recipe
(two random crops of a clip; the official code adds Gaussian noise of std 0.001 to the
positive's waveform).
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.losses.bilinear import BilinearContrastiveLoss
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.registry import register_method


def cola_head(in_dim: int, out_dim: int = 512) -> nn.Sequential:
    """COLA's projection head g: Linear(in_dim, 512) -> LayerNorm -> tanh, (N, in_dim) -> (N, 512).

    As the official `get_contrastive_network` (google-research/cola/network.py) builds it for
    the bilinear similarity: Keras' Dense (glorot-uniform kernel, zero bias) and
    LayerNormalization (epsilon 1e-3, learned gain and bias), both reproduced here.
    """
    linear = nn.Linear(in_dim, out_dim)
    nn.init.xavier_uniform_(linear.weight)
    nn.init.zeros_(linear.bias)
    return nn.Sequential(linear, nn.LayerNorm(out_dim, eps=1e-3), nn.Tanh())


class COLA(Method):
    """f (backbone) -> g (projector) -> bilinear contrastive loss, anchors against positives.

    backbone: encoder with `num_features`; projector: (N, num_features) -> (N, d), `cola_head`;
    loss: `BilinearContrastiveLoss(d)`, which holds W (trained with the rest). Both segments go
    through the backbone in one forward, as the official `train_step` (BatchNorm sees all 2N).
    """

    def __init__(self, backbone: nn.Module, projector: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector
        self.loss = loss

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [anchors, positives], each (N, C, M, F) log-mels of two segments per clip."""
        x_a, x_b = views
        z = self.projector(self.backbone(torch.cat([x_a, x_b])))  # (2N, d)
        z_a, z_b = z.chunk(2)
        return StepOutput(loss=self.loss(z_a, z_b), z=(z_a, z_b))


@register_method("cola", views="cola_views")
def build_cola(encoder: nn.Module, proj_dim: int = 512, gather: bool = True) -> COLA:
    """COLA (Saeed et al. 2021): a 512-unit dense head with layer norm and tanh, bilinear
    similarity, no temperature (the official `embedding_dim` flag: 512; its temperature flag
    applies to the cosine variant only).

    gather: the other processes' segments are negatives too under torchrun (one global batch,
    as `simclr`); the official Keras/TPU code takes each replica's own batch only.
    """
    head = cola_head(encoder.num_features, proj_dim)
    return COLA(encoder, head, BilinearContrastiveLoss(proj_dim, gather=gather))
