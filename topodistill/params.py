"""Typed, validated sections of ``params.yaml``.

Every stage reads only its own section (plus the shared ``seed`` and ``device``). Unknown keys,
wrong types and out-of-range values raise :class:`ConfigError` naming the parameter, e.g.
``distill.method: unknown value 'xyz' (valid: none, fitnet, de, ftd, htd)``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

DATASETS = ("ml-100k", "synthetic", "none")
SPLIT_MODES = ("loo_random", "loo_time", "ratio", "predefined")
SELECT_MODES = ("last", "best")
MODELS = ("bpr", "lightgcn")
METHODS = ("none", "fitnet", "de", "ftd", "htd")
RANKINGS = ("none", "rd", "rrd")
GROUP_TOPOLOGIES = ("pe", "pp")
ASSIGNMENTS = ("adaptive", "kmeans")
PAIR_SELECTIONS = ("group", "positive_teacher_similarity")
DEVICES = ("auto", "cpu", "cuda")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}: unknown value {value!r} (valid: {', '.join(choices)})")


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name}: must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _check_fraction(name: str, value: float, closed: bool = True) -> None:
    if not (0.0 <= value <= 1.0) or (not closed and value in (0.0, 1.0)):
        raise ConfigError(f"{name}: must lie in [0, 1], got {value!r}")


def _coerce(name: str, value: Any, typ: Any) -> Any:
    """Check ``value`` against a simple type annotation, converting int -> float where needed."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0])
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        return [_coerce(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML reads 1e-10 (no dot) as a string
            try:
                return float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{name}: expected a number, got {value!r}") from None
        return float(value)
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return value
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {value!r}")
        return value
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(typ):
        return _build(typ, name, value)
    return value


def _build(cls: type, section: str, raw: Any) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{section}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(
            f"{section}: unknown parameter(s) {', '.join(unknown)} (valid: {', '.join(sorted(names))})"
        )
    kwargs = {k: _coerce(f"{section}.{k}", v, hints[k]) for k, v in raw.items()}
    obj = cls(**kwargs)
    obj.validate(section)
    return obj


@dataclass
class SyntheticParams:
    """Clustered latent-factor generator (for tests and quick trials)."""

    num_users: int = 300
    num_items: int = 400
    num_clusters: int = 8
    latent_dim: int = 16
    interactions_per_user: int = 30
    cluster_spread: float = 0.5
    temperature: float = 0.5

    def validate(self, s: str) -> None:
        for k in ("num_users", "num_items", "num_clusters", "latent_dim", "interactions_per_user"):
            _check_positive(f"{s}.{k}", getattr(self, k))
        _check_positive(f"{s}.cluster_spread", self.cluster_spread, allow_zero=True)
        _check_positive(f"{s}.temperature", self.temperature)
        if self.interactions_per_user > self.num_items:
            raise ConfigError(f"{s}.interactions_per_user: {self.interactions_per_user} exceeds "
                              f"{s}.num_items = {self.num_items}")


@dataclass
class FetchParams:
    dataset: str = "ml-100k"
    synthetic: SyntheticParams = field(default_factory=SyntheticParams)

    def validate(self, s: str) -> None:
        _check_choice(f"{s}.dataset", self.dataset, DATASETS)


@dataclass
class DataParams:
    path: str = "data/raw/ml-100k.inter"
    rating_threshold: float | None = 4.0
    min_user_interactions: int = 3
    split: str = "loo_random"
    valid_ratio: float = 0.1
    test_ratio: float = 0.1

    def validate(self, s: str) -> None:
        if not self.path:
            raise ConfigError(f"{s}.path: must name an interactions file")
        _check_positive(f"{s}.min_user_interactions", self.min_user_interactions, allow_zero=True)
        _check_choice(f"{s}.split", self.split, SPLIT_MODES)
        _check_fraction(f"{s}.valid_ratio", self.valid_ratio)
        _check_fraction(f"{s}.test_ratio", self.test_ratio)
        if self.split == "ratio" and self.valid_ratio + self.test_ratio >= 1.0:
            raise ConfigError(f"{s}.valid_ratio + {s}.test_ratio must be < 1, got "
                              f"{self.valid_ratio + self.test_ratio}")


@dataclass
class TrainParams:
    """Training protocol shared by teacher and student (official code's defaults)."""

    epochs: int = 100
    batch_size: int = 1024
    lr: float = 0.001
    weight_decay: float = 0.001
    init_std: float = 0.01
    eval_every: int = 10
    select: str = "last"

    def validate(self, s: str) -> None:
        _check_positive(f"{s}.epochs", self.epochs)
        _check_positive(f"{s}.batch_size", self.batch_size)
        _check_positive(f"{s}.lr", self.lr)
        _check_positive(f"{s}.weight_decay", self.weight_decay, allow_zero=True)
        _check_positive(f"{s}.init_std", self.init_std)
        _check_positive(f"{s}.eval_every", self.eval_every)
        _check_choice(f"{s}.select", self.select, SELECT_MODES)


@dataclass
class TeacherParams(TrainParams):
    model: str = "bpr"
    num_layers: int = 3  # lightgcn only
    dim: int = 200

    def validate(self, s: str) -> None:
        super().validate(s)
        _check_choice(f"{s}.model", self.model, MODELS)
        _check_positive(f"{s}.num_layers", self.num_layers)
        _check_positive(f"{s}.dim", self.dim)


@dataclass
class RankParams:
    """The teacher's top-N unobserved items per user (for ranking distillation)."""

    top_n: int = 100
    chunk_users: int = 1024

    def validate(self, s: str) -> None:
        _check_positive(f"{s}.top_n", self.top_n)
        _check_positive(f"{s}.chunk_users", self.chunk_users)


@dataclass
class ClusterParams:
    num_groups: int = 30
    normalize: bool = True
    n_init: int = 4
    max_iter: int = 300
    silhouette_sample: int = 2000

    def validate(self, s: str) -> None:
        _check_positive(f"{s}.num_groups", self.num_groups)
        _check_positive(f"{s}.n_init", self.n_init)
        _check_positive(f"{s}.max_iter", self.max_iter)
        _check_positive(f"{s}.silhouette_sample", self.silhouette_sample)


@dataclass
class HTDParams:
    alpha: float = 0.5
    group_topology: str = "pe"
    assignment: str = "adaptive"
    init_from_clusters: bool = False
    init_scale: float = 10.0
    detach_prototypes: bool = False
    pair_selection: str = "group"
    expert_hidden: int | None = None
    temperature_start: float = 1.0
    temperature_end: float = 1e-10

    def validate(self, s: str) -> None:
        _check_fraction(f"{s}.alpha", self.alpha)
        _check_choice(f"{s}.group_topology", self.group_topology, GROUP_TOPOLOGIES)
        _check_choice(f"{s}.assignment", self.assignment, ASSIGNMENTS)
        _check_choice(f"{s}.pair_selection", self.pair_selection, PAIR_SELECTIONS)
        _check_positive(f"{s}.init_scale", self.init_scale)
        if self.expert_hidden is not None:
            _check_positive(f"{s}.expert_hidden", self.expert_hidden)
        _check_positive(f"{s}.temperature_start", self.temperature_start)
        _check_positive(f"{s}.temperature_end", self.temperature_end)
        if self.init_from_clusters and self.assignment != "adaptive":
            raise ConfigError(f"{s}.init_from_clusters: only applies to {s}.assignment=adaptive")


@dataclass
class DEParams:
    """Distillation Experts (Kang et al., CIKM 2020)."""

    num_experts: int = 5
    expert_hidden: int | None = None
    temperature_start: float = 1.0
    temperature_end: float = 1e-10

    def validate(self, s: str) -> None:
        _check_positive(f"{s}.num_experts", self.num_experts)
        if self.expert_hidden is not None:
            _check_positive(f"{s}.expert_hidden", self.expert_hidden)
        _check_positive(f"{s}.temperature_start", self.temperature_start)
        _check_positive(f"{s}.temperature_end", self.temperature_end)


@dataclass
class RDParams:
    """Ranking Distillation (Tang & Wang, KDD 2018)."""

    weight: float = 1.0
    top_k: int = 10
    position_decay: float = 5.0

    def validate(self, s: str) -> None:
        _check_positive(f"{s}.weight", self.weight, allow_zero=True)
        _check_positive(f"{s}.top_k", self.top_k)
        _check_positive(f"{s}.position_decay", self.position_decay)


@dataclass
class RRDParams:
    """Relaxed Ranking Distillation (Kang et al., CIKM 2020)."""

    weight: float = 0.001
    num_interesting: int = 40
    num_uninteresting: int = 40

    def validate(self, s: str) -> None:
        _check_positive(f"{s}.weight", self.weight, allow_zero=True)
        _check_positive(f"{s}.num_interesting", self.num_interesting)
        _check_positive(f"{s}.num_uninteresting", self.num_uninteresting)


@dataclass
class DistillParams(TrainParams):
    method: str = "htd"
    ranking: str = "none"
    model: str = "bpr"
    num_layers: int = 3  # lightgcn only
    seed: int | None = None
    student_dim: int = 20
    distill_weight: float = 0.001
    htd: HTDParams = field(default_factory=HTDParams)
    de: DEParams = field(default_factory=DEParams)
    rd: RDParams = field(default_factory=RDParams)
    rrd: RRDParams = field(default_factory=RRDParams)

    def validate(self, s: str) -> None:
        super().validate(s)
        _check_choice(f"{s}.method", self.method, METHODS)
        _check_choice(f"{s}.ranking", self.ranking, RANKINGS)
        _check_choice(f"{s}.model", self.model, MODELS)
        _check_positive(f"{s}.num_layers", self.num_layers)
        _check_positive(f"{s}.student_dim", self.student_dim)
        _check_positive(f"{s}.distill_weight", self.distill_weight, allow_zero=True)

    def ranking_list_length(self) -> int:
        """How many of the teacher's top items per user the ranking loss needs (0: none)."""
        return {"none": 0, "rd": self.rd.top_k, "rrd": self.rrd.num_interesting}[self.ranking]


@dataclass
class EvaluateParams:
    ks: list[int] = field(default_factory=lambda: [10, 20, 50])
    chunk_users: int = 1024

    def validate(self, s: str) -> None:
        if not self.ks:
            raise ConfigError(f"{s}.ks: must list at least one cut-off")
        for i, k in enumerate(self.ks):
            _check_positive(f"{s}.ks[{i}]", k)
        _check_positive(f"{s}.chunk_users", self.chunk_users)


SECTIONS: dict[str, type] = {
    "fetch": FetchParams,
    "data": DataParams,
    "teacher": TeacherParams,
    "cluster": ClusterParams,
    "rank": RankParams,
    "distill": DistillParams,
    "evaluate": EvaluateParams,
}


def load_yaml(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: parameter file not found (run from the repository root)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections")
    return raw


def load_section(name: str, path: str | Path = "params.yaml") -> Any:
    """Load and validate one section of params.yaml."""
    raw = load_yaml(path)
    if name not in raw:
        raise ConfigError(f"{path}: section '{name}' is missing")
    return _build(SECTIONS[name], name, raw[name])


def load_seed(path: str | Path = "params.yaml") -> int:
    seed = load_yaml(path).get("seed", 0)
    return _coerce("seed", seed, int)


def load_device_name(path: str | Path = "params.yaml") -> str:
    device = load_yaml(path).get("device", "auto")
    _check_choice("device", device, DEVICES)
    return device


def section_from_dict(name: str, raw: dict[str, Any] | None) -> Any:
    """Build a validated section from a plain dict (used by tests and benchmarks)."""
    return _build(SECTIONS[name], name, raw or {})
