"""Topology distillation losses (Kang et al., KDD 2021, Section 3).

The *topology* of a set of representations is the matrix of their pairwise cosine similarities.
All losses are sums of squared differences between the teacher's and the student's topology.
Inputs are raw representations; they are L2-normalised here. Teacher tensors carry no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, p=2, dim=-1, eps=1e-12)


def pairwise_topology_loss(teacher: torch.Tensor, student: torch.Tensor,
                           mask: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_ij mask_ij (cos_t(i, j) − cos_s(i, j))², the direct n × n form (Eq. 3 of the paper).

    Reference implementation, and the only form that supports arbitrary pair masks.
    """
    t, s = _normalize(teacher), _normalize(student)
    diff = (t @ t.T - s @ s.T) ** 2
    if mask is not None:
        diff = diff * mask
    return diff.sum()


def full_topology_loss(teacher: torch.Tensor, student: torch.Tensor,
                       include_constant: bool = True) -> torch.Tensor:
    """FTD (Eq. 3): Σ_ij (cos_t(i, j) − cos_s(i, j))² over all pairs of the given entities.

    Computed without any n × n matrix: with row-normalised T and S,
    Σ_ij (T_i·T_j − S_i·S_j)² = ‖TᵀT‖²_F − 2‖TᵀS‖²_F + ‖SᵀS‖²_F, which costs O(n·d²).
    The teacher-only term ‖TᵀT‖²_F is a constant without gradient (and the costliest term, d_t²
    per row); ``include_constant=False`` leaves it out: same gradient, value shifted by it.
    Training uses :func:`full_topology_loss_joint`, the same loss without the constant.
    """
    t = _normalize(teacher)
    s = _normalize(student)
    loss = (s.T @ s).square().sum() - 2.0 * (t.T @ s).square().sum()
    if include_constant:
        with torch.no_grad():
            tt = (t.T @ t).square().sum()
        loss = loss + tt
    return loss


class _JointGramTopology(torch.autograd.Function):
    """FTD's training loss ‖SᵀS‖² − 2‖TᵀS‖² (no teacher-only constant) with one GEMM each way.

    ``joint`` is (n, d_t + d_s): row-normalised teacher rows in the first d_t columns, scratch
    space in the last d_s, where the normalised student rows S are written. Then
    G = jointᵀ S stacks TᵀS over SᵀS (one GEMM), and the gradient with respect to S,
    4 S (SᵀS) − 4 T (TᵀS), is joint @ [−4 TᵀS ; 4 SᵀS] (one GEMM), followed by the backward of
    the row normalisation x / max(‖x‖, eps) (as ``F.normalize``).
    """

    @staticmethod
    def forward(ctx, joint: torch.Tensor, student: torch.Tensor, eps: float) -> torch.Tensor:
        d_t = joint.shape[1] - student.shape[1]
        norms = torch.linalg.vector_norm(student, dim=1, keepdim=True)
        s = student / norms.clamp_min(eps)
        joint[:, d_t:].copy_(s)
        gram = joint.T @ s
        ctx.save_for_backward(joint, s, norms, gram)
        ctx.d_t, ctx.eps = d_t, eps
        return gram[d_t:].square().sum() - 2.0 * gram[:d_t].square().sum()

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        joint, s, norms, gram = ctx.saved_tensors
        w = gram * (4.0 * grad_out)
        w[:ctx.d_t].neg_()
        grad_s = joint @ w
        # backward of s = x / max(‖x‖, eps): project out s where the norm was not clamped
        radial = torch.where(norms > ctx.eps, (s * grad_s).sum(1, keepdim=True), 0.0)
        return None, (grad_s - s * radial) / norms.clamp_min(ctx.eps), None


def full_topology_loss_joint(joint: torch.Tensor, student: torch.Tensor,
                             eps: float = 1e-12) -> torch.Tensor:
    """:func:`full_topology_loss` with ``include_constant=False`` and a normalised teacher, for
    training: the same value and gradient, computed by one GEMM forward and one backward
    (:class:`_JointGramTopology`). ``joint`` (n, d_t + d_s) holds the row-normalised teacher rows
    in its first d_t columns; its last d_s columns are overwritten (scratch space)."""
    if joint.shape[0] != student.shape[0] or joint.shape[1] <= student.shape[1]:
        raise ValueError(f"joint of shape {tuple(joint.shape)} for a student of shape "
                         f"{tuple(student.shape)}: expected (n, d_t + d_s)")
    return _JointGramTopology.apply(joint, student, eps)


@dataclass
class GroupChunks:
    """Rows sorted by group and cut into chunks of at most ``width`` rows, each chunk within one
    group, so that per-group work runs as batched matmuls over a (num_chunks, width, d) tensor
    whatever the group sizes: with width = ceil(n / K) the padded rows are fewer than 2n."""

    order: torch.Tensor        # (n,) row permutation that sorts rows by group
    chunk: torch.Tensor        # (n,) chunk of each sorted row
    pos: torch.Tensor          # (n,) position of each sorted row inside its chunk
    chunk_group: torch.Tensor  # (num_chunks,) group of each chunk
    num_chunks: int
    width: int

    @staticmethod
    def build(groups: torch.Tensor, num_groups: int, width: int | None = None) -> "GroupChunks":
        n = len(groups)
        counts = torch.bincount(groups, minlength=num_groups)
        if width is None:
            width = max(1, -(-n // num_groups))
        order = torch.argsort(groups, stable=True)
        g_sorted = groups[order]
        per_group = (counts + width - 1) // width
        chunk_start = torch.cumsum(per_group, 0) - per_group
        rank = torch.arange(n, device=groups.device) - (torch.cumsum(counts, 0) - counts)[g_sorted]
        chunk = chunk_start[g_sorted] + torch.div(rank, width, rounding_mode="floor")
        chunk_group = torch.repeat_interleave(torch.arange(num_groups, device=groups.device), per_group)
        return GroupChunks(order, chunk, rank % width, chunk_group, int(per_group.sum()), width)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Rows of ``x`` (original order) into a zero-padded (num_chunks, width, d) tensor."""
        out = x.new_zeros(self.num_chunks, self.width, x.shape[1])
        return out.index_put((self.chunk, self.pos), x.index_select(0, self.order))

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`pad`: back to (n, d) rows in the original order."""
        flat = padded.reshape(-1, padded.shape[-1])
        rows = flat.index_select(0, self.chunk * self.width + self.pos)
        return rows.index_select(0, torch.argsort(self.order))

    def sum_by_group(self, per_chunk: torch.Tensor, num_groups: int) -> torch.Tensor:
        """Sum per-chunk tensors (num_chunks, ...) into per-group tensors (num_groups, ...)."""
        out = per_chunk.new_zeros((num_groups,) + tuple(per_chunk.shape[1:]))
        return out.index_add(0, self.chunk_group, per_chunk)


def grouped_topology_loss(teacher: torch.Tensor, student: torch.Tensor, groups: torch.Tensor,
                          num_groups: int, include_constant: bool = True) -> torch.Tensor:
    """HTD entity-level topology (Eq. 6): Σ_k Σ_{i,j ∈ group k} (cos_t(i, j) − cos_s(i, j))².

    The Frobenius identity of :func:`full_topology_loss` applied group by group (no n × n
    matrix): the per-group Gram sums T_kᵀS_k, S_kᵀS_k (and the constant T_kᵀT_k, left out when
    ``include_constant=False``: same gradient) are summed from batched per-chunk matmuls
    (:class:`GroupChunks`), so no Python loop runs over groups.
    """
    t, s = _normalize(teacher), _normalize(student)
    gc = GroupChunks.build(groups, num_groups)
    tp, sp = gc.pad(t), gc.pad(s)
    ts = gc.sum_by_group(torch.bmm(tp.transpose(1, 2), sp), num_groups).square().sum()
    ss = gc.sum_by_group(torch.bmm(sp.transpose(1, 2), sp), num_groups).square().sum()
    loss = ss - 2.0 * ts
    if include_constant:
        with torch.no_grad():
            tt = gc.sum_by_group(torch.bmm(tp.transpose(1, 2), tp), num_groups).square().sum()
        loss = loss + tt
    return loss


def grouped_positive_pairs_topology_loss(teacher: torch.Tensor, student: torch.Tensor,
                                         groups: torch.Tensor, num_groups: int) -> torch.Tensor:
    """The official code's entity-level term: Σ over pairs (i, j) in the same group *and* with
    cos_t(i, j) > 0 of (cos_t(i, j) − cos_s(i, j))².

    The mask depends on each pair, so the Frobenius identity does not apply; instead only the
    block-diagonal of the n × n similarity matrices is computed: rows sorted by group and cut into
    chunks (:class:`GroupChunks`), one batched matmul for every ordered pair of chunks of the same
    group. Cost Σ_k n_k²·d instead of n²·d; equal to ``pairwise_topology_loss`` with the mask
    (padding rows are zero vectors: cos_t = 0 is not > 0, so they never count).
    """
    t, s = _normalize(teacher), _normalize(student)
    gc = GroupChunks.build(groups, num_groups)
    tp, sp = gc.pad(t), gc.pad(s)
    a, b = torch.nonzero(gc.chunk_group[:, None] == gc.chunk_group[None, :], as_tuple=True)
    with torch.no_grad():
        t_sim = torch.bmm(tp.index_select(0, a), tp.index_select(0, b).transpose(1, 2))
        mask = t_sim > 0
    s_sim = torch.bmm(sp.index_select(0, a), sp.index_select(0, b).transpose(1, 2))
    return ((t_sim - s_sim).square() * mask).sum()


def prototypes(x: torch.Tensor, groups: torch.Tensor, num_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean representation of each group's members (Section 3.3). Returns (prototypes of the
    non-empty groups, ids of those groups)."""
    counts = torch.bincount(groups, minlength=num_groups)
    sums = x.new_zeros(num_groups, x.shape[1]).index_add(0, groups, x)
    present = torch.nonzero(counts > 0, as_tuple=True)[0]
    return sums[present] / counts[present].unsqueeze(1).to(x.dtype), present


def group_level_topology_loss(teacher: torch.Tensor, student: torch.Tensor, groups: torch.Tensor,
                              num_groups: int, mode: str = "pe",
                              detach_prototypes: bool = False) -> torch.Tensor:
    """HTD group-level topology (Eq. 5).

    ``mode="pe"`` — Group(P, e): cosine between every (non-empty) group prototype and every entity;
    ``mode="pp"`` — Group(P, P): cosine between prototypes. Prototypes are the mean of the batch's
    members of each group, in each space. ``detach_prototypes=True`` computes the student's
    prototypes without gradient, as the official code does (then Group(P, P) gives no gradient).
    """
    tproto, _ = prototypes(teacher, groups, num_groups)
    if detach_prototypes:
        with torch.no_grad():
            sproto, _ = prototypes(student, groups, num_groups)
    else:
        sproto, _ = prototypes(student, groups, num_groups)
    tproto, sproto = _normalize(tproto), _normalize(sproto)
    if mode == "pe":
        t_other, s_other = _normalize(teacher), _normalize(student)
    elif mode == "pp":
        t_other, s_other = tproto, sproto
    else:
        raise ValueError(f"group topology mode {mode!r} (valid: pe, pp)")
    with torch.no_grad():
        t_sim = tproto @ t_other.T
    return (t_sim - sproto @ s_other.T).square().sum()
