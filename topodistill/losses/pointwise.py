"""Point-wise representation distillation: FitNet (Romero et al., ICLR 2015), as used for
recommenders by DE (Kang et al., CIKM 2020, Section 4 baselines)."""

from __future__ import annotations

import torch


def fitnet_loss(teacher: torch.Tensor, student: torch.Tensor, weight: torch.Tensor,
                bias: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_n ‖t_n − (W s_n + b)‖²: squared error between the teacher representation and the
    student representation mapped into the teacher space by a learned projection W
    (teacher_dim × student_dim)."""
    projected = student @ weight.T
    if bias is not None:
        projected = projected + bias
    return (teacher - projected).square().sum()
