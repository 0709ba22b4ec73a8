"""BERT-style masked-token pretraining (Devlin et al. 2019) of a text encoder.

The views (`selfsup.augment.text_views.MaskedTokenViews`) choose 15 % of the non-special tokens
and corrupt them 80/10/10; this method predicts the original tokens at the chosen positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.losses.mlm import IGNORE_INDEX, masked_token_loss
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.registry import register_method


class MaskedTokenHead(nn.Module):
    """BERT's prediction head: Linear-GELU-LayerNorm, then a decoder tied to the token embedding.

    Tying the decoder to the input embedding (Press & Wolf 2017; BERT does it) saves V x D
    parameters and trains the embedding from both ends.
    """

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        dim = embedding.embedding_dim
        self.transform = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim))
        self.embedding = embedding
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: (..., D) token features -> (..., V) logits."""
        return F.linear(self.transform(h), self.embedding.weight, self.bias)


class MaskedLanguageModel(Method):
    """backbone (a text encoder with `forward_features` and `token_embedding`) + tied MLM head.

    training_step(views=[masked_ids, labels]): both (N, L) long; labels is IGNORE_INDEX except at
    the chosen positions. Only chosen positions go through the V-way head: 15 % of the work,
    and the loss is the mean over exactly those positions.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = MaskedTokenHead(backbone.token_embedding)

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        masked_ids, labels = views
        h = self.backbone.forward_features(masked_ids)  # (N, L, D)
        chosen = labels != IGNORE_INDEX  # (N, L); boolean indexing: one host sync, 85 % less work
        logits = self.head(h[chosen])  # (M, V)
        loss = masked_token_loss(logits, labels[chosen])
        with torch.no_grad():
            acc = (logits.argmax(-1) == labels[chosen]).float().mean()
        return StepOutput(loss=loss, logs={"mlm_accuracy": acc})


@register_method("mlm", views="mlm_views")
def build_mlm(encoder: nn.Module) -> MaskedLanguageModel:
    """BERT's masked-token pretraining (Devlin et al. 2019); the 15 % masking with 80/10/10
    corruption is the view recipe's (`selfsup.augment.text_views.mlm_views`)."""
    return MaskedLanguageModel(encoder)
