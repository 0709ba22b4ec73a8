"""A small BERT-style Transformer encoder for sentences, trained from scratch.

Pre-LayerNorm blocks (Xiong et al. 2020: stable without warm-up tricks when trained from
scratch), learned absolute positions, GELU MLP, dropout 0.1 in attention and MLP (BERT's default,
and the noise SimCSE's unsupervised views come from). Padding is `ids == pad_id` (0 for the
tokenizers trained by `selfsup.data.tokenizer`); it is masked out of attention and of pooling.

Registered sizes follow the compact BERTs of Turc et al. 2019 ("Well-Read Students"):

    text_transformer_tiny   2 layers, d=128, 2 heads
    text_transformer_mini   4 layers, d=256, 4 heads
    text_transformer_small  4 layers, d=512, 8 heads
    text_transformer_base  12 layers, d=768, 12 heads (BERT-base)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.data.tokenizer import TextTokenizer
from selfsup.encoders.registry import register_encoder

POOLINGS = ("mean", "cls", "weighted")


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """x: (N, L, D); keep: (N, 1, 1, L) bool, False at padding keys -> (N, L, D)."""
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=p)
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), keep))
        return x + self.drop(self.mlp(self.norm2(x)))


class TextTransformer(nn.Module):
    """ids (N, L) long -> pooled (N, dim) by `forward`, per token (N, L, dim) by `forward_features`.

    pooling: "mean" over non-padding tokens (Reimers & Gurevych 2019 found it better than [CLS]
    for untuned sentence embeddings), "cls" (the first token, BERT / SimCSE's choice) or
    "weighted": a mean weighted by `token_weights[id]` (a buffer, saved with the model; set it
    with `set_token_weights`, e.g. to `sif_weights` of the training corpus), Arora et al. 2017.
    positions: False drops the learned position embedding (with depth=0: a pure bag of words).
    """

    def __init__(
        self,
        vocab_size: int = 8000,
        dim: int = 256,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        max_len: int = 128,
        dropout: float = 0.1,
        pooling: str = "mean",
        pad_id: int = 0,
        positions: bool = True,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pad_id, self.pooling, self.num_features = pad_id, pooling, dim
        self.vocab_size, self.max_len = vocab_size, max_len
        self.token_embedding = nn.Embedding(vocab_size, dim)
        # Saved only when used, so checkpoints of mean / cls models keep their keys.
        weights = torch.ones(vocab_size)
        self.register_buffer("token_weights", weights, persistent=pooling == "weighted")
        self.positions = positions  # False: the (frozen, unused) table stays for the state dict
        self.position_embedding = nn.Parameter(torch.zeros(1, max_len, dim), positions)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.apply(self._init_weights)
        nn.init.trunc_normal_(self.position_embedding, std=0.02)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # BERT's initialization: N(0, 0.02) truncated, zero biases, unit LayerNorm.
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.trunc_normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward_features(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: (N, L) long -> (N, L, dim) token features (padding rows are meaningless)."""
        if ids.shape[1] > self.max_len:
            raise ValueError(f"sequence length {ids.shape[1]} > max_len {self.max_len}")
        keep = (ids != self.pad_id)[:, None, None, :]
        x = self.token_embedding(ids)
        if self.positions:
            x = x + self.position_embedding[:, : ids.shape[1]]
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, keep)
        return self.norm(x)

    def pool(self, features: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """features: (N, L, D), ids: (N, L) -> (N, D): [CLS], or the (weighted) mean over
        non-padding tokens."""
        if self.pooling == "cls":
            return features[:, 0]
        keep = (ids != self.pad_id).unsqueeze(-1).to(features.dtype)
        if self.pooling == "mean":
            return (features * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        w = keep * self.token_weights[ids].unsqueeze(-1).to(features.dtype)
        return (features * w).sum(1) / w.sum(1).clamp_min(1e-6)

    def set_token_weights(self, weights: torch.Tensor) -> None:
        """weights: (vocab_size,) >= 0, the per-token weights of `pooling="weighted"`."""
        if weights.shape != self.token_weights.shape or bool((weights < 0).any()):
            raise ValueError(f"token weights must be ({self.vocab_size},) and non-negative")
        self.token_weights.copy_(weights)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: (N, L) long -> (N, dim) pooled sentence embeddings."""
        return self.pool(self.forward_features(ids), ids)


@register_encoder
def text_transformer_tiny(**kwargs) -> TextTransformer:
    """2 layers, d=128, 2 heads (BERT-Tiny, Turc et al. 2019)."""
    return TextTransformer(**{"dim": 128, "depth": 2, "heads": 2, **kwargs})


@register_encoder
def text_transformer_mini(**kwargs) -> TextTransformer:
    """4 layers, d=256, 4 heads (BERT-Mini, Turc et al. 2019)."""
    return TextTransformer(**{"dim": 256, "depth": 4, "heads": 4, **kwargs})


@register_encoder
def text_transformer_small(**kwargs) -> TextTransformer:
    """4 layers, d=512, 8 heads (BERT-Small, Turc et al. 2019)."""
    return TextTransformer(**{"dim": 512, "depth": 4, "heads": 8, **kwargs})


@register_encoder
def text_transformer_base(**kwargs) -> TextTransformer:
    """12 layers, d=768, 12 heads (BERT-base, Devlin et al. 2019)."""
    return TextTransformer(**{"dim": 768, "depth": 12, "heads": 12, "max_len": 512, **kwargs})


def sif_weights(
    ids: torch.Tensor, vocab_size: int, special_ids: torch.Tensor, a: float = 1e-3
) -> torch.Tensor:
    """Smooth inverse frequency a / (a + p(w)) (Arora, Liang, Ma 2017, "A simple but
    tough-to-beat baseline for sentence embeddings"; a = 1e-3 their default).

    ids: (N, L) token ids of the unlabeled training text; p(w) = count of w / count of all
    non-special tokens. Special tokens (padding, [CLS], [SEP] ...) get weight 0 -> (vocab_size,).
    """
    counts = torch.bincount(ids.flatten(), minlength=vocab_size).double()
    counts[special_ids] = 0
    weights = a / (a + counts / counts.sum().clamp_min(1.0))
    weights[special_ids] = 0
    return weights.float()


@torch.no_grad()
def encode_sentences(
    encoder: nn.Module,
    tokenizer: TextTokenizer,
    sentences: list[str],
    batch_size: int = 256,
    max_length: int | None = None,
) -> torch.Tensor:
    """Embed sentences with a text encoder in eval mode -> (N, num_features) float32 on CPU.

    Sentences are batched by length (less padding, ~2x faster on CPU) and returned in input order.
    """
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    out = torch.empty(len(sentences), encoder.num_features)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids = tokenizer.encode([sentences[i] for i in idx], max_length).to(device)
        out[idx] = encoder(ids).float().cpu()
    encoder.train(was_training)
    return out
