"""CPC: Contrastive Predictive Coding (van den Oord, Li & Vinyals 2018, "Representation
Learning with Contrastive Predictive Coding", arXiv:1807.03748).

Per-timestep latents z_t from the encoder, an autoregressive context c_t = GRU(z_<=t), and for
each k = 1..K a bilinear score f_k(z, c_t) = z^T W_k c_t (eq. 3); InfoNCE (eq. 4) picks the
true future latent z_{t+k} of the same series among the latents z_{t+k} of every series of
the (global) batch, at every anchor time t. This is the "other sequences in the minibatch"
negative sampling (the paper's audio experiments compare several; this one is the common
variant of public implementations) with every anchor, not one random t, per step.

NaN-padded series (variable lengths, `valid = ~x.isnan().all(dim=1)`): anchors t and targets
t + k beyond a series' valid length are left out, as predictions, as positives and as
negatives. The encoder receives x as given and must cope with the NaN steps itself (the series
encoders zero them, as TS2Vec's encoder does); its latents at padded steps are replaced by 0
before the GRU, so a NaN there cannot reach the loss or the gradients.
"""

from __future__ import annotations

import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from torch import nn

from selfsup import dist
from selfsup.losses.predictive import cpc_info_nce
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.registry import register_method


def _pad_to_longest_over_ranks(
    z: torch.Tensor, valid: torch.Tensor, predictions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad the time axis to the longest T of all ranks (each rank pads its own batch), with
    invalid steps, so the latents can be gathered; the full batch would be padded the same."""
    if dist.world_size() == 1:
        return z, valid, predictions
    longest = torch.tensor(z.shape[1], device=z.device)
    torch_dist.all_reduce(longest, op=torch_dist.ReduceOp.MAX)
    extra = int(longest) - z.shape[1]
    if extra == 0:
        return z, valid, predictions
    return (
        F.pad(z, (0, 0, 0, extra)),
        F.pad(valid, (0, extra), value=False),
        F.pad(predictions, (0, 0, 0, 0, 0, extra)),
    )


def _full_precision(t: torch.Tensor) -> torch.Tensor:
    """fp16 / bf16 -> fp32; fp32 and fp64 unchanged."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class CPC(Method):
    """backbone (per-timestep latents z) -> GRU context c -> K linear predictors -> InfoNCE.

    backbone: `forward_features(x (N, C, T)) -> (N, T, D)` (one latent per input timestep),
    `forward(x) -> (N, D)` pooled (what `encode` returns). context_dim: the GRU's hidden size.
    prediction_steps: K, the largest k; clamped to T - 1 for a batch of T steps at run time.
    The K matrices W_k are one bias-free Linear(context_dim, K * D) (one matmul; every W_k
    gets a gradient, zero for k > T - 1, which DistributedDataParallel needs).
    gather: negatives from every rank under torchrun (the global batch).
    """

    def __init__(
        self,
        backbone: nn.Module,
        context_dim: int = 256,
        prediction_steps: int = 12,
        gather: bool = True,
    ) -> None:
        super().__init__()
        if prediction_steps < 1 or context_dim < 1:
            raise ValueError(
                f"need prediction_steps >= 1 and context_dim >= 1, got {prediction_steps} and "
                f"{context_dim}"
            )
        self.backbone = backbone
        d = backbone.num_features
        self.context = nn.GRU(d, context_dim, batch_first=True)
        self.predictor = nn.Linear(context_dim, prediction_steps * d, bias=False)
        self.prediction_steps, self.gather = prediction_steps, gather

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [x (N, C, T)], NaN after each series' end -> CPC's InfoNCE (0-dim)."""
        if len(views) != 1 or views[0].dim() != 3:
            raise ValueError(
                f"CPC takes one view [x (N, C, T)], got {len(views)} of shapes "
                f"{[tuple(v.shape) for v in views]}"
            )
        x = views[0]
        n, _, t = x.shape
        if t < 2:
            raise ValueError(f"CPC predicts future steps: series need >= 2 steps, got {t}")
        valid = ~x.isnan().all(dim=1)  # (N, T)
        z = self.backbone.forward_features(x)
        if z.shape[:2] != (n, t):
            raise ValueError(
                f"CPC needs one latent per input timestep: the encoder gave {tuple(z.shape)} "
                f"for {t} steps"
            )
        z = z.masked_fill(~valid[..., None], 0.0)  # (N, T, D); no NaN reaches the loss
        c, _ = self.context(z)  # (N, T, context_dim): c_t sees z_<=t only (causal)
        k = min(self.prediction_steps, t - 1)  # short series: as far ahead as they reach
        predictions = self.predictor(c).unflatten(-1, (self.prediction_steps, -1))[:, :, :k]
        if self.gather:
            z, valid, predictions = _pad_to_longest_over_ranks(z, valid, predictions)
        # Raw bilinear scores (no normalization, no temperature): in bf16 their rounding would
        # reach whole logit units, so the InfoNCE runs outside autocast, in fp32.
        with torch.autocast(z.device.type, enabled=False):
            p32, z32 = _full_precision(predictions), _full_precision(z)
            loss = cpc_info_nce(p32, z32, valid, self.gather)
        return StepOutput(loss=loss)  # one view: no pair of embeddings for health metrics


@register_method("cpc", views="cpc_views")
def build_cpc(encoder: nn.Module, context_dim: int = 256, prediction_steps: int = 12) -> CPC:
    """CPC (van den Oord et al. 2018) with the paper's audio settings (Sec. 3.1).

    context_dim: 256, the GRU's hidden state for audio. prediction_steps: 12, the paper's
    audio horizon (12 latents of 10 ms); a batch of T steps predicts min(12, T - 1) steps, so
    short UCR series (from 24 steps up) train unchanged; at one latent per sample, 12 steps
    are a short horizon for series of hundreds of steps, raise it there.
    """
    return CPC(encoder, context_dim=context_dim, prediction_steps=prediction_steps)
