"""Bayesian Personalised Ranking loss."""

import torch
import torch.nn.functional as F


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """−Σ log σ(s⁺ − s⁻), summed over the batch as the official code does.

    (With Adam weight decay 0.001 a batch *mean* leaves the model at random level.)
    ``softplus(s⁻ − s⁺)`` is the numerically stable form of −log σ(s⁺ − s⁻).
    """
    return F.softplus(neg_scores - pos_scores).sum()
