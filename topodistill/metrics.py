"""Full-ranking evaluation: every item is ranked for every user with a held-out item.

As the official code: the user's train items and the *other* held-out split (valid when testing,
test when validating) are excluded. Recall@K = hits / |truth|; NDCG@K with binary gains and the
ideal DCG over min(|truth|, K); Precision@K = hits / K. Scores are computed chunk by chunk over
users with ``topk``: memory is bounded by chunk × items and no full argsort is ever made.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from .data import interaction_matrix


class RankingEvaluator:
    """Precomputes, per user chunk, the excluded and ground-truth (row, item) index pairs."""

    def __init__(self, train: np.ndarray, truth: np.ndarray, other: np.ndarray | None,
                 num_users: int, num_items: int, ks: list[int], chunk_users: int = 1024,
                 device: torch.device | str = "cpu"):
        self.ks = sorted(set(int(k) for k in ks))
        self.max_k = min(max(self.ks), num_items)
        self.num_items = num_items
        self.device = torch.device(device)
        exclude = interaction_matrix(train, num_users, num_items)
        if other is not None and len(other):
            exclude = exclude + interaction_matrix(other, num_users, num_items)
        exclude = exclude.tocsr()
        truth_mat = interaction_matrix(truth, num_users, num_items)
        self.users = np.flatnonzero(np.diff(truth_mat.indptr) > 0)
        self.num_eval_users = len(self.users)
        self.chunks = []
        for start in range(0, len(self.users), chunk_users):
            users = self.users[start:start + chunk_users]
            ex = exclude[users].tocoo()
            tr = truth_mat[users].tocoo()
            n_truth = np.diff(truth_mat.indptr)[users]
            self.chunks.append(tuple(torch.as_tensor(a, dtype=torch.long, device=self.device) for a in (
                users, ex.row, ex.col, tr.row, tr.col)) + (torch.as_tensor(n_truth, device=self.device),))
        ranks = torch.arange(self.max_k, dtype=torch.float64)
        self.discount = (1.0 / torch.log2(ranks + 2.0)).to(self.device)
        self.ideal = torch.cumsum(self.discount, 0)

    @torch.no_grad()
    def evaluate(self, user_table: torch.Tensor, item_table: torch.Tensor,
                 progress: bool = False, desc: str = "evaluate") -> dict[str, float]:
        """Mean Recall/NDCG/Precision@K over users with a held-out item."""
        if self.num_eval_users == 0:
            return {f"{m}@{k}": float("nan") for k in self.ks for m in ("recall", "ndcg", "precision")}
        user_table = user_table.detach().to(self.device)
        item_t = item_table.detach().to(self.device).T.contiguous()
        sums = {f"{m}@{k}": 0.0 for k in self.ks for m in ("recall", "ndcg", "precision")}
        for users, ex_r, ex_c, tr_r, tr_c, n_truth in tqdm(self.chunks, desc=desc, disable=not progress,
                                                           leave=False):
            scores = user_table[users] @ item_t
            scores[ex_r, ex_c] = -torch.inf
            top = torch.topk(scores, self.max_k, dim=1, sorted=True).indices
            truth = torch.zeros_like(scores, dtype=torch.bool)
            truth[tr_r, tr_c] = True
            hits = truth.gather(1, top).to(torch.float64)
            n_truth = n_truth.to(torch.float64)
            cum_hits = torch.cumsum(hits, 1)
            dcg = torch.cumsum(hits * self.discount, 1)
            for k in self.ks:
                kk = min(k, self.max_k)
                h = cum_hits[:, kk - 1]
                idcg = self.ideal[(torch.clamp(n_truth, max=kk) - 1).long()]
                sums[f"recall@{k}"] += (h / n_truth).sum().item()
                sums[f"ndcg@{k}"] += (dcg[:, kk - 1] / idcg).sum().item()
                sums[f"precision@{k}"] += (h / k).sum().item()
        return {name: total / self.num_eval_users for name, total in sums.items()}


def popularity_tables(train: np.ndarray, num_users: int, num_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A popularity baseline as 1-d 'embeddings': user = 1, item = its train interaction count."""
    counts = np.bincount(train[:, 1], minlength=num_items).astype(np.float32)
    return torch.ones(num_users, 1), torch.from_numpy(counts).unsqueeze(1)


@torch.no_grad()
def top_unobserved_items(user_table: torch.Tensor, item_table: torch.Tensor, train: np.ndarray,
                         top_n: int, chunk_users: int = 1024) -> np.ndarray:
    """Each user's ``top_n`` highest-scored items among those not in their train interactions,
    best first: (num_users, top_n) int64. Chunked over users like the evaluation (memory bounded
    by chunk × items). Raises ValueError when some user has fewer than ``top_n`` such items."""
    num_users, num_items = user_table.shape[0], item_table.shape[0]
    seen = interaction_matrix(train, num_users, num_items).tocsr()
    most_seen = int(np.diff(seen.indptr).max()) if len(train) else 0
    if top_n > num_items - most_seen:
        raise ValueError(f"top_n = {top_n} exceeds the unobserved items of some user "
                         f"({num_items} items, a user with {most_seen} train items)")
    item_t = item_table.detach().T.contiguous()
    out = np.empty((num_users, top_n), dtype=np.int64)
    for start in range(0, num_users, chunk_users):
        users = np.arange(start, min(start + chunk_users, num_users))
        scores = user_table[torch.as_tensor(users)].detach() @ item_t
        ex = seen[users].tocoo()
        scores[torch.as_tensor(ex.row, dtype=torch.long), torch.as_tensor(ex.col, dtype=torch.long)] = -torch.inf
        out[users] = torch.topk(scores, top_n, dim=1, sorted=True).indices.cpu().numpy()
    return out
