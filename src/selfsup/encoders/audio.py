"""Encoders for log-mel spectrograms `x: (N, in_chans, M, F)` (M mel bands, F frames), normalized.

Three registered encoders, one per family of audio SSL papers:
  audio_ntt       BYOL-A's "AudioNTT2020" CNN (Niizumi et al. 2021, arXiv:2103.06695): 3 conv
                  blocks, a per-frame MLP, mean + max over time; any number of frames.
  audio_resnet18  the ResNet-18 of `encoders.resnet` with one input channel (ImageNet stem).
  audio_vit_tiny  a ViT-Ti on a non-square (M, F) grid of patches, for MAE on spectrograms
                  (Audio-MAE, Huang et al. 2022, arXiv:2207.06405, is MAE on log-mel patches).

Every one records `in_chans`, so callers that feed inputs by shape know the channel count;
`AUDIO_ENCODERS` lists their registry names, for callers that pick inputs by modality.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from selfsup.encoders.registry import register_encoder
from selfsup.encoders.resnet import ResNet, resnet18
from selfsup.encoders.vit import VisionTransformer, sincos_pos_embed_2d

AUDIO_ENCODERS: list[str] = []


def register_audio_encoder(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """`register_encoder`, and the name recorded in `AUDIO_ENCODERS`."""
    AUDIO_ENCODERS.append(fn.__name__)
    return register_encoder(fn)


# --------------------------------------------------------------------------- BYOL-A's CNN


def _conv_block(in_ch: int, out_ch: int) -> list[nn.Module]:
    """Conv3x3 (with bias, as BYOL-A) -> BN -> ReLU -> MaxPool 2x2: (N, C, M, F) -> /2 each."""
    return [
        nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(),
        nn.MaxPool2d(2, stride=2),
    ]


class AudioNTT(nn.Module):
    """BYOL-A's encoder, "AudioNTT2020" (Niizumi et al. 2021, arXiv:2103.06695, Sec. 3.4 and
    the official `byol_a/models.py`; it extends the NTT DCASE2020 task-6 audio embedding
    network, Koizumi et al. 2020, arXiv:2007.00225).

    `features`: 3 x [Conv2d 3x3 (64 ch) -> BN -> ReLU -> MaxPool 2x2] on (N, C, M, F) ->
    (N, 64, M', F'), M' = M // 8, F' = F // 8 (floor, as MaxPool). Each of the F' frames is
    flattened to 64 * M' values (mel-major, channel-minor, as the official reshape) and goes
    through `fc`: Linear(64 M', d) -> ReLU -> Dropout(0.3) -> Linear(d, d) -> ReLU.
    `forward` pools over time: max + mean (the official `x1 + x2`).

    The module names (`features.{0,1,4,5,8,9}`, `fc.{0,3}`) are the official ones, so a
    released BYOL-A state dict (e.g. AudioNTT2020-BYOLA-64x96d2048.pth) loads with
    `load_state_dict` when `in_chans=1, n_mels=64` and `d` match.

    Args:
        in_chans: input channels (BYOL-A: 1, a log-mel spectrogram).
        n_mels: M, mel bands of the input; fixes the MLP's input width 64 * (M // 8).
        d: output width D (BYOL-A's config.yaml `feature_d`: 2048; their released 512, 1024 and
            2048-d models average 73.3, 76.5 and 77.8 % over six tasks, README).
    Any number of frames F >= 8 works; M must equal `n_mels` (at least 8).
    """

    def __init__(self, in_chans: int = 1, n_mels: int = 64, d: int = 2048) -> None:
        super().__init__()
        if n_mels < 8:
            raise ValueError(f"n_mels must be >= 8 (three 2x2 max-pools), got {n_mels}")
        self.in_chans, self.n_mels = in_chans, n_mels
        self.features = nn.Sequential(
            *_conv_block(in_chans, 64), *_conv_block(64, 64), *_conv_block(64, 64)
        )
        self.fc = nn.Sequential(
            nn.Linear(64 * (n_mels // 8), d),
            nn.ReLU(),
            nn.Dropout(p=0.3),
            nn.Linear(d, d),
            nn.ReLU(),
        )
        self.num_features: int = d

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (N, in_chans, M, F) -> per-frame features (N, F // 8, D)."""
        if x.dim() != 4 or x.shape[2] != self.n_mels:
            raise ValueError(
                f"expected log-mels (N, {self.in_chans}, {self.n_mels}, frames), "
                f"got {tuple(x.shape)}"
            )
        x = self.features(x)  # (N, 64, M', F')
        x = x.permute(0, 3, 2, 1).flatten(2)  # (N, F', M' * 64): mel-major, as BYOL-A
        return self.fc(x)  # (N, F', D)

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, in_chans, M, F) -> (N, D): max over time + mean over time (BYOL-A)."""
        frames = self.forward_features(x)
        return frames.amax(dim=1) + frames.mean(dim=1)


@register_audio_encoder
def audio_ntt(in_chans: int = 1, n_mels: int = 64, d: int = 2048) -> AudioNTT:
    """BYOL-A's AudioNTT2020 (Niizumi et al. 2021): 64 mel bands, d = 2048 (`feature_d` of
    their config.yaml, on 64 x 96 log-mels of 0.95 s at 16 kHz); `num_features = d`."""
    return AudioNTT(in_chans, n_mels, d)


# --------------------------------------------------------------------------- ResNet-18


@register_audio_encoder
def audio_resnet18(in_chans: int = 1, width: int = 64, zero_init_residual: bool = False) -> ResNet:
    """`encoders.resnet.resnet18` (ImageNet stem) on log-mels: `num_features = 8 * width` (512).

    Why the ImageNet stem (7x7 stride-2 conv + max-pool; total stride 32): it takes 64 x 101 to
    a 2 x 4 map, the total stride of COLA's EfficientNet-B0 (64 x 98 -> 2 x 4), for 0.49 GFLOPs
    per clip; the CIFAR stem (total stride 8, an 8 x 13 map), made for 32x32 images, runs the
    first stage at the full 64 x 101 and costs 7.1 GFLOPs, 14x (torch's FlopCounterMode). It
    also keeps torchvision's module names, so ImageNet weights load by name (conv1 averaged
    over RGB to one channel), the transfer that ImageNet-initialized audio models use (PSLA,
    AST; Gong et al. 2021). Global average pooling, as `ResNet.forward`.
    """
    model = resnet18(in_chans, width, zero_init_residual)
    model.in_chans = in_chans  # type: ignore[assignment]  (read by callers that build inputs)
    return model


# --------------------------------------------------------------------------- ViT for MAE


class SpectrogramViT(VisionTransformer):
    """`encoders.vit.VisionTransformer` on a non-square (M, F) input: an (M / p) x (F / p) grid.

    The parent fixes a square `img_size`; this subclass only replaces the grid (and with it the
    fixed 2-D sin-cos position embedding, rows = mel, columns = time) and the shape check, so
    `forward`, `forward_visible`, the blocks and MAE's init are the parent's. MAE reads
    `grid_size`, `num_patches`, `patch_size`, `in_chans` and `embed_dim`, all set here, and
    `patchify` / `unpatchify` take non-square grids: `create_method("mae", encoder)` trains on
    (N, in_chans, M, F).
    """

    def __init__(
        self,
        n_mels: int = 64,
        frames: int = 96,
        patch_size: int = 8,
        in_chans: int = 1,
        **vit_kwargs: Any,
    ) -> None:
        if n_mels % patch_size or frames % patch_size:
            raise ValueError(
                f"n_mels {n_mels} and frames {frames} must be multiples of patch_size {patch_size}"
            )
        super().__init__(img_size=n_mels, patch_size=patch_size, in_chans=in_chans, **vit_kwargs)
        self.img_size: tuple[int, int] = (n_mels, frames)  # type: ignore[assignment]
        self.grid_size = (n_mels // patch_size, frames // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        pos = sincos_pos_embed_2d(self.embed_dim, self.grid_size).unsqueeze(0)  # (1, L, D)
        self.register_buffer("pos_embed", pos, persistent=False)

    def embed_patches(self, x: Tensor) -> Tensor:
        """x: (N, C, M, F) -> patch tokens with position (N, L, D), raster order (mel-major)."""
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(
                f"expected log-mels of {self.img_size[0]} mel bands x {self.img_size[1]} frames, "
                f"got {tuple(x.shape[-2:])}"
            )
        return super().embed_patches(x)


@register_audio_encoder
def audio_vit_tiny(
    n_mels: int = 64, frames: int = 96, patch_size: int = 8, in_chans: int = 1, **kwargs: Any
) -> SpectrogramViT:
    """ViT-Ti (dim 192, depth 12, heads 3; Touvron et al. 2021) on 64 x 96 log-mels (BYOL-A's
    0.95 s segments at 16 kHz, 10 ms hop) with 8 x 8 patches: an 8 x 12 grid of 96 patches.

    Audio-MAE (Huang et al. 2022) uses 16 x 16 patches on 128 x 1024 (8 x 64 = 512 patches);
    on 64 x 96 that gives only 4 x 6 = 24, hence 8 x 8 here. Other ViT arguments (embed_dim,
    depth, num_heads, global_pool, drop_path_rate, ...) pass through.
    """
    vit = {"embed_dim": 192, "depth": 12, "num_heads": 3, **kwargs}
    return SpectrogramViT(n_mels, frames, patch_size, in_chans, **vit)
