"""SimCSE (Gao, Yao, Chen 2021): contrastive sentence embeddings through the InfoNCE loss.

Unsupervised: the two views of a sentence are the sentence itself passed twice through the
encoder; only the dropout masks differ (views from `TextViews` with two `identity`
transforms). Supervised: a sentence and its positive (e.g. an entailment pair), with an
optional hard negative per row whose embeddings join every anchor's negatives. Temperature 0.05
is the paper's, cosine similarity, in-batch negatives, the loss on the anchor side only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.dist import gather_with_grad, world_size
from selfsup.losses.functional import info_nce
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.registry import register_method


def pad_cat(views: list[torch.Tensor], pad_id: int = 0) -> torch.Tensor:
    """K tensors (N_k, L_k) long -> (sum N_k, max L_k), right-padded with pad_id."""
    length = max(v.shape[1] for v in views)
    return torch.cat([F.pad(v, (0, length - v.shape[1]), value=pad_id) for v in views])


class SimCSE(Method):
    """backbone (text encoder, pooled (N, D)) [-> projector] -> InfoNCE between views.

    views: [anchor, positive] or [anchor, positive, hard_negative], each (N, L_k) long.
    projector: optional head used in training only (the paper's unsupervised model trains with
    an MLP over [CLS] and drops it at test time); `encode` always returns backbone features.
    """

    def __init__(
        self,
        backbone: nn.Module,
        temperature: float = 0.05,
        projector: nn.Module | None = None,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector if projector is not None else nn.Identity()
        self.temperature, self.pad_id = temperature, pad_id

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        if len(views) not in (2, 3):
            raise ValueError(
                f"SimCSE takes 2 or 3 views (anchor, positive[, negative]), got {len(views)}"
            )
        if views[0].shape[0] * world_size() < 2:  # no in-batch negative: the loss is 0
            raise ValueError(
                "SimCSE needs >= 2 sentences in a batch: the other sentences are the negatives "
                "(with 1 the loss is 0 and nothing is learned); use train.batch_size >= 2 "
                "(the paper: 64 unsupervised, 512 supervised)."
            )
        # One forward for all views: every row draws its own dropout mask.
        z = self.projector(self.backbone(pad_cat(views, self.pad_id)))  # (K N, D)
        z = F.normalize(z.float(), dim=-1).chunk(len(views))
        # Hard negatives of every rank join each anchor's denominator (Gao et al. eq. 5);
        # info_nce never gathers `negatives` itself (they are usually a queue).
        negatives = gather_with_grad(z[2]) if len(views) == 3 else None
        loss = info_nce(z[0], z[1], self.temperature, negatives=negatives, gather=True)
        with torch.no_grad():
            logs = {"positive_cosine": (z[0] * z[1]).sum(-1).mean()}
        return StepOutput(loss=loss, z=(z[0], z[1]), logs=logs)


@register_method("simcse", views="simcse_views")
def build_simcse(
    encoder: nn.Module, temperature: float = 0.05, proj_dim: int | None = None
) -> SimCSE:
    """SimCSE (Gao et al. 2021): temperature 0.05, in-batch negatives, dropout views.

    proj_dim: None trains on the pooled features as they are (the paper's supervised model and
    what measured best here, docs/text.md); an int adds a Linear-Tanh head of that width used
    only in training (the paper's unsupervised [CLS] MLP). The padding id is the encoder's.
    """
    projector = None
    if proj_dim is not None:
        projector = nn.Sequential(nn.Linear(encoder.num_features, proj_dim), nn.Tanh())
    return SimCSE(encoder, temperature, projector, pad_id=getattr(encoder, "pad_id", 0))
