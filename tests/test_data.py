"""Reading, validating, splitting and sampling interaction data."""

import numpy as np
import pandas as pd
import pytest

from topodistill.data import (NegativeSampler, load_prepared, prepare, read_interactions,
                              save_prepared)
from topodistill.errors import DataError
from topodistill.fetch import generate_synthetic
from topodistill.params import section_from_dict


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def synthetic_frame():
    params = section_from_dict("fetch", {"synthetic": {"num_users": 60, "num_items": 80,
                                                       "interactions_per_user": 12}}).synthetic
    frame = generate_synthetic(params, seed=3)
    return frame.rename(columns={"user_id": "user", "item_id": "item"})


def test_reads_recbole_inter_with_type_suffixes(tmp_path):
    path = write(tmp_path, "x.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                      "196\t242\t3\t881250949\nu_7\ti_9\t5\t881250950\n")
    frame = read_interactions(path)
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert frame["user"].tolist() == ["196", "u_7"]
    assert frame["rating"].tolist() == [3.0, 5.0]


def test_reads_csv_with_aliases_and_skips_blank_lines(tmp_path):
    path = write(tmp_path, "x.csv", "UserID,ItemID,Score\n1,a,5\n\n2,b,4\n")
    frame = read_interactions(path)
    assert frame[["user", "item"]].values.tolist() == [["1", "a"], ["2", "b"]]


@pytest.mark.parametrize("name,text,message", [
    ("empty.tsv", "", "file is empty"),
    ("header.tsv", "user\titem\n", "no interactions"),
    ("nouser.tsv", "foo\titem\n1\t2\n", "does not name a user"),
    ("cols.tsv", "user\titem\trating\n1\t2\t5\n1\t2\t5\t7\n", "line 3"),
    ("missing.tsv", "user\titem\trating\n1\t2\t5\n\t3\t4\n", "line 3: missing user"),
    ("rating.tsv", "user\titem\trating\n1\t2\t5\n1\t3\tfive\n", "line 3: rating 'five'"),
    ("ts.csv", "user,item,timestamp\n1,2,10\n1,3,10\n1,4,yesterday\n", "line 4: timestamp"),
    ("split.tsv", "user\titem\tsplit\n1\t2\ttrain\n1\t3\tholdout\n", "line 3: split 'holdout'"),
])
def test_malformed_files_name_file_and_line(tmp_path, name, text, message):
    path = write(tmp_path, name, text)
    with pytest.raises(DataError) as err:
        read_interactions(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_interactions(tmp_path / "nope.tsv")


@pytest.mark.parametrize("mode", ["loo_random", "loo_time", "ratio"])
def test_splits_leak_nothing_and_cover_everything(synthetic_frame, mode):
    params = section_from_dict("data", {"path": "x", "split": mode, "valid_ratio": 0.2,
                                        "test_ratio": 0.2})
    data = prepare(synthetic_frame, params, seed=0)
    keys = {s: set(map(tuple, getattr(data, s).tolist())) for s in ("train", "valid", "test")}
    assert not keys["train"] & keys["valid"] and not keys["train"] & keys["test"]
    assert not keys["valid"] & keys["test"]
    total = sum(len(k) for k in keys.values())
    assert total == len(synthetic_frame.drop_duplicates(["user", "item"]))
    if mode.startswith("loo"):
        assert len(data.test) == data.num_users and len(data.valid) == data.num_users
    # every user keeps at least one train interaction
    assert len(np.unique(data.train[:, 0])) == data.num_users


def test_loo_time_holds_out_the_latest(tmp_path):
    path = write(tmp_path, "t.csv", "user,item,timestamp\nu,a,1\nu,b,3\nu,c,2\nu,d,4\n")
    data = prepare(read_interactions(path), section_from_dict("data", {"path": str(path),
                   "split": "loo_time", "rating_threshold": None}), seed=0)
    assert data.item_tokens[data.test[0, 1]] == "d" and data.item_tokens[data.valid[0, 1]] == "b"


def test_threshold_duplicates_and_min_interactions(tmp_path):
    rows = ["user\titem\trating"] + [f"u1\ti{i}\t5" for i in range(4)] + ["u1\ti0\t5", "u1\ti9\t2",
                                                                          "u2\ti1\t5", "u2\ti2\t4"]
    path = write(tmp_path, "d.tsv", "\n".join(rows) + "\n")
    data = prepare(read_interactions(path), section_from_dict("data", {"path": str(path)}), seed=0)
    assert data.stats["duplicates_collapsed"] == 1
    assert data.stats["rows_after_threshold"] == 7  # i9 (rating 2) dropped
    assert data.stats["users_below_min_dropped"] == 1  # u2 has 2 < 3 positives
    assert list(data.user_tokens) == ["u1"]


def test_predefined_split_is_taken_as_given_and_ids_keep_integer_order(tmp_path):
    rows = ["user\titem\tsplit", "0\t10\ttrain", "0\t2\ttrain", "0\t5\tvalid", "0\t7\ttest",
            "1\t2\ttrain", "1\t10\tvalid", "1\t5\ttest"]
    path = write(tmp_path, "p.tsv", "\n".join(rows) + "\n")
    data = prepare(read_interactions(path), section_from_dict("data", {"path": str(path),
                   "split": "predefined", "min_user_interactions": 0}), seed=0)
    assert list(data.item_tokens) == ["2", "5", "7", "10"]  # numeric order, not "10" < "2"
    assert data.test.tolist() == [[0, 2], [1, 1]]
    assert data.valid.tolist() == [[0, 1], [1, 3]]


def test_predefined_without_split_column_errors(synthetic_frame):
    with pytest.raises(DataError, match="no split column"):
        prepare(synthetic_frame, section_from_dict("data", {"path": "x", "split": "predefined"}), 0)


def test_id_maps_round_trip(tmp_path, synthetic_frame):
    data = prepare(synthetic_frame, section_from_dict("data", {"path": "x"}), seed=0)
    save_prepared(data, tmp_path / "prepared")
    again = load_prepared(tmp_path / "prepared")
    for s in ("train", "valid", "test"):
        assert np.array_equal(getattr(data, s), getattr(again, s))
    assert list(again.user_tokens) == list(data.user_tokens)
    # tokens of the prepared pairs are exactly the original (user, item) rows
    original = set(map(tuple, synthetic_frame[["user", "item"]].values.tolist()))
    for s in ("train", "valid", "test"):
        pairs = getattr(again, s)
        back = set(zip(again.user_tokens[pairs[:, 0]], again.item_tokens[pairs[:, 1]]))
        assert back <= original


def test_split_is_deterministic_given_seed(synthetic_frame):
    params = section_from_dict("data", {"path": "x"})
    a, b = prepare(synthetic_frame, params, 5), prepare(synthetic_frame, params, 5)
    c = prepare(synthetic_frame, params, 6)
    assert np.array_equal(a.test, b.test) and not np.array_equal(a.test, c.test)


def test_negative_sampler_never_returns_a_train_positive():
    rng = np.random.default_rng(0)
    num_users, num_items = 50, 30
    # dense users: some interacted with all but one item
    pairs = [(u, i) for u in range(num_users) for i in range(num_items)
             if (u < 5 and i != u) or (u >= 5 and rng.random() < 0.5)]
    train = np.array(pairs)
    sampler = NegativeSampler(train, num_items)
    positives = set(map(tuple, train.tolist()))
    for _ in range(5):
        neg = sampler.sample(train[:, 0], rng)
        assert not any((u, j) in positives for u, j in zip(train[:, 0], neg))
    only = sampler.sample(np.zeros(1000, dtype=np.int64), rng)
    assert set(only.tolist()) == {0}  # user 0's only non-positive item


def test_negative_sampler_is_roughly_uniform():
    train = np.array([[0, 0], [1, 1]])
    neg = NegativeSampler(train, 5).sample(np.zeros(50000, dtype=np.int64), np.random.default_rng(1))
    counts = np.bincount(neg, minlength=5)
    assert counts[0] == 0 and np.all(np.abs(counts[1:] / 50000 - 0.25) < 0.01)


def test_user_with_every_item_is_an_error():
    with pytest.raises(DataError, match="every item"):
        NegativeSampler(np.array([[0, 0], [0, 1]]), 2)
