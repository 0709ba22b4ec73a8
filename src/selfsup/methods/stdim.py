"""ST-DIM (Anand, Racah, Ozair, Bengio, Cote & Hjelm 2019, "Unsupervised State Representation
Learning in Atari", NeurIPS, arXiv:1906.08226): Spatiotemporal Deep InfoMax.

Consecutive observations x_t, x_{t+1} of one episode: the global feature of x_{t+1} must pick
out, location by location, the local features of its own x_t among the batch's (global-local),
and so must x_{t+1}'s local feature at each location (local-local) (`selfsup.losses.
spatiotemporal`). No augmentation, no momentum encoder, no projection head: the encoder's own
feature map and global output are contrasted through two linear maps. The encoder must expose
`forward_features` (the local map, (N, C, h, w)) and `forward_head` (map -> global), as
`nature_cnn` does. Official defaults (atariari/methods/stdim.py and its argparser): Adam lr
3e-4, batch 64, 256-d features.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.losses.spatiotemporal import STDIMLoss
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.registry import register_method


class STDIM(Method):
    """backbone (local map + global head) -> STDIMLoss(global of t+1, locals of t+1 and t)."""

    def __init__(self, backbone: nn.Module, loss: STDIMLoss) -> None:
        super().__init__()
        for part in ("forward_features", "forward_head"):
            if not hasattr(backbone, part):
                raise ValueError(
                    f"st-dim needs an encoder with {part}() (a local feature map and the global "
                    f"head on it), which {type(backbone).__name__} lacks; use nature_cnn"
                )
        self.backbone, self.loss = backbone, loss

    def loss_on(self, obs_t: torch.Tensor, obs_next: torch.Tensor) -> StepOutput:
        """obs_t, obs_next: (N, C, H, W) consecutive observations, float in [0, 1]."""
        fmap = self.backbone.forward_features(torch.cat([obs_t, obs_next]))  # (2N, C_m, h, w)
        local_now, local_next = fmap.permute(0, 2, 3, 1).chunk(2)  # channels last
        global_now, global_next = self.backbone.forward_head(fmap).chunk(2)
        global_local, local_local = self.loss.terms(global_next, local_next, local_now)
        logs = {"global_local": global_local.detach(), "local_local": local_local.detach()}
        return StepOutput(global_local + local_local, z=(global_now, global_next), logs=logs)

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [x_t, x_{t+1}], each (N, C, H, W)."""
        return self.loss_on(*views)


@register_method("stdim", views="stdim_views")
def build_stdim(encoder: nn.Module, gather: bool = True) -> STDIM:
    """ST-DIM (Anand et al. 2019): the two linear score maps sized to the encoder's global
    width (`num_features`, 256 for nature_cnn) and local channels (`local_channels`).

    gather: other processes' frames are candidates too under torchrun (one global batch).
    """
    local = getattr(encoder, "local_channels", None)
    if local is None:
        raise ValueError(
            f"st-dim needs an encoder with a local feature map (local_channels, "
            f"forward_features, forward_head); {type(encoder).__name__} has none: use nature_cnn"
        )
    return STDIM(encoder, STDIMLoss(encoder.num_features, local, gather=gather))
