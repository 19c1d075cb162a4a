"""Prediction-level (ranking) distillation losses on student scores.

Both take the student's scores of items chosen from the teacher's ranking of each user's
unobserved items (the lists are computed once by the `rank` stage).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def position_weights(top_k: int, decay: float, device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """RD's position importance w_r ∝ exp(−r / λ), r = 1 … K, normalised to sum to 1
    (Tang & Wang, KDD 2018, Section 3.2)."""
    ranks = torch.arange(1, top_k + 1, device=device, dtype=dtype)
    w = torch.exp(-ranks / decay)
    return w / w.sum()


def rd_loss(top_scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Ranking Distillation: the teacher's top-K unobserved items are extra positives,
    −Σ_u Σ_r w_r log σ(ŝ_{u, π_r}), with ``top_scores`` (users, K) in the teacher's order."""
    return -(F.logsigmoid(top_scores) * weights).sum()


def rrd_loss(interesting: torch.Tensor, uninteresting: torch.Tensor) -> torch.Tensor:
    """Relaxed Ranking Distillation (Kang et al., CIKM 2020, Eq. 4): per user, the negative
    log-likelihood of the teacher's order of its K interesting items, with the M uninteresting
    items only required to rank below all of them:

        −Σ_k [ ŝ_{π_k} − log( Σ_{l ≥ k} exp ŝ_{π_l} + Σ_{j ∈ U} exp ŝ_j ) ].

    ``interesting`` (users, K) is in the teacher's order; ``uninteresting`` is (users, M).
    Computed with a reversed cumulative log-sum-exp (stable, no loop over k).
    """
    tail = torch.logcumsumexp(interesting.flip(1), dim=1).flip(1)  # log Σ_{l ≥ k} exp ŝ_{π_l}
    below = torch.logsumexp(uninteresting, dim=1, keepdim=True)
    return -(interesting - torch.logaddexp(tail, below)).sum()
