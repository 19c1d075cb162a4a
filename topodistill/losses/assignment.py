"""Adaptive group assignment with experts and Gumbel-softmax (Section 3.3 of the paper; the same
mechanism as Distillation Experts, Kang et al., CIKM 2020).

A selection network (linear teacher_dim → K, softmax) gives each entity a distribution over K
groups; a Gumbel-softmax sample z with annealed temperature mixes K expert MLPs f_k that map
the student representation into the teacher space; the assignment loss is
Σ_entities ‖t − Σ_k z_k f_k(s)‖². The K experts are stacked and applied with one ``einsum``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .topology import GroupChunks


def annealed_temperature(progress: float, start: float = 1.0, end: float = 1e-10) -> float:
    """T = start · (end / start)^progress, progress = epoch / epochs (the paper: (1e-10)^(e/E))."""
    return start * (end / start) ** progress


def gumbel_softmax_weights(logits: torch.Tensor, temperature: float,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """softmax((log π + g) / T) with g ~ Gumbel(0, 1) drawn from ``generator``."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    gumbel = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
    return F.softmax((F.log_softmax(logits, dim=-1) + gumbel) / temperature, dim=-1)


class ExpertAssignment(nn.Module):
    """Selection network + K experts student_dim → hidden → teacher_dim (ReLU)."""

    #: largest fraction of non-zero mixing weights for which :meth:`mix` uses the sparse form
    SPARSE_FRACTION = 0.5

    def __init__(self, teacher_dim: int, student_dim: int, num_groups: int,
                 hidden_dim: int | None = None):
        super().__init__()
        hidden = hidden_dim or (teacher_dim + student_dim) // 2
        self.num_groups, self.teacher_dim, self.student_dim = num_groups, teacher_dim, student_dim
        self.selection = nn.Linear(teacher_dim, num_groups)
        # stacked expert weights, initialised like nn.Linear (uniform ±1/sqrt(fan_in))
        self.w1 = nn.Parameter(torch.empty(num_groups, student_dim, hidden))
        self.b1 = nn.Parameter(torch.empty(num_groups, hidden))
        self.w2 = nn.Parameter(torch.empty(num_groups, hidden, teacher_dim))
        self.b2 = nn.Parameter(torch.empty(num_groups, teacher_dim))
        for w, b, fan_in in ((self.w1, self.b1, student_dim), (self.w2, self.b2, hidden)):
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    @torch.no_grad()
    def init_from_centroids(self, centroids: torch.Tensor, scale: float) -> None:
        """Make argmax of the selection network the nearest centroid: logits_k = scale·(2c_k·x − ‖c_k‖²),
        so argmax_k logits = argmin_k ‖x − c_k‖² (‖x‖² is the same for every k)."""
        if centroids.shape != (self.num_groups, self.teacher_dim):
            raise ValueError(f"centroids of shape {tuple(centroids.shape)}, expected "
                             f"({self.num_groups}, {self.teacher_dim})")
        self.selection.weight.copy_(2.0 * scale * centroids)
        self.selection.bias.copy_(-scale * centroids.square().sum(1))

    def selection_logits(self, teacher: torch.Tensor) -> torch.Tensor:
        return self.selection(teacher)

    def groups(self, teacher: torch.Tensor) -> torch.Tensor:
        """Hard assignment: argmax of the selection network."""
        return self.selection(teacher).argmax(dim=1)

    def experts(self, student: torch.Tensor) -> torch.Tensor:
        """All K experts applied to every row: (n, K, teacher_dim). Reference form."""
        hidden = torch.relu(torch.einsum("ns,ksh->nkh", student, self.w1) + self.b1)
        return torch.einsum("nkh,kht->nkt", hidden, self.w2) + self.b2

    def mix_dense(self, student: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Σ_k w_nk f_k(s_n) for every row, as two GEMMs without the (n, K, teacher_dim) tensor:
        Σ_k w_nk (h_nk W2_k + b2_k) = [w ⊙ h]_(n, K·hidden) @ W2_(K·hidden, t) + w @ b2."""
        k, s, h = self.w1.shape
        hidden = torch.relu(student @ self.w1.permute(1, 0, 2).reshape(s, k * h)
                            + self.b1.reshape(1, k * h)).reshape(-1, k, h)
        weighted = (hidden * weights.unsqueeze(2)).reshape(-1, k * h)
        return weighted @ self.w2.reshape(k * h, -1) + weights @ self.b2

    def apply_selected(self, student: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
        """f_{k_n}(s_n): for each row only its own expert ``selected[n]``, as one batched matmul
        pair. When every expert has rows and the largest group is at most twice the mean, rows
        are padded group by group to the largest group and the stacked weights are used as they
        are; otherwise rows are cut into chunks of ceil(n / K) within their group
        (:class:`GroupChunks`, fewer than 2n padded rows whatever the sizes) and each chunk's
        expert weights are gathered (``index_select``, whose backward is deterministic)."""
        n = len(selected)
        counts = torch.bincount(selected, minlength=self.num_groups)
        largest = int(counts.max())
        if bool((counts > 0).all()) and largest * self.num_groups <= 2 * n:
            gc = GroupChunks.build(selected, self.num_groups, width=largest)
            w1, b1, w2, b2 = self.w1, self.b1, self.w2, self.b2
        else:
            gc = GroupChunks.build(selected, self.num_groups)
            cg = gc.chunk_group
            w1, b1 = self.w1.index_select(0, cg), self.b1.index_select(0, cg)
            w2, b2 = self.w2.index_select(0, cg), self.b2.index_select(0, cg)
        hidden = torch.relu(torch.baddbmm(b1.unsqueeze(1), gc.pad(student), w1))
        return gc.unpad(torch.baddbmm(b2.unsqueeze(1), hidden, w2))

    def mix_sparse(self, student: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Σ_k w_nk f_k(s_n) over the (row, expert) pairs with w_nk > 0 only.

        Exact, value and gradients: a pair with w_nk = 0 (the annealed Gumbel-softmax underflows
        to exact zeros) adds 0·f_k(s_n) = 0 to the value, gives f_k's parameters the gradient
        w_nk·g = 0, and passes nothing back through the softmax, whose Jacobian row for an
        output equal to 0 is w_nk·(δ − w_n) = 0. Rows that are exactly one-hot cost one expert.
        """
        rows, experts = torch.nonzero(weights > 0, as_tuple=True)
        pair_weights = weights[rows, experts].unsqueeze(1)
        if len(rows) == len(weights):  # every row one-hot: rows == arange(n)
            return pair_weights * self.apply_selected(student, experts)
        out = pair_weights * self.apply_selected(student.index_select(0, rows), experts)
        return student.new_zeros(len(weights), self.teacher_dim).index_add(0, rows, out)

    def mix(self, student: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Σ_k w_nk f_k(s_n): the dense two-GEMM form while most weights are non-zero (early,
        high-temperature epochs), the exact sparse form (:meth:`mix_sparse`) once at most
        ``SPARSE_FRACTION`` of them are."""
        nonzero = int((weights > 0).sum())
        if nonzero > self.SPARSE_FRACTION * weights.numel():
            return self.mix_dense(student, weights)
        return self.mix_sparse(student, weights)

    def loss(self, teacher: torch.Tensor, student: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Σ_n ‖t_n − Σ_k weights_nk f_k(s_n)‖² for given (n, K) mixing weights."""
        return (teacher - self.mix(student, weights)).square().sum()

    def loss_reference(self, teacher: torch.Tensor, student: torch.Tensor,
                       weights: torch.Tensor) -> torch.Tensor:
        """The same loss through the full (n, K, teacher_dim) expert outputs (for tests)."""
        mixed = torch.einsum("nk,nkt->nt", weights, self.experts(student))
        return (teacher - mixed).square().sum()
