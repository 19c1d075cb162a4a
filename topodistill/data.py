"""Interaction data: reading CSV/TSV/RecBole ``.inter`` files, filtering, splitting, id maps,
the train matrix and vectorised negative sampling."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import DataError
from .io import atomic_dir, write_json, read_json
from .params import DataParams

COLUMN_ALIASES = {
    "user": ("user", "user_id", "userid", "uid", "user id"),
    "item": ("item", "item_id", "itemid", "iid", "item id", "movie_id", "movieid"),
    "rating": ("rating", "score", "value"),
    "timestamp": ("timestamp", "time", "ts", "datetime"),
    "split": ("split", "fold", "set"),
}
SPLITS = ("train", "valid", "test")


def _canonical_columns(header: list[str], path: Path) -> dict[int, str]:
    """Map column positions to canonical names; RecBole's ``name:type`` suffixes are dropped."""
    mapping: dict[int, str] = {}
    for pos, raw in enumerate(header):
        name = raw.strip().split(":")[0].strip().lower()
        for canon, aliases in COLUMN_ALIASES.items():
            if name in aliases and canon not in mapping.values():
                mapping[pos] = canon
    missing = [c for c in ("user", "item") if c not in mapping.values()]
    if missing:
        raise DataError(
            f"{path}: line 1: header {header!r} does not name a {' or '.join(missing)} column "
            f"(accepted names: user {COLUMN_ALIASES['user']}, item {COLUMN_ALIASES['item']})"
        )
    return mapping


def _delimiter(path: Path, first_line: str) -> str:
    suffix = path.suffix.lower()
    if suffix in (".inter", ".tsv", ".tab"):
        return "\t"
    if suffix == ".csv":
        return ","
    try:
        return csv.Sniffer().sniff(first_line, delimiters=",\t;| ").delimiter
    except csv.Error:
        return "\t" if "\t" in first_line else ","


def read_interactions(path: str | Path) -> pd.DataFrame:
    """Read an interactions file into a frame with columns user, item[, rating, timestamp, split].

    Accepts CSV/TSV with a header naming at least user and item (optional rating, timestamp,
    split) and RecBole atomic ``.inter`` files. User and item ids are kept as string tokens.
    Raises :class:`DataError` naming the file and line for malformed rows.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: interactions file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected an interactions file")
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        first_line = fh.readline()
    if not first_line.strip():
        raise DataError(f"{path}: file is empty (expected a header line and interactions)")
    sep = _delimiter(path, first_line)
    header = next(csv.reader([first_line.rstrip("\r\n")], delimiter=sep))
    columns = _canonical_columns(header, path)
    try:
        frame = pd.read_csv(
            path, sep=sep, header=0, dtype=str, keep_default_na=False, na_filter=False,
            skip_blank_lines=False, engine="c", on_bad_lines="error",
        )
    except pd.errors.ParserError as exc:
        # pandas says e.g. "Error tokenizing data. C error: Expected 4 fields in line 7, saw 5"
        raise DataError(f"{path}: wrong number of columns: {exc} (header has {len(header)})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    if frame.shape[1] != len(header):
        raise DataError(f"{path}: header has {len(header)} columns but rows have {frame.shape[1]}")
    frame = frame.iloc[:, sorted(columns)]
    frame.columns = [columns[i] for i in sorted(columns)]
    line_no = np.arange(len(frame)) + 2  # header is line 1
    blank = (frame == "").all(axis=1).to_numpy()
    frame = frame.loc[~blank].reset_index(drop=True)
    line_no = line_no[~blank]
    if len(frame) == 0:
        raise DataError(f"{path}: contains a header but no interactions")
    for col in frame.columns:
        frame[col] = frame[col].str.strip()
    for col in ("user", "item"):
        bad = (frame[col] == "").to_numpy()
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: line {line_no[first]}: missing {col} "
                            f"({int(bad.sum())} such row(s))")
    for col in ("rating", "timestamp"):
        if col in frame:
            values = pd.to_numeric(frame[col], errors="coerce")
            bad = values.isna().to_numpy()
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                raise DataError(f"{path}: line {line_no[first]}: {col} {frame[col].iloc[first]!r} "
                                f"is not a number ({int(bad.sum())} such row(s))")
            frame[col] = values.astype(np.float64)
    if "split" in frame:
        frame["split"] = frame["split"].str.lower()
        bad = ~frame["split"].isin(SPLITS).to_numpy()
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: line {line_no[first]}: split {frame['split'].iloc[first]!r} "
                            f"is not one of {', '.join(SPLITS)}")
    return frame


def _sorted_tokens(tokens: np.ndarray) -> np.ndarray:
    """Unique tokens, sorted numerically when all are integers (so 0..n-1 ids map to themselves)."""
    uniq = pd.unique(tokens)
    as_int = pd.to_numeric(pd.Series(uniq), errors="coerce")
    if not as_int.isna().any() and (as_int == as_int.round()).all():
        return uniq[np.argsort(as_int.to_numpy(), kind="stable")]
    return np.sort(uniq.astype(str))


@dataclass
class PreparedData:
    """Contiguous-id train/valid/test interactions plus the token maps."""

    train: np.ndarray  # (n, 2) int64 user, item
    valid: np.ndarray
    test: np.ndarray
    user_tokens: np.ndarray  # id -> token
    item_tokens: np.ndarray
    stats: dict

    @property
    def num_users(self) -> int:
        return len(self.user_tokens)

    @property
    def num_items(self) -> int:
        return len(self.item_tokens)


def _rank_within_user(users: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row, its 0-based rank among its user's rows by descending key, and user's count."""
    order = np.lexsort((-keys, users))
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_users)) + 1]
    counts = np.diff(np.r_[starts, len(users)])
    pos = np.arange(len(users)) - np.repeat(starts, counts)
    rank = np.empty(len(users), dtype=np.int64)
    rank[order] = pos
    count = np.empty(len(users), dtype=np.int64)
    count[order] = np.repeat(counts, counts)
    return rank, count


def prepare(frame: pd.DataFrame, params: DataParams, seed: int, source: str = "input") -> PreparedData:
    """Filter to implicit positives, collapse duplicates, split and remap ids to 0..n-1."""
    rng = np.random.default_rng(seed)
    stats: dict = {"raw_rows": int(len(frame))}
    if params.split == "predefined" and "split" not in frame:
        raise DataError(f"{source}: data.split is 'predefined' but the file has no split column")
    if params.split == "loo_time" and "timestamp" not in frame:
        raise DataError(f"{source}: data.split is 'loo_time' but the file has no timestamp column")
    if params.rating_threshold is not None and "rating" in frame:
        frame = frame.loc[frame["rating"] >= params.rating_threshold]
    stats["rows_after_threshold"] = int(len(frame))
    if params.split == "predefined":
        # the same pair in two splits would leak: keep the train copy (train < valid < test)
        order = frame["split"].map({s: i for i, s in enumerate(SPLITS)})
        frame = frame.assign(_order=order).sort_values("_order", kind="stable")
        dedup = frame.drop_duplicates(["user", "item"], keep="first").drop(columns="_order")
        stats["cross_split_duplicates_dropped"] = int(
            len(frame.drop_duplicates(["user", "item", "split"])) - len(dedup))
    else:
        sort_cols = ["timestamp"] if "timestamp" in frame else []
        if sort_cols:
            frame = frame.sort_values(sort_cols, kind="stable")  # keep the earliest copy
        dedup = frame.drop_duplicates(["user", "item"], keep="first")
    stats["duplicates_collapsed"] = int(len(frame) - len(dedup))
    frame = dedup
    if params.min_user_interactions > 0:
        counts = frame["user"].map(frame["user"].value_counts())
        dropped_users = frame.loc[counts < params.min_user_interactions, "user"].nunique()
        frame = frame.loc[counts >= params.min_user_interactions]
        stats["users_below_min_dropped"] = int(dropped_users)
    if len(frame) == 0:
        raise DataError(f"{source}: no interactions left after data.rating_threshold="
                        f"{params.rating_threshold} and data.min_user_interactions="
                        f"{params.min_user_interactions}")

    user_tokens = _sorted_tokens(frame["user"].to_numpy())
    item_tokens = _sorted_tokens(frame["item"].to_numpy())
    users = pd.Index(user_tokens).get_indexer(frame["user"].to_numpy()).astype(np.int64)
    items = pd.Index(item_tokens).get_indexer(frame["item"].to_numpy()).astype(np.int64)

    if params.split == "predefined":
        split = frame["split"].to_numpy()
    else:
        n = len(users)
        if params.split == "loo_time":
            # latest -> test, second latest -> valid; random tie-break among equal timestamps
            keys = frame["timestamp"].to_numpy() + rng.random(n) * 1e-6
        else:
            keys = rng.random(n)
        rank, count = _rank_within_user(users, keys)
        split = np.full(n, "train", dtype=object)
        if params.split in ("loo_random", "loo_time"):
            split[(rank == 0) & (count >= 3)] = "test"
            split[(rank == 1) & (count >= 3)] = "valid"
        else:
            n_test = np.floor(count * params.test_ratio + 0.5).astype(np.int64)
            n_valid = np.floor(count * params.valid_ratio + 0.5).astype(np.int64)
            # keep at least one train interaction per user
            n_test = np.minimum(n_test, count - 1)
            n_valid = np.minimum(n_valid, count - 1 - n_test)
            split[rank < n_test] = "test"
            split[(rank >= n_test) & (rank < n_test + n_valid)] = "valid"
    split = np.asarray(split)
    pairs = np.stack([users, items], axis=1)
    parts = {s: pairs[split == s] for s in SPLITS}
    for s in SPLITS:
        # deterministic row order: by user then item
        p = parts[s]
        parts[s] = p[np.lexsort((p[:, 1], p[:, 0]))]
    if len(parts["train"]) == 0:
        raise DataError(f"{source}: the split left no train interactions")
    if len(parts["test"]) == 0:
        raise DataError(f"{source}: the split left no test interactions "
                        f"(users need >= 3 interactions for leave-one-out)")
    num_users, num_items = len(user_tokens), len(item_tokens)
    stats.update({
        "users": num_users,
        "items": num_items,
        "interactions": int(len(pairs)),
        "train": int(len(parts["train"])),
        "valid": int(len(parts["valid"])),
        "test": int(len(parts["test"])),
        "density": float(len(pairs) / (num_users * num_items)),
        "valid_users": int(len(np.unique(parts["valid"][:, 0]))),
        "test_users": int(len(np.unique(parts["test"][:, 0]))),
    })
    return PreparedData(parts["train"], parts["valid"], parts["test"],
                        np.asarray(user_tokens, dtype=str), np.asarray(item_tokens, dtype=str), stats)


def save_prepared(data: PreparedData, out_dir: str | Path) -> None:
    """Write train/valid/test TSVs (contiguous ids), users.tsv/items.tsv id maps and meta.json."""
    with atomic_dir(out_dir) as tmp:
        for name in SPLITS:
            pd.DataFrame(getattr(data, name), columns=["user", "item"]).to_csv(
                tmp / f"{name}.tsv", sep="\t", index=False)
        pd.DataFrame({"id": np.arange(data.num_users), "token": data.user_tokens}).to_csv(
            tmp / "users.tsv", sep="\t", index=False)
        pd.DataFrame({"id": np.arange(data.num_items), "token": data.item_tokens}).to_csv(
            tmp / "items.tsv", sep="\t", index=False)
        write_json(tmp / "meta.json", {"num_users": data.num_users, "num_items": data.num_items,
                                       **data.stats})


def load_prepared(in_dir: str | Path) -> PreparedData:
    in_dir = Path(in_dir)
    meta_path = in_dir / "meta.json"
    if not meta_path.exists():
        raise DataError(f"{meta_path}: not found; run the prepare stage first (dvc repro prepare)")
    meta = read_json(meta_path)
    parts = {}
    for name in SPLITS:
        frame = pd.read_csv(in_dir / f"{name}.tsv", sep="\t", dtype=np.int64)
        parts[name] = frame[["user", "item"]].to_numpy()
    users = pd.read_csv(in_dir / "users.tsv", sep="\t", dtype={"token": str}, keep_default_na=False)
    items = pd.read_csv(in_dir / "items.tsv", sep="\t", dtype={"token": str}, keep_default_na=False)
    stats = {k: v for k, v in meta.items() if k not in ("num_users", "num_items")}
    return PreparedData(parts["train"], parts["valid"], parts["test"],
                        users["token"].to_numpy(dtype=str), items["token"].to_numpy(dtype=str), stats)


def interaction_matrix(pairs: np.ndarray, num_users: int, num_items: int) -> sp.csr_matrix:
    """Binary users x items CSR matrix of the given (user, item) pairs."""
    data = np.ones(len(pairs), dtype=np.float32)
    mat = sp.csr_matrix((data, (pairs[:, 0], pairs[:, 1])), shape=(num_users, num_items))
    mat.sum_duplicates()
    mat.data[:] = 1.0
    return mat


class NegativeSampler:
    """Uniform negatives among the items a user has not interacted with in train.

    Vectorised rejection sampling: draw for all rows at once, re-draw only the rows that hit a
    train positive, until none do. Membership is a binary search in the sorted train keys.
    """

    def __init__(self, train: np.ndarray, num_items: int):
        self.num_items = int(num_items)
        self.train_users = train[:, 0].astype(np.int64)
        self.keys = np.unique(train[:, 0].astype(np.int64) * self.num_items + train[:, 1])
        counts = np.bincount(self.train_users, minlength=1)
        if (counts >= self.num_items).any():
            user = int(np.flatnonzero(counts >= self.num_items)[0])
            raise DataError(f"user id {user} interacted with every item: no negative exists")

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = users.astype(np.int64) * self.num_items + items
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == q

    def sample(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        neg = rng.integers(0, self.num_items, size=len(users))
        todo = np.flatnonzero(self.is_positive(users, neg))
        while len(todo):
            neg[todo] = rng.integers(0, self.num_items, size=len(todo))
            todo = todo[self.is_positive(users[todo], neg[todo])]
        return neg
