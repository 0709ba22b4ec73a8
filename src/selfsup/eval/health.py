"""Health of an embedding during training: did it collapse, is it spread out, are pairs close?

Given the two views' embeddings z_a, z_b: (N, D) of the same N samples:
- `emb_std`: mean over dimensions of the per-dimension std of the l2-normalized embeddings.
  Complete collapse (every sample the same point) gives 0; points uniform on the sphere give
  1/sqrt(D). `emb_std_ratio = emb_std * sqrt(D)` puts that on a 0..1 scale (SimSiam, Chen & He
  2021, Fig. 2 uses this std to show collapse).
- `eff_rank`: RankMe (Garrido et al. 2023): exp of the entropy of the singular values of z_a
  normalized to sum to 1; 1 when every embedding lies on one line, D when the spectrum is flat.
  Dimensional collapse (Jing et al. 2022) shows here while the std can still look fine.
- `alignment`: E ||f(x) - f(y)||^alpha over positive pairs of normalized embeddings, alpha=2
  (Wang & Isola 2020); 0 when the two views map to the same point (lower is better).
- `uniformity`: log E exp(-t ||f(x) - f(y)||^2) over distinct samples of one view, t=2
  (Wang & Isola 2020), averaged over the two views; 0 when collapsed, about -4 for points
  uniform on a high-dimensional sphere (the minimum is -2t = -4 as D grows; lower is better).
- `pos_cos` / `neg_cos`: mean cosine similarity of positive pairs (i, i) and negative pairs
  (i, j != i) across the views. Collapse: both near 1.
- `emb_norm`: mean l2 norm of z_a before normalization. A collapse to the zero vector (seen with
  VICReg's invariance term alone) hides from the metrics above after the first steps: the
  normalized noise of near-zero vectors looks spread out, with pos_cos ~ neg_cos ~ 0.

`HealthCallback` logs them every log step and warns (once) when they signal collapse.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from selfsup import dist
from selfsup.engine.loop import Callback
from selfsup.methods.base import Method, StepOutput

log = logging.getLogger(__name__)

# Collapse thresholds (ours; not from a paper). A collapsed run reads emb_std_ratio ~0.01 and
# eff_rank ~1 within a few hundred steps; healthy SimCLR/BYOL runs on digits and CIFAR-10 read
# emb_std_ratio > 0.3 and eff_rank > 5 after warm-up. Randomly initialized encoders can start
# low (features of an untrained ReLU net point in similar directions), hence `after_step`.
COLLAPSE_STD_RATIO = 0.05  # emb_std * sqrt(D) below this: the points sit on (nearly) one spot
COLLAPSE_EFF_RANK = 1.5  # RankMe below this: the embeddings lie on (nearly) one line
COLLAPSE_NORM = 1e-3  # mean ||z|| below this: the embeddings shrank to the zero vector
# HealthCallback also flags a norm 100x below its first logged value (VICReg with only the
# invariance term, digits: 0.93 at step 10, 0.003-0.007 from step 30 on).
COLLAPSE_NORM_DROP = 0.01


class CollapseError(RuntimeError):
    """Raised by `HealthCallback(stop_on_collapse=True)` when the embeddings collapsed."""


def effective_rank(z: torch.Tensor, eps: float = 1e-7) -> float:
    """RankMe (Garrido et al. 2023, eq. 1) of z: (N, D): exp(-sum p_k log p_k), p = s / |s|_1 + eps.

    s: singular values of z (not centred or normalized, as in the paper). In [1, min(N, D)].
    """
    s = torch.linalg.svdvals(z.float())
    p = s / s.sum().clamp_min(1e-12) + eps
    return float(torch.exp(-(p * p.log()).sum()))


def alignment(z_a: torch.Tensor, z_b: torch.Tensor, alpha: float = 2.0) -> float:
    """E ||a_i - b_i||^alpha of l2-normalized rows (Wang & Isola 2020, alpha=2); in [0, 4]."""
    a, b = F.normalize(z_a.float(), dim=1), F.normalize(z_b.float(), dim=1)
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """log E_{i<j} exp(-t ||z_i - z_j||^2) of l2-normalized rows (Wang & Isola 2020, t=2)."""
    x = F.normalize(z.float(), dim=1)
    sq = torch.pdist(x).pow(2)  # (N(N-1)/2,) distinct pairs
    return float(torch.logsumexp(-t * sq, dim=0) - math.log(len(sq)))


def health_metrics(z_a: torch.Tensor, z_b: torch.Tensor) -> dict[str, float]:
    """All health numbers of two views' embeddings z_a, z_b: (N, D), N >= 2 (module docstring).

    Returns emb_std, emb_std_ratio, eff_rank, alignment, uniformity, pos_cos, neg_cos, emb_norm.
    """
    z_a, z_b = z_a.detach().float(), z_b.detach().float()
    n, d = z_a.shape
    a, b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    std = float(a.std(dim=0).mean())
    cos = a @ b.T  # (N, N): diagonal = positive pairs
    pos = float(cos.diagonal().mean())
    neg = float((cos.sum() - cos.diagonal().sum()) / (n * (n - 1)))
    return {
        "emb_std": std,
        "emb_std_ratio": std * math.sqrt(d),
        "eff_rank": effective_rank(z_a),
        "alignment": alignment(z_a, z_b),
        "uniformity": (uniformity(z_a) + uniformity(z_b)) / 2,
        "pos_cos": pos,
        "neg_cos": neg,
        "emb_norm": float(z_a.norm(dim=1).mean()),
    }


def collapse_reason(
    metrics: dict[str, float],
    std_ratio: float = COLLAPSE_STD_RATIO,
    eff_rank: float = COLLAPSE_EFF_RANK,
    norm: float = COLLAPSE_NORM,
) -> str | None:
    """A sentence saying why `metrics` (from `health_metrics`) look collapsed, or None."""
    reasons = []
    if metrics.get("emb_norm", norm) < norm:
        reasons.append(
            f"mean embedding norm = {metrics['emb_norm']:.1e} < {norm:.1e} "
            "(the embeddings shrank towards the zero vector)"
        )
    if metrics["emb_std_ratio"] < std_ratio:
        reasons.append(
            f"emb_std*sqrt(D) = {metrics['emb_std_ratio']:.3f} < {std_ratio} "
            "(all samples map to nearly the same point; 1.0 = uniform on the sphere)"
        )
    if metrics["eff_rank"] < eff_rank:
        reasons.append(
            f"effective rank = {metrics['eff_rank']:.2f} < {eff_rank} "
            "(the embeddings lie on nearly one line)"
        )
    return "; ".join(reasons) or None


@dataclass
class HealthCallback(Callback):
    """Log `health_metrics(*out.z)` on every log step; warn once (or stop) on collapse.

    Reads the step's own embeddings (no extra forward): a (N, N) similarity, a pdist and one
    SVD of (N, D) in float32, only on log steps. Methods whose StepOutput has no `z` are skipped.
    after_step: ignore collapse signs before this step (random-init embeddings start bunched).
    stop_on_collapse: raise `CollapseError` instead of only warning.
    """

    stop_on_collapse: bool = False
    after_step: int = 0
    std_ratio: float = COLLAPSE_STD_RATIO
    eff_rank: float = COLLAPSE_EFF_RANK
    warned: bool = False
    message: str = ""  # the first collapse warning, for the report
    first_norm: float | None = None  # emb_norm at the first log step

    @torch.no_grad()
    def on_log(self, step: int, method: Method, out: StepOutput, metrics: dict) -> None:
        if out.z is None or len(out.z[0]) < 2:
            return
        health = health_metrics(*out.z)
        metrics.update(health)
        if self.first_norm is None:
            self.first_norm = health["emb_norm"]
        norm = max(COLLAPSE_NORM, COLLAPSE_NORM_DROP * self.first_norm)
        reason = collapse_reason(health, self.std_ratio, self.eff_rank, norm)
        if step < self.after_step:
            reason = None
        if self.stop_on_collapse:
            reason = _collective_reason(reason, out.z[0].device)
        if reason is None:
            return
        message = (
            f"step {step}: the embeddings look collapsed: {reason}. Common causes: learning rate "
            "too high, no projector/predictor asymmetry or momentum target (BYOL/SimSiam), too "
            "weak augmentation, temperature too high."
        )
        if self.stop_on_collapse:
            raise CollapseError(message + " Stopping (eval.stop_on_collapse=true).")
        if not self.warned:
            self.warned, self.message = True, message
            log.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            if dist.is_main():
                print(f"WARNING: {message}", flush=True)


def _collective_reason(reason: str | None, device: torch.device) -> str | None:
    """`reason`, or on a rank that saw no collapse while another did, a sentence saying so.

    A collective (every rank calls it on the same log step): under torchrun a stop decided per
    rank would leave the other ranks waiting forever in their next all-reduce.
    """
    if dist.world_size() == 1:
        return reason
    flag = torch.tensor(float(reason is not None), device=device)
    if float(dist.all_reduce_mean(flag)) == 0:
        return None
    return reason or "seen on another process (this one's metrics are still above the thresholds)"
