"""DINO (Caron et al. 2021, arXiv:2104.14294): self-distillation with no labels, multi-crop.

A student (backbone + DINOHead) matches, on every crop, the sharpened and centred output
distribution of a teacher (its EMA) on the *other* global crops. Centring (a running mean of
teacher outputs subtracted before the softmax) and sharpening (a low teacher temperature)
together avoid collapse (Sec. 3.1, 5.3).
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.losses.modules import DINOLoss
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.momentum import cosine_momentum, frozen_copy, update_momentum


class DINO(Method):
    """Student: backbone -> head on all crops; teacher: EMA copies on the 2 global crops.

    head: `selfsup.heads.presets.DINOHead` (its `out_dim` K sizes the center).
    student_temp 0.1, teacher_temp 0.04, center_momentum 0.9 (paper / official defaults);
    teacher temperature warms up linearly from `warmup_teacher_temp` to `teacher_temp` over the
    first `teacher_temp_warmup` fraction of training (the paper: 0.04 -> 0.07 over 30 epochs;
    official default: no warm-up). momentum -> final_momentum: teacher EMA, 0.996 -> 1, cosine.
    Not done here: freezing the head's last layer during epoch 1 (optimizer's job).
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        student_temp: float = 0.1,
        teacher_temp: float = 0.04,
        warmup_teacher_temp: float = 0.04,
        teacher_temp_warmup: float = 0.0,
        center_momentum: float = 0.9,
        momentum: float = 0.996,
        final_momentum: float = 1.0,
    ) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.teacher_backbone, self.teacher_head = frozen_copy(backbone), frozen_copy(head)
        first = warmup_teacher_temp if teacher_temp_warmup > 0 else teacher_temp
        self.loss = DINOLoss(head.out_dim, student_temp, first, center_momentum)
        self.teacher_temp, self.warmup_teacher_temp = teacher_temp, warmup_teacher_temp
        self.teacher_temp_warmup = teacher_temp_warmup
        self.momentum, self.final_momentum = momentum, final_momentum

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
        loss = self.loss([s.float() for s in student], [t.float() for t in teacher])
        logs = {"teacher_temp": torch.tensor(self.loss.teacher_temp)}
        return StepOutput(loss=loss, z=(student[0], student[1]), logs=logs)

    def after_step(self, step: int, total_steps: int) -> None:
        m = cosine_momentum(step, total_steps, self.momentum, self.final_momentum)
        update_momentum(self.backbone, self.teacher_backbone, m)
        update_momentum(self.head, self.teacher_head, m)
        warm = self.teacher_temp_warmup * total_steps
        frac = min(1.0, (step + 1) / warm) if warm > 0 else 1.0
        self.loss.teacher_temp = self.warmup_teacher_temp + frac * (
            self.teacher_temp - self.warmup_teacher_temp
        )
