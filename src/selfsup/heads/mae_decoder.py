"""MAE's light-weight decoder (He et al. 2022): visible tokens + mask tokens -> patch pixels.

The decoder is only used during pre-training, so it can be narrow and shallow; the paper's
default is 8 blocks of width 512 (16 heads), about 9 % of ViT-L's encoder compute per token.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.encoders.vit import Block, gather_tokens, sincos_pos_embed_2d


class MAEDecoder(nn.Module):
    """Maps encoder tokens of the visible patches to a prediction for every patch.

    encoder_dim: width of the encoder tokens; grid_size: (gh, gw) patches; patch_dim: values
    per patch to predict (p * p * C); dim, depth, num_heads: decoder width, blocks and heads
    (paper: 512, 8, 16); num_prefix_tokens: leading non-patch tokens (class token) in the
    encoder output, carried through the decoder as in MAE and dropped from the prediction.
    """

    def __init__(
        self,
        encoder_dim: int,
        grid_size: tuple[int, int],
        patch_dim: int,
        dim: int = 512,
        depth: int = 8,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        num_prefix_tokens: int = 1,
    ) -> None:
        super().__init__()
        self.num_prefix_tokens = num_prefix_tokens
        self.num_patches = grid_size[0] * grid_size[1]
        self.embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        pos = sincos_pos_embed_2d(dim, grid_size).unsqueeze(0)  # (1, L, dim), fixed as in MAE
        self.register_buffer("pos_embed", pos, persistent=False)
        self.blocks = nn.Sequential(*(Block(dim, num_heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pred = nn.Linear(dim, patch_dim)
        self._init_weights()

    def _init_weights(self) -> None:
        """MAE's init: xavier-uniform linears with zero bias, mask token N(0, 0.02)."""
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, tokens: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """tokens: (N, P + K, E) encoder output on the K visible patches (in `ids_keep` order),
        ids_restore: (N, L) position of each original patch in [visible, masked] order
        -> pred: (N, L, patch_dim) in the original raster order.
        """
        x = self.embed(tokens)  # (N, P + K, dim)
        p = self.num_prefix_tokens
        prefix, visible = x[:, :p], x[:, p:]
        n, k, _ = visible.shape
        masked = self.mask_token.expand(n, self.num_patches - k, -1)
        patches = gather_tokens(torch.cat([visible, masked], dim=1), ids_restore)  # unshuffle
        x = torch.cat([prefix, patches + self.pos_embed], dim=1)
        x = self.norm(self.blocks(x))
        return self.pred(x[:, p:])
