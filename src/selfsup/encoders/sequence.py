"""Encoders for time series: x (N, C, T) float -> per-step (N, T, D), instance (N, D).

NaN follows TS2Vec's convention (Yue et al. 2022, "TS2Vec: Towards Universal Representation of
Time Series"): a NaN entry is a missing value, and a step whose channels are all NaN is absent
(interior gaps, and the end padding of series shorter than the batch). Every encoder here
  - computes on the series with its NaN entries set to 0, up to its last observed step: the RNNs
    pack each series to that length; the convolutions see zeros beyond it, and their activations
    there are zeroed again after every layer (so 'same' padding inside the series reads what it
    would read at the end of the series alone); the Transformer masks those keys;
  - returns zeros at per-step features beyond that last observed step;
  - pools the instance representation as the max over its observed steps (TS2Vec's
    `encoding_window='full_series'`, Sec. 3.3); a series with no observed step pools to 0.
So a series padded with NaN encodes as the series alone (exactly, up to float rounding), in
eval mode for every encoder and in train mode too where nothing random runs (BatchNorm's batch
statistics skip the padding). Random parts (dropout, TS2Vec's timestamp masking) still differ.

    gru, lstm            recurrent baselines (Cho et al. 2014; Hochreiter & Schmidhuber 1997)
    fcn, resnet1d        Wang, Yan, Oates 2017, "Time series classification from scratch with
                         deep neural networks: a strong baseline"
    series_transformer   a pre-LN Transformer over time steps (Zerveas et al. 2021's framing)
    ts2vec_encoder       TS2Vec's dilated conv encoder (selfsup.encoders.ts2vec_encoder)

`SERIES_ENCODERS` lists their registry names, for callers that pick inputs by modality.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from selfsup.encoders.registry import register_encoder
from selfsup.encoders.text_transformer import Block

SERIES_ENCODERS: list[str] = []


def register_series_encoder(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """`register_encoder`, and the name recorded in `SERIES_ENCODERS`."""
    SERIES_ENCODERS.append(fn.__name__)
    return register_encoder(fn)


def observed_steps(x: Tensor) -> tuple[Tensor, Tensor]:
    """x: (N, C, T) with NaN -> (x with NaN set to 0 (N, C, T), observed (N, T) bool).

    A step is observed when at least one channel is not NaN. Never writes into `x`.
    """
    missing = x.isnan()
    return x.masked_fill(missing, 0.0), ~missing.all(dim=1)


def series_lengths(observed: Tensor) -> Tensor:
    """observed: (N, T) bool -> (N,) long, 1 + the index of the last observed step (0: none)."""
    steps = torch.arange(1, observed.shape[1] + 1, device=observed.device)
    return (observed * steps).amax(dim=1)


def beyond_end(observed: Tensor) -> Tensor:
    """observed: (N, T) bool -> (N, T) bool, True after each series' last observed step.

    A series with no observed step keeps its first (zero) step: attention needs one key.
    """
    steps = torch.arange(observed.shape[1], device=observed.device)
    return steps >= series_lengths(observed).clamp_min(1)[:, None]


def max_pool_observed(features: Tensor, observed: Tensor) -> Tensor:
    """features: (N, T, D), observed: (N, T) -> (N, D), the max over observed steps (0 if none)."""
    pooled = features.masked_fill(~observed[..., None], float("-inf")).amax(dim=1)
    # A series with no observed step would pool to -inf; 0 keeps every output finite.
    return torch.where(observed.any(dim=1, keepdim=True), pooled, torch.zeros_like(pooled))


class SeriesEncoder(nn.Module):
    """Shared contract: `forward_features` (N, C, T) -> (N, T, D); `forward` max-pools it."""

    in_chans: int
    num_features: int

    def check(self, x: Tensor) -> None:
        """Refuse anything but a non-empty (N, in_chans, T) batch, naming the shape."""
        if x.ndim != 3 or x.shape[1] != self.in_chans or x.shape[2] == 0:
            raise ValueError(
                f"{type(self).__name__} takes series (N, C={self.in_chans}, T>=1) with NaN for "
                f"missing values and end padding, got shape {tuple(x.shape)}"
            )

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, T) -> (N, num_features), the max over each series' observed steps."""
        return max_pool_observed(self.forward_features(x), observed_steps(x)[1])


class RecurrentEncoder(SeriesEncoder):
    """nn.GRU / nn.LSTM over the steps; each series is packed to its own length, so the padding
    of a shorter series is never read (nor, bidirectional, read backwards from).

    D = hidden * (2 if bidirectional else 1); the per-step output of the last layer.
    """

    def __init__(
        self,
        cell: str,
        in_chans: int,
        hidden: int,
        layers: int,
        bidirectional: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.in_chans, self.num_features = in_chans, hidden * (2 if bidirectional else 1)
        self.rnn = rnn(
            in_chans, hidden, layers, batch_first=True, dropout=dropout, bidirectional=bidirectional
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (N, C, T) -> (N, T, D), zeros after each series' last observed step."""
        self.check(x)
        values, observed = observed_steps(x)
        # pack_padded_sequence wants lengths on the CPU (one host sync); an empty series gets 1.
        lengths = series_lengths(observed).clamp_min(1).cpu()
        packed = pack_padded_sequence(
            values.transpose(1, 2), lengths, batch_first=True, enforce_sorted=False
        )
        out, _ = self.rnn(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[2])[0]


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics skip padded steps (same state dict as BatchNorm1d).

    Without it a batch of short series padded to a long one normalizes with the padding's zeros.
    """

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:  # type: ignore[override]
        """x: (N, F, T), pad: (N, 1, T) bool -> (N, F, T)."""
        if not self.training:
            return super().forward(x)
        keep = (~pad).float()
        count = keep.sum()
        xf = x.float()  # statistics in fp32 under autocast too
        mean = (xf * keep).sum(dim=(0, 2)) / count.clamp_min(1)
        var = ((xf - mean[:, None]).square() * keep).sum(dim=(0, 2)) / count.clamp_min(1)
        with torch.no_grad():  # running_var is unbiased, as BatchNorm's
            self.num_batches_tracked += 1
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * count / (count - 1).clamp_min(1), self.momentum)
        scale = self.weight * torch.rsqrt(var + self.eps)
        return (xf - mean[:, None]) * scale[:, None] + self.bias[:, None]


class ConvBN(nn.Module):
    """Conv1d ('same' padding, no bias: BN removes it) -> masked BN -> optional ReLU, output
    zeroed beyond the series' end so the next layer reads zeros there as at a real edge."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, relu: bool = True) -> None:
        super().__init__()
        # Keras' / PyTorch's 'same' for an even kernel (8): one more zero on the right.
        self.same = ((kernel - 1) // 2, kernel // 2)
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, bias=False)
        self.bn = MaskedBatchNorm1d(out_ch)
        self.relu = relu

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        """x: (N, in_ch, T), pad: (N, 1, T) bool -> (N, out_ch, T)."""
        h = self.bn(self.conv(F.pad(x, self.same)), pad)
        return (h.relu() if self.relu else h).masked_fill(pad, 0.0)


class ResidualBlock(nn.Module):
    """Wang et al. 2017's block: ConvBN k8 -> k5 -> k3 (no ReLU), + shortcut, ReLU. The shortcut
    is 1x1 conv + BN when the width changes, else BN alone (as in their code)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [ConvBN(in_ch, out_ch, 8), ConvBN(out_ch, out_ch, 5), ConvBN(out_ch, out_ch, 3, False)]
        )
        self.project = ConvBN(in_ch, out_ch, 1, False) if in_ch != out_ch else None
        self.bn = MaskedBatchNorm1d(out_ch) if in_ch == out_ch else None

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        """x: (N, in_ch, T), pad: (N, 1, T) bool -> (N, out_ch, T), zero where padded."""
        h = x
        for conv in self.convs:
            h = conv(h, pad)
        short = self.project(x, pad) if self.project else self.bn(x, pad).masked_fill(pad, 0.0)
        return (h + short).relu()


class ConvEncoder(SeriesEncoder):
    """Wang et al. 2017's FCN (a stack of ConvBN) or ResNet (a stack of ResidualBlock)."""

    def __init__(self, layers: list[nn.Module], in_chans: int, num_features: int) -> None:
        super().__init__()
        self.in_chans, self.num_features = in_chans, num_features
        self.layers = nn.ModuleList(layers)

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (N, C, T) -> (N, T, D), zeros after each series' last observed step."""
        self.check(x)
        h, observed = observed_steps(x)
        pad = beyond_end(observed)[:, None, :]
        for layer in self.layers:
            h = layer(h, pad)
        return h.transpose(1, 2)


def sinusoids(length: int, dim: int) -> Tensor:
    """(length, dim) sine / cosine positions of Vaswani et al. 2017 (Sec. 3.5)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2], table[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return table


class SeriesTransformer(SeriesEncoder):
    """Linear(C, dim) per step + fixed sinusoidal positions, pre-LN blocks (Xiong et al. 2020;
    the text transformer's `Block`), a final LayerNorm. Steps after a series' last observed one
    are masked as attention keys, so they change nothing at the observed steps."""

    def __init__(
        self, in_chans: int, dim: int, depth: int, heads: int, max_len: int, dropout: float
    ) -> None:
        super().__init__()
        if dim % 2 or dim % heads:
            raise ValueError(f"dim must be even and divisible by heads, got {dim=} {heads=}")
        self.in_chans, self.num_features, self.max_len = in_chans, dim, max_len
        self.proj = nn.Linear(in_chans, dim)
        # Fixed, so not saved: rebuilt from (max_len, dim) with the encoder.
        self.register_buffer("positions", sinusoids(max_len, dim), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, 4.0, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (N, C, T) -> (N, T, dim), zeros after each series' last observed step."""
        self.check(x)
        if x.shape[2] > self.max_len:
            raise ValueError(f"series length {x.shape[2]} > max_len {self.max_len}")
        values, observed = observed_steps(x)
        pad = beyond_end(observed)
        h = self.drop(self.proj(values.transpose(1, 2)) + self.positions[: x.shape[2]])
        keep = ~pad[:, None, None, :]  # (N, 1, 1, T); step 0 is always kept
        for block in self.blocks:
            h = block(h, keep)
        return self.norm(h).masked_fill(pad[..., None], 0.0)


@register_series_encoder
def gru(
    in_chans: int = 1,
    hidden: int = 128,
    layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
) -> RecurrentEncoder:
    """nn.GRU (Cho et al. 2014). The sizes are ours (no paper fixes them): one layer of 128,
    small enough for CPU runs. `dropout` acts between layers only (PyTorch's GRU)."""
    return RecurrentEncoder("gru", in_chans, hidden, layers, bidirectional, dropout)


@register_series_encoder
def lstm(
    in_chans: int = 1,
    hidden: int = 128,
    layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
) -> RecurrentEncoder:
    """nn.LSTM (Hochreiter & Schmidhuber 1997); sizes as `gru` (ours, not a paper's)."""
    return RecurrentEncoder("lstm", in_chans, hidden, layers, bidirectional, dropout)


@register_series_encoder
def fcn(in_chans: int = 1) -> ConvEncoder:
    """Wang, Yan, Oates 2017's FCN: conv 128 k8 -> 256 k5 -> 128 k3, each BN + ReLU, 'same'
    padding; D = 128. (Their classifier average-pools; our instance representation max-pools.)"""
    layers = [ConvBN(in_chans, 128, 8), ConvBN(128, 256, 5), ConvBN(256, 128, 3)]
    return ConvEncoder(layers, in_chans, 128)


@register_series_encoder
def resnet1d(in_chans: int = 1) -> ConvEncoder:
    """Wang, Yan, Oates 2017's ResNet: 3 residual blocks of 64, 128, 128 filters (kernels
    8/5/3, BN + ReLU); D = 128."""
    layers = [ResidualBlock(in_chans, 64), ResidualBlock(64, 128), ResidualBlock(128, 128)]
    return ConvEncoder(layers, in_chans, 128)


@register_series_encoder
def series_transformer(
    in_chans: int = 1,
    dim: int = 128,
    depth: int = 3,
    heads: int = 4,
    max_len: int = 4096,
    dropout: float = 0.1,
) -> SeriesTransformer:
    """A small pre-LN Transformer over steps (input projection + positions as in Zerveas et al.
    2021, "A Transformer-based Framework for Multivariate Time Series Representation Learning";
    dropout 0.1 as BERT). The sizes are ours (small, for CPU runs), not a paper's."""
    return SeriesTransformer(in_chans, dim, depth, heads, max_len, dropout)
