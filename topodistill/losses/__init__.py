"""Loss functions, each a function of tensors returning a scalar (one module per family)."""

from .bpr import bpr_loss
from .topology import (
    full_topology_loss,
    full_topology_loss_joint,
    grouped_positive_pairs_topology_loss,
    grouped_topology_loss,
    group_level_topology_loss,
    pairwise_topology_loss,
    prototypes,
)
from .assignment import ExpertAssignment, gumbel_softmax_weights, annealed_temperature
from .pointwise import fitnet_loss
from .ranking import position_weights, rd_loss, rrd_loss

__all__ = [
    "bpr_loss",
    "full_topology_loss",
    "full_topology_loss_joint",
    "grouped_positive_pairs_topology_loss",
    "grouped_topology_loss",
    "group_level_topology_loss",
    "pairwise_topology_loss",
    "prototypes",
    "ExpertAssignment",
    "gumbel_softmax_weights",
    "annealed_temperature",
    "fitnet_loss",
    "position_weights",
    "rd_loss",
    "rrd_loss",
]
