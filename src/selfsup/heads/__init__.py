"""Heads: the MLPs between an encoder's representation and a loss.

`MLP(dims, norm, last_norm, ...)` is the one building block; `presets` holds each paper's
projector / predictor with the paper's widths as (overridable) defaults, and `DINOHead`.
"""

from selfsup.heads.mlp import MLP
from selfsup.heads.presets import (
    DINOHead,
    barlow_twins_projector,
    byol_predictor,
    byol_projector,
    moco_v2_head,
    moco_v3_head,
    moco_v3_predictor,
    moco_v3_projector,
    nnclr_predictor,
    nnclr_projector,
    simclr_head,
    simsiam_predictor,
    simsiam_projector,
    vicreg_expander,
)

__all__ = [
    "MLP",
    "DINOHead",
    "barlow_twins_projector",
    "byol_predictor",
    "byol_projector",
    "moco_v2_head",
    "moco_v3_head",
    "moco_v3_predictor",
    "moco_v3_projector",
    "nnclr_predictor",
    "nnclr_projector",
    "simclr_head",
    "simsiam_predictor",
    "simsiam_projector",
    "vicreg_expander",
]
