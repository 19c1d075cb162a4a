"""Base recommenders. Every model exposes the same small interface:

* ``representations()`` -> (user table, item table): the final representations the ranking and
  the distillation losses act on;
* ``num_parameters()`` for the size report.
"""

from __future__ import annotations

import torch
from torch import nn


class BPRMF(nn.Module):
    """Matrix factorisation trained with BPR (Rendle et al., 2009); score = user · item.

    Embeddings are initialised N(0, init_std²) as in the official Topology Distillation code.
    """

    def __init__(self, num_users: int, num_items: int, dim: int, init_std: float = 0.01):
        super().__init__()
        self.num_users, self.num_items, self.dim = num_users, num_items, dim
        self.user_embedding = nn.Embedding(num_users, dim)
        self.item_embedding = nn.Embedding(num_items, dim)
        nn.init.normal_(self.user_embedding.weight, std=init_std)
        nn.init.normal_(self.item_embedding.weight, std=init_std)

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_embedding.weight, self.item_embedding.weight

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def num_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.parameters())


def build_model(name: str, num_users: int, num_items: int, dim: int, init_std: float) -> nn.Module:
    if name == "bpr":
        return BPRMF(num_users, num_items, dim, init_std)
    raise ValueError(f"unknown model {name!r} (valid: bpr)")


def load_model(path: str, name: str, init_std: float = 0.01) -> BPRMF:
    """Rebuild a model from a ``torch.save``d state dict (loaded with ``weights_only=True``)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    num_users, dim = state["user_embedding.weight"].shape
    num_items = state["item_embedding.weight"].shape[0]
    model = build_model(name, num_users, num_items, dim, init_std)
    model.load_state_dict(state)
    return model
