"""Distillation loss objects built from params. The trainer knows nothing of the method.

* Representation distillers (``distill.method``: none | fitnet | de | ftd | htd) get the batch's
  unique users and items with their student representations and return a dict whose ``"loss"``
  entry is the scalar distillation loss (other entries are for logging).
* Ranking distillers (``distill.ranking``: none | rd | rrd) name, per batch user, the items whose
  student scores they need (from the teacher's top-N lists of the `rank` stage) and get those
  users' and items' student representations back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import numpy as np

from .data import NegativeSampler
from .errors import ConfigError
from .losses.assignment import ExpertAssignment, annealed_temperature, gumbel_softmax_weights
from .losses.pointwise import fitnet_loss
from .losses.ranking import position_weights, rd_loss, rrd_loss
from .losses.topology import (full_topology_loss_joint, group_level_topology_loss,
                              grouped_positive_pairs_topology_loss, grouped_topology_loss)
from .params import DEParams, DistillParams, HTDParams, METHODS, RANKINGS, RDParams, RRDParams


class Distiller(nn.Module):
    """Interface: ``forward(users, items, student_users, student_items, progress)``."""

    def forward(self, users: torch.Tensor, items: torch.Tensor, student_users: torch.Tensor,
                student_items: torch.Tensor, progress: float) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class NoDistillation(Distiller):
    def forward(self, users, items, student_users, student_items, progress):
        return {"loss": student_users.new_zeros(())}


class FitNet(Distiller):
    """FitNet: a learned linear projection student → teacher space per side (users, items),
    squared error to the teacher representation (:func:`fitnet_loss`)."""

    def __init__(self, teacher_users: torch.Tensor, teacher_items: torch.Tensor, student_dim: int):
        super().__init__()
        self.register_buffer("teacher_users", teacher_users.detach().clone(), persistent=False)
        self.register_buffer("teacher_items", teacher_items.detach().clone(), persistent=False)
        self.user_projection = nn.Linear(student_dim, teacher_users.shape[1])
        self.item_projection = nn.Linear(student_dim, teacher_items.shape[1])

    def forward(self, users, items, student_users, student_items, progress):
        lu = fitnet_loss(self.teacher_users.index_select(0, users), student_users,
                         self.user_projection.weight, self.user_projection.bias)
        li = fitnet_loss(self.teacher_items.index_select(0, items), student_items,
                         self.item_projection.weight, self.item_projection.bias)
        return {"loss": lu + li}


class DE(Distiller):
    """Distillation Experts (Kang et al., CIKM 2020): per side, K expert MLPs map the student
    representation into the teacher space; a selection network on the teacher representation
    picks an expert through a Gumbel-softmax with annealed temperature; squared error. The same
    mechanism, and code, as HTD's group assignment (:class:`ExpertAssignment`)."""

    def __init__(self, teacher_users: torch.Tensor, teacher_items: torch.Tensor, student_dim: int,
                 p: DEParams, generator: torch.Generator | None = None):
        super().__init__()
        self.p, self.generator = p, generator
        self.register_buffer("teacher_users", teacher_users.detach().clone(), persistent=False)
        self.register_buffer("teacher_items", teacher_items.detach().clone(), persistent=False)
        self.users = ExpertAssignment(teacher_users.shape[1], student_dim, p.num_experts, p.expert_hidden)
        self.items = ExpertAssignment(teacher_items.shape[1], student_dim, p.num_experts, p.expert_hidden)

    def forward(self, users, items, student_users, student_items, progress):
        temperature = annealed_temperature(progress, self.p.temperature_start, self.p.temperature_end)
        total = student_users.new_zeros(())
        for assign, table, ids, student in ((self.users, self.teacher_users, users, student_users),
                                            (self.items, self.teacher_items, items, student_items)):
            t = table.index_select(0, ids)
            weights = gumbel_softmax_weights(assign.selection_logits(t), temperature, self.generator)
            total = total + assign.loss(t, student, weights)
        return {"loss": total, "temperature": torch.tensor(temperature)}


class FTD(Distiller):
    """Full Topology Distillation: the topology of the batch's users and items together.

    The teacher tables are L2-normalised once here, not per batch, and stored with d_s spare
    columns so that one gather per table fills the joint (n, d_t + d_s) matrix of
    :func:`full_topology_loss_joint` (one GEMM forward, one backward). The loss value omits the
    teacher-only constant Σ_ij cos_t(i, j)² (no gradient), so the logged distill_loss is the
    paper's loss minus that constant.
    """

    def __init__(self, teacher_users: torch.Tensor, teacher_items: torch.Tensor, student_dim: int):
        super().__init__()
        self.student_dim = student_dim
        for name, table in (("teacher_users", teacher_users), ("teacher_items", teacher_items)):
            padded = F.pad(F.normalize(table.detach(), dim=1), (0, student_dim))
            self.register_buffer(name, padded.contiguous(), persistent=False)
        # the joint matrix is written in place at every batch: one allocation, not one per batch
        # (fresh multi-MB buffers cost page faults). A second forward before the first backward
        # makes that backward fail (autograd's in-place check), never silently wrong.
        self._joint: torch.Tensor | None = None

    def forward(self, users, items, student_users, student_items, progress):
        if student_users.shape[1] != self.student_dim or student_items.shape[1] != self.student_dim:
            raise ValueError(f"FTD built for student_dim {self.student_dim}, got representations of "
                             f"size {student_users.shape[1]} / {student_items.shape[1]}")
        n_u, n = len(users), len(users) + len(items)
        if (self._joint is None or self._joint.shape[0] < n
                or self._joint.device != self.teacher_users.device):
            self._joint = self.teacher_users.new_empty(n, self.teacher_users.shape[1])
        joint = self._joint[:n]
        torch.index_select(self.teacher_users, 0, users, out=joint[:n_u])
        torch.index_select(self.teacher_items, 0, items, out=joint[n_u:])
        s = torch.cat([student_users, student_items])
        return {"loss": full_topology_loss_joint(joint, s)}


class _HTDSide(nn.Module):
    """HTD for one side (users or items): its own K groups, selection network and experts."""

    def __init__(self, teacher: torch.Tensor, student_dim: int, num_groups: int, p: HTDParams,
                 fixed_groups: torch.Tensor | None, centroids: torch.Tensor | None,
                 normalized_clusters: bool):
        super().__init__()
        self.p, self.num_groups = p, num_groups
        self.register_buffer("teacher", teacher.detach().clone(), persistent=False)
        # the selection network reads the teacher in the clustering space when initialised from it
        sel = F.normalize(teacher, dim=1) if (p.init_from_clusters and normalized_clusters) else teacher
        self.register_buffer("selection_input", sel.detach().clone(), persistent=False)
        self.assign = ExpertAssignment(teacher.shape[1], student_dim, num_groups, p.expert_hidden)
        if fixed_groups is not None:
            self.register_buffer("fixed_groups", fixed_groups.long().clone(), persistent=False)
        else:
            self.fixed_groups = None
        if p.init_from_clusters:
            self.assign.init_from_centroids(centroids, p.init_scale)

    def forward(self, ids: torch.Tensor, student: torch.Tensor, temperature: float,
                generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        t = self.teacher.index_select(0, ids)
        if self.fixed_groups is not None:
            groups = self.fixed_groups.index_select(0, ids)
            weights = F.one_hot(groups, self.num_groups).to(t.dtype)
        else:
            logits = self.assign.selection_logits(self.selection_input.index_select(0, ids))
            groups = logits.detach().argmax(dim=1)  # hard assignment for the topology terms
            weights = gumbel_softmax_weights(logits, temperature, generator)
        ga = self.assign.loss(t, student, weights)
        one_hot = ((weights > 0).sum(1) == 1).to(t.dtype).mean()
        group_level = group_level_topology_loss(t, student, groups, self.num_groups,
                                                self.p.group_topology, self.p.detach_prototypes)
        if self.p.pair_selection == "group":
            entity_level = grouped_topology_loss(t, student, groups, self.num_groups,
                                                 include_constant=False)
        else:  # official code: same group AND positive teacher similarity
            entity_level = grouped_positive_pairs_topology_loss(t, student, groups, self.num_groups)
        return {"group": group_level, "entity": entity_level, "assignment": ga, "one_hot": one_hot}


class HTD(Distiller):
    """Hierarchical Topology Distillation (Section 3.3): L = α·L_TD + (1−α)·L_GA, with
    L_TD = group-level + entity-level topology, for users and items (disjoint groups). The
    entity-level value omits its teacher-only constant (no gradient), as FTD's does."""

    def __init__(self, teacher_users: torch.Tensor, teacher_items: torch.Tensor, student_dim: int,
                 p: HTDParams, clusters: dict[str, torch.Tensor], normalized_clusters: bool,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.p = p
        self.generator = generator
        k = int(clusters["user_centroids"].shape[0])
        fixed = p.assignment == "kmeans"
        self.users = _HTDSide(teacher_users, student_dim, k, p,
                              clusters["user_groups"] if fixed else None,
                              clusters["user_centroids"], normalized_clusters)
        self.items = _HTDSide(teacher_items, student_dim, int(clusters["item_centroids"].shape[0]), p,
                              clusters["item_groups"] if fixed else None,
                              clusters["item_centroids"], normalized_clusters)

    def forward(self, users, items, student_users, student_items, progress):
        temperature = annealed_temperature(progress, self.p.temperature_start, self.p.temperature_end)
        u = self.users(users, student_users, temperature, self.generator)
        i = self.items(items, student_items, temperature, self.generator)
        td = u["group"] + u["entity"] + i["group"] + i["entity"]
        ga = u["assignment"] + i["assignment"]
        return {"loss": self.p.alpha * td + (1.0 - self.p.alpha) * ga,
                "topology": td.detach(), "assignment": ga.detach(),
                "one_hot_fraction": (u["one_hot"] * len(users) + i["one_hot"] * len(items))
                / (len(users) + len(items)),
                "temperature": torch.tensor(temperature)}


def build_distiller(params: DistillParams, teacher_users: torch.Tensor, teacher_items: torch.Tensor,
                    clusters: dict[str, torch.Tensor] | None = None, normalized_clusters: bool = True,
                    generator: torch.Generator | None = None) -> Distiller:
    """The representation distillation loss object for ``params.method``."""
    if params.method == "none":
        return NoDistillation()
    if params.method == "fitnet":
        return FitNet(teacher_users, teacher_items, params.student_dim)
    if params.method == "de":
        return DE(teacher_users, teacher_items, params.student_dim, params.de, generator)
    if params.method == "ftd":
        return FTD(teacher_users, teacher_items, params.student_dim)
    if params.method == "htd":
        if clusters is None:
            raise ConfigError("distill.method=htd needs the cluster stage's output")
        return HTD(teacher_users, teacher_items, params.student_dim, params.htd, clusters,
                   normalized_clusters, generator)
    raise ConfigError(f"distill.method: unknown value {params.method!r} (valid: {', '.join(METHODS)})")


class RankingDistiller(nn.Module):
    """Interface: ``start_epoch(rng)``; ``items_for(users)`` → (n, L) item ids whose student
    scores the loss needs; ``forward(user_rows (n, d), item_rows (n, L, d))`` → {"loss": …}."""

    weight: float = 0.0

    def start_epoch(self, rng: np.random.Generator) -> None:
        pass

    def items_for(self, users: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class RD(RankingDistiller):
    """Ranking Distillation: the teacher's top-K unobserved items of each batch user as extra
    positives weighted by position (:func:`rd_loss`)."""

    def __init__(self, top_lists: torch.Tensor, p: RDParams):
        super().__init__()
        self.weight = p.weight
        self.register_buffer("top", top_lists[:, :p.top_k].long().clone(), persistent=False)
        self.register_buffer("position_weights", position_weights(p.top_k, p.position_decay),
                             persistent=False)

    def items_for(self, users):
        return self.top.index_select(0, users)

    def forward(self, user_rows, item_rows):
        scores = (user_rows.unsqueeze(1) * item_rows).sum(-1)
        return {"loss": rd_loss(scores, self.position_weights)}


class RRD(RankingDistiller):
    """Relaxed Ranking Distillation: each batch user's K top items of the teacher, in the
    teacher's order, against M uninteresting items drawn uniformly (every epoch) among the items
    that are neither in the user's teacher top-N list nor train items (:func:`rrd_loss`)."""

    def __init__(self, top_lists: torch.Tensor, p: RRDParams, train_pairs: np.ndarray,
                 num_items: int):
        super().__init__()
        self.weight, self.p = p.weight, p
        top = top_lists.long().cpu()
        self.register_buffer("top", top[:, :p.num_interesting].clone(), persistent=False)
        num_users = top.shape[0]
        listed = np.stack([np.repeat(np.arange(num_users), top.shape[1]), top.numpy().ravel()], 1)
        self.sampler = NegativeSampler(np.concatenate([train_pairs[:, :2].astype(np.int64), listed]),
                                       num_items)
        self.sample_users = np.repeat(np.arange(num_users), p.num_uninteresting)
        self.register_buffer("uninteresting", torch.zeros(num_users, p.num_uninteresting,
                                                          dtype=torch.long), persistent=False)

    def start_epoch(self, rng):
        drawn = self.sampler.sample(self.sample_users, rng).reshape(self.uninteresting.shape)
        self.uninteresting.copy_(torch.from_numpy(drawn))

    def items_for(self, users):
        return torch.cat([self.top.index_select(0, users), self.uninteresting.index_select(0, users)], 1)

    def forward(self, user_rows, item_rows):
        scores = (user_rows.unsqueeze(1) * item_rows).sum(-1)
        k = self.p.num_interesting
        return {"loss": rrd_loss(scores[:, :k], scores[:, k:])}


def build_ranking(params: DistillParams, top_lists: torch.Tensor | None, train_pairs: np.ndarray,
                  num_items: int) -> RankingDistiller | None:
    """The ranking distillation loss object for ``params.ranking`` (None for ``none``).
    ``top_lists`` (users, N): the teacher's top-N unobserved items, best first."""
    if params.ranking == "none":
        return None
    if params.ranking not in RANKINGS:
        raise ConfigError(f"distill.ranking: unknown value {params.ranking!r} (valid: {', '.join(RANKINGS)})")
    need = params.ranking_list_length()
    have = 0 if top_lists is None else int(top_lists.shape[1])
    if need > have:
        name = "distill.rd.top_k" if params.ranking == "rd" else "distill.rrd.num_interesting"
        raise ConfigError(f"{name} = {need} exceeds the teacher's top-N lists (rank.top_n = {have})")
    if params.ranking == "rd":
        return RD(top_lists, params.rd)
    return RRD(top_lists, params.rrd, train_pairs, num_items)
