"""Topology Distillation for recommender systems (Kang et al., KDD 2021): FTD and HTD.

The package holds the reusable pieces of the DVC pipeline in ``stages/``: data loading and
splitting (:mod:`.data`), models (:mod:`.models`), distillation losses (:mod:`.losses`), the one
training loop shared by every method (:mod:`.trainer`), full-ranking metrics (:mod:`.metrics`)
and typed, validated parameters (:mod:`.params`).
"""

__version__ = "0.1.0"
