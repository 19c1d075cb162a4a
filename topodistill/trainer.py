"""The one training loop, shared by the teacher and every distillation method.

Per epoch: one uniformly drawn negative per train positive (re-drawn every epoch), shuffled,
mini-batches; loss = BPR (summed) + distill_weight · distiller(...). The trainer knows nothing of
the method: it asks the distiller for a scalar.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .data import NegativeSampler
from .distillers import Distiller, NoDistillation, RankingDistiller
from .errors import TrainingError
from .losses.bpr import bpr_loss
from .metrics import RankingEvaluator
from .params import TrainParams


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from .errors import ConfigError
        raise ConfigError("device: 'cuda' requested but CUDA is not available (use auto or cpu)")
    return torch.device(name)


def make_optimizer(params, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam with L2 weight decay on every parameter, as the official code. ``fused=True`` does the
    same update in one kernel (≈3× faster on CPU for whole embedding tables)."""
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


class TableRowGradients:
    """Gradients of the representation tables, written row by row into persistent buffers.

    Autograd would allocate a fresh zero-filled gradient of the whole table at every step (the
    backward of the row gather) and scatter the rows into it, and fresh memory costs page faults:
    about as much as the BPR work itself for a 25k × 200 table. Here the batch's unique rows are
    gathered as a leaf tensor, its gradient is copied into a buffer that stays allocated and is
    all zeros outside those rows, and the rows are reset after the optimiser step. For a table
    that is a parameter (BPR-MF) the buffer becomes its ``.grad`` (Adam still updates every row:
    weight decay and moments, as before); a table computed from parameters (LightGCN's
    propagation) gets the buffer as its gradient in one backward pass of its own graph. The
    values are the same as autograd's.
    """

    def __init__(self):
        self._buffers: dict[tuple, torch.Tensor] = {}
        self._pending: list[tuple[tuple, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def gather(self, table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if not table.requires_grad:
            return table.index_select(0, rows)
        with torch.no_grad():
            picked = table.index_select(0, rows)
        picked.requires_grad_(True)
        # a parameter keeps its buffer; a computed table is new at every step: its buffer is
        # kept by its place among the step's gathers
        key = ("parameter", id(table)) if table.is_leaf else ("computed", len(self._pending))
        self._pending.append((key, table, rows, picked))
        return picked

    def write(self) -> None:
        """After ``backward``: put the rows' gradients into the tables' ``.grad`` (parameters) or
        back-propagate them through the graph that computed the tables."""
        computed, grads = [], []
        for key, table, rows, picked in self._pending:
            if picked.grad is None:
                continue
            buf = self._buffers.get(key)
            if buf is None or buf.shape != table.shape:
                buf = self._buffers[key] = torch.zeros_like(table)
            buf.index_copy_(0, rows, picked.grad)
            if table.is_leaf:
                table.grad = buf if table.grad is None else table.grad + buf
            else:
                computed.append(table)
                grads.append(buf)
        if computed:
            torch.autograd.backward(computed, grads)

    def clear(self) -> None:
        """After the optimiser step: zero the rows written, forget the batch."""
        for key, _, rows, _ in self._pending:
            buf = self._buffers.get(key)
            if buf is not None:
                buf.index_fill_(0, rows, 0.0)
        self._pending.clear()


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    seconds: float = 0.0

    def summary(self, device: str) -> dict:
        """Training summary for metrics/*.json: the selected epoch's loss and valid metrics."""
        chosen = next((h for h in self.history if h["epoch"] == self.best_epoch), self.history[-1])
        out = {"epochs": len(self.history), "selected_epoch": chosen["epoch"],
               "train_seconds": round(self.seconds, 2), "loss": chosen["loss"]}
        out.update({k: v for k, v in chosen.items() if k.startswith("valid_")})
        out["device"] = device
        return out


def train(model: nn.Module, train_pairs: np.ndarray, num_items: int, params: TrainParams,
          seed: int, device: torch.device, distiller: Distiller | None = None,
          distill_weight: float = 0.0, evaluator: RankingEvaluator | None = None,
          on_epoch: Callable[[dict], None] | None = None, desc: str = "train",
          select_metric: str = "recall@50", first_epoch: int = 0,
          ranking: RankingDistiller | None = None) -> TrainResult:
    """Train ``model`` (and the distiller's own parameters) in place; returns per-epoch history.

    loss = BPR + distill_weight · distiller(...) [+ ranking.weight · ranking(...)]: the
    representation distiller sees the batch's unique users and items; the ranking distiller the
    batch's unique users and, per user, the items it asks for (``ranking.items_for``).

    ``first_epoch`` > 0 runs only epochs first_epoch … params.epochs − 1 of the schedule (the
    Gumbel temperature follows epoch / params.epochs); benchmarks use it to time late epochs.
    """
    distiller = distiller if distiller is not None else NoDistillation()
    model.to(device)
    distiller.to(device)
    if ranking is not None:
        ranking.to(device)
    rng = np.random.default_rng(seed)
    ranking_rng = np.random.default_rng([seed, 1])  # its own stream: negatives stay the same
    sampler = NegativeSampler(train_pairs, num_items)
    users_np = train_pairs[:, 0].astype(np.int64)
    pos_np = train_pairs[:, 1].astype(np.int64)
    optimizer = make_optimizer(list(model.parameters()) + list(distiller.parameters())
                               + (list(ranking.parameters()) if ranking is not None else []),
                               params.lr, params.weight_decay, device)
    row_grads = TableRowGradients()
    n = len(train_pairs)
    num_batches = math.ceil(n / params.batch_size)
    result = TrainResult()
    best_value, best_state = -math.inf, None
    start_time = time.perf_counter()
    bar = tqdm(range(first_epoch, params.epochs), desc=desc, unit="epoch",
               mininterval=0.1 if sys.stderr.isatty() else 30.0)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        distiller.train()
        neg_np = sampler.sample(users_np, rng)
        perm = rng.permutation(n)
        batch_users = torch.from_numpy(users_np[perm]).to(device)
        batch_pos = torch.from_numpy(pos_np[perm]).to(device)
        batch_neg = torch.from_numpy(neg_np[perm]).to(device)
        progress = epoch / params.epochs
        if ranking is not None:
            ranking.start_epoch(ranking_rng)
        totals = {"loss": 0.0, "base_loss": 0.0, "distill_loss": 0.0}
        if ranking is not None:
            totals["ranking_loss"] = 0.0
        extra: dict[str, float] = {}
        for b in range(num_batches):
            sl = slice(b * params.batch_size, (b + 1) * params.batch_size)
            u, i, j = batch_users[sl], batch_pos[sl], batch_neg[sl]
            user_table, item_table = model.representations()
            # each table is gathered once, at the batch's unique rows (the distiller needs them
            # anyway), and the batch rows are taken from those: one backward pass per table
            # instead of one per index tensor. index_select, not table[idx]: the backward of
            # advanced indexing with repeated indices (index_put accumulate) sums in a
            # thread-dependent order on CPU; index_select's backward (index_add) is deterministic
            uniq_u, inv_u = torch.unique(u, return_inverse=True)
            uniq_i, inv_ij = torch.unique(torch.cat([i, j]), return_inverse=True)
            rows_u = row_grads.gather(user_table, uniq_u)
            if ranking is None:
                rows_i = row_grads.gather(item_table, uniq_i)
            else:  # one gather of the batch's items and the ranking lists' items together
                rank_items = ranking.items_for(uniq_u)
                all_i, inv_all = torch.unique(torch.cat([uniq_i, rank_items.reshape(-1)]),
                                              return_inverse=True)
                rows_all = row_grads.gather(item_table, all_i)
                rows_i = rows_all.index_select(0, inv_all[:len(uniq_i)])
                rank_rows = rows_all.index_select(0, inv_all[len(uniq_i):])
            ue = rows_u.index_select(0, inv_u)
            pos = (ue * rows_i.index_select(0, inv_ij[:len(i)])).sum(1)
            neg = (ue * rows_i.index_select(0, inv_ij[len(i):])).sum(1)
            base = bpr_loss(pos, neg)
            loss = base
            if not isinstance(distiller, NoDistillation):
                out = distiller(uniq_u, uniq_i, rows_u, rows_i, progress)
                loss = base + distill_weight * out["loss"]
                totals["distill_loss"] += float(out["loss"].detach())
                for key, val in out.items():
                    if key == "temperature":  # the epoch's value
                        extra[key] = float(val)
                    elif key != "loss":
                        extra[key] = extra.get(key, 0.0) + float(val)
            if ranking is not None:
                rank_out = ranking(rows_u, rank_rows.reshape(*rank_items.shape, -1))
                loss = loss + ranking.weight * rank_out["loss"]
                totals["ranking_loss"] += float(rank_out["loss"].detach())
            if not torch.isfinite(loss):
                raise TrainingError(f"{desc}: loss became {float(loss.detach())} at epoch {epoch + 1}, batch "
                                    f"{b + 1} (try a smaller learning rate or distill_weight)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            row_grads.write()
            optimizer.step()
            row_grads.clear()
            totals["loss"] += float(loss.detach())
            totals["base_loss"] += float(base.detach())
        record = {"epoch": epoch + 1, **totals,
                  **{k: v / num_batches if k == "one_hot_fraction" else v for k, v in extra.items()},
                  "epoch_seconds": time.perf_counter() - t0}
        is_eval = evaluator is not None and ((epoch + 1) % params.eval_every == 0
                                             or epoch + 1 == params.epochs)
        if is_eval:
            model.eval()
            with torch.no_grad():
                ut, it = model.representations()
                scores = evaluator.evaluate(ut, it)
            record.update({f"valid_{k}": v for k, v in scores.items()})
            value = scores.get(select_metric, -math.inf)
            if params.select == "best" and value > best_value:
                best_value, result.best_epoch = value, epoch + 1
                best_state = copy.deepcopy(model.state_dict())
        result.history.append(record)
        bar.set_postfix(loss=f"{totals['loss']:.1f}",
                        **({"R@50": f"{record.get('valid_recall@50', float('nan')):.4f}"} if is_eval else {}))
        if on_epoch is not None:
            on_epoch(record)
    if params.select == "best" and best_state is not None:
        model.load_state_dict(best_state)
    elif params.select == "last":
        result.best_epoch = params.epochs
    result.seconds = time.perf_counter() - start_time
    return result
