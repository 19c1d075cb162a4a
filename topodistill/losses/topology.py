"""Topology distillation losses (Kang et al., KDD 2021, Section 3).

The *topology* of a set of representations is the matrix of their pairwise cosine similarities.
All losses are sums of squared differences between the teacher's and the student's topology.
Inputs are raw representations; they are L2-normalised here. Teacher tensors carry no gradient.
"""

from __future__ import annotations

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


def full_topology_loss(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """FTD (Eq. 3): Σ_ij (cos_t(i, j) − cos_s(i, j))² over all pairs of the given entities.

    Computed without any n × n matrix: with row-normalised T and S,
    Σ_ij (T_i·T_j − S_i·S_j)² = ‖TᵀT‖²_F − 2‖TᵀS‖²_F + ‖SᵀS‖²_F, which costs O(n·d²).
    The teacher-only term is a constant (no gradient); it is kept so that the value is exact.
    """
    t, s = _normalize(teacher), _normalize(student)
    with torch.no_grad():
        tt = (t.T @ t).square().sum()
    return tt - 2.0 * (t.T @ s).square().sum() + (s.T @ s).square().sum()


def sort_by_group(groups: torch.Tensor, num_groups: int) -> tuple[torch.Tensor, list[int], torch.Tensor | None]:
    """Row order that sorts entities by group, the group sizes, and — when the groups are balanced
    enough that padding costs at most twice the rows (K · max size ≤ 2n) — each sorted row's
    position inside its group (for a zero-padded (K, max size, ·) layout), else None."""
    order = torch.argsort(groups, stable=True)
    counts_t = torch.bincount(groups, minlength=num_groups)
    counts = counts_t.tolist()
    n = len(groups)
    if n and num_groups * max(counts) <= 2 * n:
        starts = torch.cumsum(counts_t, 0) - counts_t
        pos = torch.arange(n, device=groups.device) - starts[groups[order]]
        return order, counts, pos
    return order, counts, None


def pad_groups(x_sorted: torch.Tensor, groups_sorted: torch.Tensor, pos: torch.Tensor,
               num_groups: int, width: int) -> torch.Tensor:
    """Scatter group-sorted rows into a zero-padded (num_groups, width, d) tensor."""
    out = x_sorted.new_zeros(num_groups, width, x_sorted.shape[1])
    return out.index_put((groups_sorted, pos), x_sorted)


def grouped_topology_loss(teacher: torch.Tensor, student: torch.Tensor, groups: torch.Tensor,
                          num_groups: int) -> torch.Tensor:
    """HTD entity-level topology (Eq. 6): Σ_k Σ_{i,j ∈ group k} (cos_t(i, j) − cos_s(i, j))².

    The Frobenius identity of :func:`full_topology_loss` applied group by group (no n × n matrix):
    batched over groups with a zero-padded (K, m, d) tensor when the groups are balanced (zero rows
    contribute nothing), else group by group. The teacher-only term, a constant, uses whichever
    Gram matrix (m × m or d × d) is smaller.
    """
    t, s = _normalize(teacher), _normalize(student)
    order, counts, pos = sort_by_group(groups, num_groups)
    if pos is not None:
        g_sorted = groups[order]
        width = max(counts)
        tp = pad_groups(t[order], g_sorted, pos, num_groups, width)
        sp = pad_groups(s[order], g_sorted, pos, num_groups, width)
        with torch.no_grad():
            gram = tp @ tp.transpose(1, 2) if width < t.shape[1] else tp.transpose(1, 2) @ tp
            tt = gram.square().sum()
        ts = torch.bmm(tp.transpose(1, 2), sp).square().sum()
        ss = torch.bmm(sp.transpose(1, 2), sp).square().sum()
        return tt - 2.0 * ts + ss
    t_parts = torch.split(t[order], counts)
    s_parts = torch.split(s[order], counts)
    with torch.no_grad():
        tt = t.new_zeros(())
        for tk in t_parts:
            if len(tk):
                gram = tk @ tk.T if len(tk) < tk.shape[1] else tk.T @ tk
                tt += gram.square().sum()
    cross = [tk.T @ sk for tk, sk in zip(t_parts, s_parts) if len(tk)]
    gram_s = [sk.T @ sk for sk in s_parts if len(sk)]
    return tt - 2.0 * torch.stack(cross).square().sum() + torch.stack(gram_s).square().sum()


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
