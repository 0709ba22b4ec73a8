"""TS2Vec's encoder (Yue et al. 2022, "TS2Vec: Towards Universal Representation of Time
Series", Sec. 3.1; their models/encoder.py and models/dilated_conv.py), written afresh.

    x (N, C, T) --Linear(C, hidden) per step--> latent (N, T, hidden)
      --timestamp masking (training only): latent set to 0 at masked steps-->
      --depth residual blocks of width hidden, then one of width out_dim; block i has
        dilation 2**i: GELU -> conv k3 -> GELU -> conv k3, + the input (1x1 conv when the width
        changes, and always in the last block)-->
      --dropout 0.1 (their repr_dropout)--> (N, T, out_dim)

As theirs, a step with any NaN channel has its latent set to 0 (a missing step is treated as
masked). One deviation, for variable lengths: their activations after a series' last observed
step are not zeroed, so padding leaks into the last steps' receptive fields (up to 2**depth
steps away); here they are zeroed after every convolution, and a NaN-padded series encodes
exactly as the series alone (see selfsup.encoders.sequence).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from selfsup.encoders.sequence import (
    SeriesEncoder,
    beyond_end,
    observed_steps,
    register_series_encoder,
)

MASK_MODES = ("binomial", "continuous", "none")


class DilatedBlock(nn.Module):
    """GELU -> conv(k3, dilation d) -> GELU -> conv(k3, d), + residual; 'same' length."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int, final: bool) -> None:
        super().__init__()
        # kernel 3: the receptive field 2d + 1 is odd, so padding d keeps the length.
        self.conv1 = nn.Conv1d(in_ch, out_ch, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(out_ch, out_ch, 3, padding=dilation, dilation=dilation)
        project = in_ch != out_ch or final
        self.projector = nn.Conv1d(in_ch, out_ch, 1) if project else None

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        """x: (N, in_ch, T), zero where `pad` (N, 1, T) -> (N, out_ch, T), zero where `pad`."""
        residual = x if self.projector is None else self.projector(x)
        h = self.conv1(F.gelu(x)).masked_fill(pad, 0.0)  # GELU(0) = 0: conv2 sees zeros there
        return (self.conv2(F.gelu(h)) + residual).masked_fill(pad, 0.0)


class TS2VecEncoder(SeriesEncoder):
    """x (N, C, T) -> per-step (N, T, out_dim); `forward` max-pools the observed steps.

    mask_mode: "binomial" (each step masked with probability `mask_p`, their default),
    "continuous" (5 spans of 10 % of T each, their ablation; `mask_p` unused) or "none".
    Masking runs in training mode only; eval mode encodes every step.
    """

    def __init__(
        self, in_chans: int, hidden: int, out_dim: int, depth: int, mask_mode: str, mask_p: float
    ) -> None:
        super().__init__()
        if mask_mode not in MASK_MODES or not 0.0 <= mask_p < 1.0:
            raise ValueError(
                f"mask_mode in {MASK_MODES} and 0 <= mask_p < 1, got {mask_mode!r}, {mask_p}"
            )
        self.in_chans, self.num_features = in_chans, out_dim
        self.mask_mode, self.mask_p = mask_mode, mask_p
        self.input_fc = nn.Linear(in_chans, hidden)
        widths = [hidden] * depth + [out_dim]
        self.blocks = nn.ModuleList(
            DilatedBlock(widths[i - 1] if i else hidden, w, 2**i, i == depth)
            for i, w in enumerate(widths)
        )
        self.repr_dropout = nn.Dropout(0.1)

    def timestamp_mask(self, n: int, t: int, device: torch.device) -> Tensor:
        """(N, T) bool, True where a step's latent is kept (torch's RNG, on `device`)."""
        if self.mask_mode == "binomial":
            return torch.rand(n, t, device=device) >= self.mask_p
        if self.mask_mode == "continuous":  # their generate_continuous_mask(n=5, l=0.1)
            spans, width = max(min(5, t // 2), 1), max(int(0.1 * t), 1)
            start = torch.randint(t - width + 1, (n, spans, 1), device=device)
            steps = torch.arange(t, device=device)
            return ~((steps >= start) & (steps < start + width)).any(dim=1)
        return torch.ones(n, t, dtype=torch.bool, device=device)

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (N, C, T) -> (N, T, out_dim), zeros after each series' last observed step."""
        self.check(x)
        values, observed = observed_steps(x)
        keep = ~x.isnan().any(dim=1)  # theirs: any NaN channel -> the step's latent is 0
        if self.training:
            keep = keep & self.timestamp_mask(x.shape[0], x.shape[2], x.device)
        h = self.input_fc(values.transpose(1, 2)).masked_fill(~keep[..., None], 0.0)
        h, pad = h.transpose(1, 2), beyond_end(observed)[:, None, :]
        for block in self.blocks:
            h = block(h, pad)
        return self.repr_dropout(h).transpose(1, 2)


@register_series_encoder
def ts2vec_encoder(
    in_chans: int = 1,
    hidden: int = 64,
    out_dim: int = 320,
    depth: int = 10,
    mask_mode: str = "binomial",
    mask_p: float = 0.5,
) -> TS2VecEncoder:
    """TS2Vec's defaults (Yue et al. 2022, Sec. 4 / their TS2Vec class): hidden 64, output 320,
    10 hidden residual blocks (+ 1 to out_dim), binomial timestamp masking with p = 0.5."""
    return TS2VecEncoder(in_chans, hidden, out_dim, depth, mask_mode, mask_p)
