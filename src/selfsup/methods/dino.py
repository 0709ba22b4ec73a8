"""DINO (Caron et al. 2021, arXiv:2104.14294): self-distillation with no labels, multi-crop.

A student (backbone + DINOHead) matches, on every crop, the sharpened and centred output
distribution of a teacher (its EMA) on the *other* global crops. Centring (a running mean of
teacher outputs subtracted before the softmax) and sharpening (a low teacher temperature)
together avoid collapse (Sec. 3.1, 5.3). The official recipe's training-time parts live here
too, through the engine's hooks: the head's last layer frozen at first, per-parameter gradient
clipping (`after_backward`) and a cosine weight-decay schedule (`weight_decay`).
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.heads import presets
from selfsup.losses.modules import DINOLoss
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.momentum import cosine_momentum, frozen_copy, update_momentum
from selfsup.methods.registry import register_method


class DINO(Method):
    """Student: backbone -> head on all crops; teacher: EMA copies on the 2 global crops.

    head: `selfsup.heads.presets.DINOHead` (its `out_dim` K sizes the center; its `last_layer`
    is the layer frozen at first). The paper's values are the defaults of `build_dino` (the
    registry's one place for them), quoted here:
    student_temp 0.1, teacher_temp 0.04, center_momentum 0.9 (paper / official defaults);
    teacher temperature warms up linearly from `warmup_teacher_temp` to `teacher_temp` over the
    first `teacher_temp_warmup` fraction of training (the paper: 0.04 -> 0.07 over 30 epochs;
    official default: 0.04 -> 0.04, i.e. none). The current value is the buffer
    `teacher_temp_now`, saved in state_dict, so a resumed run continues it exactly.
    momentum -> final_momentum: teacher EMA, 0.996 -> 1, cosine.
    freeze_last_layer: fraction of training during which the head's last layer gets no update
    (official `freeze_last_layer=1` epoch of its default 100 epochs: 0.01).
    clip_grad: each student parameter's gradient norm is clipped to this (official
    `clip_gradients`, default 3.0); None: no clipping.
    weight_decay_end: the decay follows a cosine from `train.weight_decay` (official 0.04) to
    this (official 0.4) over training; None keeps `train.weight_decay` constant.
    """

    teacher_temp_now: torch.Tensor

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        student_temp: float,
        teacher_temp: float,
        warmup_teacher_temp: float,
        teacher_temp_warmup: float,
        center_momentum: float,
        momentum: float,
        final_momentum: float,
        freeze_last_layer: float,
        clip_grad: float | None,
        weight_decay_end: float | None,
    ) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.teacher_backbone, self.teacher_head = frozen_copy(backbone), frozen_copy(head)
        self.teacher_temp, self.warmup_teacher_temp = teacher_temp, warmup_teacher_temp
        self.teacher_temp_warmup = teacher_temp_warmup
        first = self.teacher_temperature(0, 1)
        self.loss = DINOLoss(head.out_dim, student_temp, first, center_momentum)
        # A buffer, not a float attribute: a checkpoint then holds it, and resuming at step k
        # trains step k with the temperature an uninterrupted run would use.
        self.register_buffer("teacher_temp_now", torch.tensor(first))
        self.momentum, self.final_momentum = momentum, final_momentum
        self.freeze_last_layer, self.clip_grad = freeze_last_layer, clip_grad
        self.weight_decay_end = weight_decay_end

    def teacher_temperature(self, step: int, total_steps: int) -> float:
        """The teacher temperature for `step`: linear warm-up, then `teacher_temp`."""
        warm = self.teacher_temp_warmup * total_steps
        frac = min(1.0, step / warm) if warm > 0 else 1.0
        return self.warmup_teacher_temp + frac * (self.teacher_temp - self.warmup_teacher_temp)

    def _student(self, crops: list[torch.Tensor]) -> list[torch.Tensor]:
        """Crops of equal size share one backbone forward (global and local resolutions)."""
        feats, start = [], 0
        while start < len(crops):
            end = start
            while end < len(crops) and crops[end].shape == crops[start].shape:
                end += 1
            feats.append(self.backbone(torch.cat(crops[start:end])))
            start = end
        return list(self.head(torch.cat(feats)).chunk(len(crops)))

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [g1, g2, l1, ..., ln]: 2 global (N, C, H, W) then n local (N, C, h, w) crops."""
        student = self._student(views)  # V tensors (N, K)
        with torch.no_grad():
            teacher = self.teacher_head(self.teacher_backbone(torch.cat(views[:2]))).chunk(2)
        self.loss.teacher_temp = self.teacher_temp_now  # a 0-dim tensor: no host sync
        loss = self.loss([s.float() for s in student], [t.float() for t in teacher])
        logs = {"teacher_temp": self.teacher_temp_now.detach().clone()}
        return StepOutput(loss=loss, z=(student[0], student[1]), logs=logs)

    @torch.no_grad()
    def after_backward(self, step: int, total_steps: int) -> None:
        """Clip each student gradient to norm `clip_grad`, then drop the last layer's gradients
        while it is frozen (official order: `clip_gradients`, then `cancel_gradients_last_layer`;
        a parameter without gradient is skipped by the optimizer, weight decay included)."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if self.clip_grad is not None and grads:
            norms = torch.stack(torch._foreach_norm(grads))  # (P,) one norm per parameter
            scale = (self.clip_grad / (norms + 1e-6)).clamp(max=1.0)
            torch._foreach_mul_(grads, list(scale.unbind()))
        if step < self.freeze_last_layer * total_steps:
            for p in self.head.last_layer.parameters():
                p.grad = None

    def weight_decay(self, step: int, total_steps: int, base: float) -> float | None:
        """Cosine from `base` (train.weight_decay) to `weight_decay_end` (official 0.04 -> 0.4)."""
        if self.weight_decay_end is None:
            return None
        # The official cosine_scheduler has the shape of the momentum cosine: base -> final.
        return cosine_momentum(step, total_steps, base, self.weight_decay_end)

    def after_step(self, step: int, total_steps: int) -> None:
        m = cosine_momentum(step, total_steps, self.momentum, self.final_momentum)
        update_momentum(self.backbone, self.teacher_backbone, m)
        update_momentum(self.head, self.teacher_head, m)
        self.teacher_temp_now.fill_(self.teacher_temperature(step + 1, total_steps))
        self.loss.teacher_temp = self.teacher_temp_now


@register_method("dino", views="multicrop_views")
def build_dino(
    encoder: nn.Module,
    out_dim: int = 65536,
    hidden_dim: int = 2048,
    bottleneck_dim: int = 256,
    use_bn: bool = False,
    norm_last_layer: bool = True,
    student_temp: float = 0.1,
    teacher_temp: float = 0.04,
    warmup_teacher_temp: float = 0.04,
    teacher_temp_warmup: float = 0.0,
    center_momentum: float = 0.9,
    momentum: float = 0.996,
    final_momentum: float = 1.0,
    freeze_last_layer: float = 0.01,
    clip_grad: float | None = 3.0,
    weight_decay_end: float | None = 0.4,
) -> DINO:
    """DINO (Caron et al. 2021), official main_dino.py defaults: K=65,536, head 2048/256,
    temperatures 0.1 / 0.04, center momentum 0.9, teacher EMA 0.996 -> 1, the head's last layer
    frozen for 1 epoch of 100 (freeze_last_layer=0.01, a fraction of training), per-parameter
    gradient clipping 3.0, weight decay cosine from train.weight_decay (official 0.04) to
    weight_decay_end 0.4 (None: constant; SGD recipes keep theirs). teacher_temp_warmup:
    fraction of training over which the teacher temperature rises from warmup_teacher_temp."""
    head = presets.DINOHead(
        encoder.num_features, out_dim, hidden_dim, bottleneck_dim, 3, norm_last_layer, use_bn
    )
    return DINO(
        encoder,
        head,
        student_temp,
        teacher_temp,
        warmup_teacher_temp,
        teacher_temp_warmup,
        center_momentum,
        momentum,
        final_momentum,
        freeze_last_layer,
        clip_grad,
        weight_decay_end,
    )
