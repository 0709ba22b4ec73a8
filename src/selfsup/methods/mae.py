"""MAE: masked autoencoders (He et al. 2022, "Masked Autoencoders Are Scalable Vision Learners").

Hide a random 75 % of the patches of each image, encode only the visible 25 % with the ViT,
and let a light decoder predict the pixels of the hidden patches from the encoded visible
ones plus a shared mask token; the loss is the MSE on the hidden patches only.

The encoder must run on visible patches: a ViT from `selfsup.encoders.vit`, or a timm
`VisionTransformer` (wrapped by `as_masked_encoder`; see `TimmViT` for what it needs).
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.augment.masking import random_masking
from selfsup.encoders.patches import patchify, unpatchify
from selfsup.encoders.vit import as_masked_encoder
from selfsup.heads.mae_decoder import MAEDecoder
from selfsup.losses.reconstruction import masked_reconstruction_loss
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.registry import register_method


class MAE(Method):
    """backbone: a ViT (see module docstring).

    mask_ratio: fraction of patches hidden per image (paper: 0.75).
    decoder_dim, decoder_depth, decoder_heads: the light decoder (paper: 512, 8, 16; far
        smaller suffices for 32x32 CIFAR, e.g. 128-192 wide and 4 deep).
    norm_pix: regress per-patch normalized pixels (paper: True, its best setting, Table 1d).
    """

    def __init__(
        self,
        backbone: nn.Module,
        mask_ratio: float = 0.75,
        decoder_dim: int = 512,
        decoder_depth: int = 8,
        decoder_heads: int = 16,
        norm_pix: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        self.backbone = as_masked_encoder(backbone)
        self.mask_ratio = mask_ratio
        self.norm_pix = norm_pix
        b = self.backbone
        self.decoder = MAEDecoder(
            encoder_dim=b.embed_dim,
            grid_size=b.grid_size,
            patch_dim=b.patch_size**2 * b.in_chans,
            dim=decoder_dim,
            depth=decoder_depth,
            num_heads=decoder_heads,
            num_prefix_tokens=b.num_prefix_tokens,
        )

    def predict(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """images: (N, C, H, W) -> (pred (N, L, p * p * C), mask (N, L), 1 = hidden)."""
        n, length = images.shape[0], self.backbone.num_patches
        ids_keep, mask, ids_restore = random_masking(
            n, length, self.mask_ratio, images.device, generator=generator
        )
        tokens = self.backbone.forward_visible(images, ids_keep)  # (N, 1 + K, D)
        return self.decoder(tokens, ids_restore), mask

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [images (N, C, H, W) normalized]; one view, the mask is the augmentation."""
        images = views[0]
        pred, mask = self.predict(images)
        target = patchify(images, self.backbone.patch_size)
        loss = masked_reconstruction_loss(pred, target, mask, self.norm_pix)
        return StepOutput(loss=loss, z=None, logs={"reconstruction": loss.detach()})

    @torch.no_grad()
    def reconstruct(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """images: (N, C, H, W) normalized -> (pred_images (N, C, H, W), mask (N, L)).

        pred_images hold the prediction for every patch, in the input's (normalized) pixel
        space. With norm_pix the model predicts standardized patches; they are mapped back
        with each true patch's mean and std, as in MAE's visualization, which borrows those
        two numbers from the hidden patches (the picture flatters the model a little).
        """
        pred, mask = self.predict(images, generator)
        if self.norm_pix:
            target = patchify(images, self.backbone.patch_size)
            mean = target.mean(dim=-1, keepdim=True)
            std = (target.var(dim=-1, keepdim=True) + 1e-6).sqrt()
            pred = pred * std + mean
        return unpatchify(pred, self.backbone.patch_size, self.backbone.grid_size), mask


@register_method("mae", views="mae_views")
def build_mae(
    encoder: nn.Module,
    mask_ratio: float = 0.75,
    decoder_dim: int = 512,
    decoder_depth: int = 8,
    decoder_heads: int = 16,
    norm_pix: bool = True,
) -> MAE:
    """MAE (He et al. 2022): the paper's 75 % masking, 8 x 512 decoder, normalized-pixel targets.

    encoder: a ViT (vit_tiny_cifar, vit_small_cifar, vit_micro_cifar or a timm ViT).
    """
    return MAE(encoder, mask_ratio, decoder_dim, decoder_depth, decoder_heads, norm_pix)
