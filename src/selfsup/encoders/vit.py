"""Vision Transformer (Dosovitskiy et al. 2021) sized for small images, as used by MAE.

Follows MAE's encoder (He et al. 2022, `models_mae.py`): a class token, a *fixed* 2-D sin-cos
position embedding, pre-norm transformer blocks (qkv bias, GELU MLP, LayerNorm eps 1e-6) and a
final LayerNorm. The blocks name their parameters as timm's (`norm1`, `attn.qkv`, `attn.proj`,
`norm2`, `mlp.fc1`, `mlp.fc2`) but are written here: importing timm costs ~2 s.

Besides the registry contract (`num_features`, `forward`, `forward_features`) it runs on a
subset of patches (`forward_visible`), which is what makes MAE cheap: the encoder never sees
the 75 % masked patches.

Registered sizes (patch 4 on 32x32 images -> an 8x8 grid, 64 patches):
  vit_micro_cifar  dim 128, depth 4,  heads 4   (CPU tests and learning checks)
  vit_tiny_cifar   dim 192, depth 12, heads 3   (ViT-Ti, Touvron et al. 2021)
  vit_small_cifar  dim 384, depth 12, heads 6   (ViT-S)

Any timm `VisionTransformer` can serve MAE too through `TimmViT` / `as_masked_encoder`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.encoders.registry import keep_registry_name, register_adapter, register_encoder


def sincos_pos_embed_2d(embed_dim: int, grid_size: tuple[int, int]) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding (MAE; Vaswani et al. 2017 frequencies).

    Returns (gh * gw, embed_dim) in raster order: the first half of the channels encodes the
    row, the second half the column, each as [sin(pos * w_k), cos(pos * w_k)] with
    w_k = 1 / 10000^(k / (D / 4)). embed_dim must be a multiple of 4.
    """
    if embed_dim % 4:
        raise ValueError(
            f"embed_dim {embed_dim} must be a multiple of 4 for a 2-D sin-cos embedding"
        )
    gh, gw = grid_size
    omega = 1.0 / 10000 ** (torch.arange(embed_dim // 4, dtype=torch.float64) / (embed_dim / 4))
    rows, cols = torch.meshgrid(
        torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64), indexing="ij"
    )

    def embed_1d(pos: torch.Tensor) -> torch.Tensor:  # (L,) -> (L, D / 2)
        angles = pos.flatten()[:, None] * omega[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([embed_1d(rows), embed_1d(cols)], dim=1).float()


def gather_tokens(tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """tokens: (N, L, D), ids: (N, K) long -> (N, K, D), row n taking tokens[n, ids[n]]."""
    return torch.gather(tokens, 1, ids.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


class Attention(nn.Module):
    """Multi-head self-attention through `scaled_dot_product_attention` (fused kernels)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not a multiple of num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)  # with bias, as MAE (qkv_bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, L, D) -> (N, L, D)."""
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # (N, heads, L, D / heads)
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)).

    drop_path: stochastic depth (Huang et al. 2016), the probability of skipping the residual
    branch per sample in training (MAE fine-tuning uses 0.1 for ViT-B; pre-training 0).
    """

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path

    def _drop(self, branch: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_path == 0.0:
            return branch
        keep = branch.new_empty(branch.shape[0], 1, 1).bernoulli_(1.0 - self.drop_path)
        return branch * keep / (1.0 - self.drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, L, D) -> (N, L, D)."""
        x = x + self._drop(self.attn(self.norm1(x)))
        return x + self._drop(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """ViT encoder with a class token and a fixed sin-cos position embedding.

    global_pool: "cls" pools the class token (ViT, MAE linear probing); "avg" averages the
    patch tokens (MAE fine-tuning default). Both pool the final-LayerNorm output.
    """

    num_prefix_tokens = 1  # the class token

    def __init__(
        self,
        img_size: int = 32,
        patch_size: int = 4,
        in_chans: int = 3,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        global_pool: str = "cls",
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if global_pool not in ("cls", "avg"):
            raise ValueError(f"global_pool must be 'cls' or 'avg', got {global_pool!r}")
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size, self.patch_size, self.in_chans = img_size, patch_size, in_chans
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.embed_dim = self.num_features = embed_dim
        self.global_pool = global_pool

        self.patch_embed = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        # Fixed, so a buffer: deterministic from the shape, never trained (MAE).
        pos = sincos_pos_embed_2d(embed_dim, self.grid_size)
        self.register_buffer("pos_embed", pos.unsqueeze(0), persistent=False)  # (1, L, D)
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linear, as MAE
        self.blocks = nn.Sequential(*(Block(embed_dim, num_heads, mlp_ratio, p) for p in dpr))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights()

    def _init_weights(self) -> None:
        """MAE's init: xavier-uniform linears (patch projection as a linear), cls N(0, 0.02)."""
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.normal_(self.cls_token, std=0.02)
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def embed_patches(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) -> patch tokens with position (N, L, D), raster order."""
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        if tokens.shape[1] != self.num_patches:
            raise ValueError(
                f"expected {self.img_size}x{self.img_size} images, got {tuple(x.shape[-2:])}"
            )
        return tokens + self.pos_embed

    def _encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (N, K, D) patch tokens -> (N, 1 + K, D) after the class token and blocks."""
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)  # no position: MAE adds 0 to it
        return self.norm(self.blocks(torch.cat([cls, tokens], dim=1)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) -> tokens (N, 1 + L, D); token 0 is the class token."""
        return self._encode_tokens(self.embed_patches(x))

    def forward_visible(self, x: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W), ids_keep: (N, K) patch indices -> (N, 1 + K, D) tokens.

        Only the K kept patches enter the blocks (MAE's encoder); token 0 is the class token.
        """
        return self._encode_tokens(gather_tokens(self.embed_patches(x), ids_keep))

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (N, 1 + L, D) -> (N, D)."""
        return tokens[:, 0] if self.global_pool == "cls" else tokens[:, 1:].mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) -> pooled representation (N, num_features)."""
        return self.pool(self.forward_features(x))


class TimmViT(nn.Module):
    """Gives a timm `VisionTransformer` the interface MAE needs from its encoder.

    Needs from the timm model: `patch_embed` returning (N, L, D) with `patch_size`,
    `grid_size` and a conv `proj` (the default; not `dynamic_img_size`), `_pos_embed` (adds
    position and prepends the prefix tokens), `norm_pre`, `blocks`, `norm`,
    `num_prefix_tokens`, `forward_head(..., pre_logits=True)`. Build it with `num_classes=0`.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        pe = model.patch_embed
        self.patch_size = pe.patch_size[0]
        self.grid_size = tuple(pe.grid_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.in_chans = pe.proj.in_channels
        self.embed_dim = model.embed_dim
        self.num_features = model.num_features
        self.num_prefix_tokens = model.num_prefix_tokens

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) -> (N, P + L, D), P prefix tokens first."""
        return self.model.forward_features(x)

    def forward_visible(self, x: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W), ids_keep: (N, K) -> (N, P + K, D)."""
        m, p = self.model, self.num_prefix_tokens
        tokens = m._pos_embed(m.patch_embed(x))  # (N, P + L, D), position already added
        tokens = torch.cat([tokens[:, :p], gather_tokens(tokens[:, p:], ids_keep)], dim=1)
        return m.norm(m.blocks(m.norm_pre(tokens)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) -> (N, num_features)."""
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


@register_adapter
def as_masked_encoder(encoder: nn.Module) -> nn.Module:
    """Return `encoder` if it has `forward_visible`; wrap a timm VisionTransformer; else raise.

    The wrapper keeps the registry name and kwargs of `encoder` (e.g. "timm/vit_tiny_patch16_224")
    and records this adapter, so `save_encoder` / `load_encoder` round-trip an MAE backbone.
    """
    if hasattr(encoder, "forward_visible"):
        return encoder
    from timm.models.vision_transformer import VisionTransformer as TimmVisionTransformer

    for candidate in (encoder, getattr(encoder, "model", None)):
        if isinstance(candidate, TimmVisionTransformer):
            return keep_registry_name(TimmViT(candidate), encoder, "as_masked_encoder")
    raise TypeError(
        f"{type(encoder).__name__} cannot run on visible patches only: use a ViT from "
        "selfsup.encoders.vit (e.g. 'vit_tiny_cifar') or a timm VisionTransformer."
    )


def _vit(defaults: dict, kwargs: dict) -> VisionTransformer:
    return VisionTransformer(**{**defaults, **kwargs})


@register_encoder
def vit_micro_cifar(**kwargs) -> VisionTransformer:
    """A CPU-sized ViT for tests: patch 4, dim 128, depth 4, heads 4."""
    return _vit(dict(patch_size=4, embed_dim=128, depth=4, num_heads=4), kwargs)


@register_encoder
def vit_tiny_cifar(**kwargs) -> VisionTransformer:
    """ViT-Ti (Touvron et al. 2021) for 32x32: patch 4, dim 192, depth 12, heads 3."""
    return _vit(dict(patch_size=4, embed_dim=192, depth=12, num_heads=3), kwargs)


@register_encoder
def vit_small_cifar(**kwargs) -> VisionTransformer:
    """ViT-S for 32x32: patch 4, dim 384, depth 12, heads 6."""
    return _vit(dict(patch_size=4, embed_dim=384, depth=12, num_heads=6), kwargs)
