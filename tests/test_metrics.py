"""Full-ranking metrics against a brute-force reference written independently here."""

import math

import numpy as np
import pytest
import torch

from topodistill.metrics import RankingEvaluator, popularity_tables


def brute_force(scores, train, truth, other, ks):
    """Per user: drop train and other-split items, sort everything, count hits by definition."""
    num_users, num_items = scores.shape
    truth_sets = {u: set() for u in range(num_users)}
    for u, i in truth:
        truth_sets[u].add(i)
    excluded = {u: set() for u in range(num_users)}
    for u, i in np.concatenate([train, other]):
        excluded[u].add(i)
    out = {f"{m}@{k}": [] for k in ks for m in ("recall", "ndcg", "precision")}
    for u in range(num_users):
        if not truth_sets[u]:
            continue
        candidates = [i for i in range(num_items) if i not in excluded[u]]
        ranked = sorted(candidates, key=lambda i: -scores[u, i])
        for k in ks:
            top = ranked[:k]
            hits = [1 if i in truth_sets[u] else 0 for i in top]
            dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
            idcg = sum(1 / math.log2(r + 2) for r in range(min(len(truth_sets[u]), k)))
            out[f"recall@{k}"].append(sum(hits) / len(truth_sets[u]))
            out[f"ndcg@{k}"].append(dcg / idcg)
            out[f"precision@{k}"].append(sum(hits) / k)
    return {name: float(np.mean(v)) for name, v in out.items()}


def random_split(rng, num_users, num_items):
    pairs = np.array([(u, i) for u in range(num_users) for i in range(num_items)
                      if rng.random() < 0.15])
    kind = rng.integers(0, 3, len(pairs))  # 0 train, 1 valid, 2 test
    return pairs[kind == 0], pairs[kind == 1], pairs[kind == 2]


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_metrics_match_brute_force(chunk):
    rng = np.random.default_rng(0)
    num_users, num_items, dim = 40, 60, 5
    train, valid, test = random_split(rng, num_users, num_items)
    users = torch.randn(num_users, dim, generator=torch.Generator().manual_seed(1))
    items = torch.randn(num_items, dim, generator=torch.Generator().manual_seed(2))
    scores = (users @ items.T).numpy()
    ks = [3, 10, 20]
    ev = RankingEvaluator(train, test, valid, num_users, num_items, ks, chunk_users=chunk)
    got = ev.evaluate(users, items)
    want = brute_force(scores, train, test, valid, ks)
    for name in want:
        assert got[name] == pytest.approx(want[name], abs=1e-9), name
    assert ev.num_eval_users == len(np.unique(test[:, 0]))


def test_train_and_other_split_items_are_excluded():
    # one user; item 0 scores highest but is a train item, item 1 is the valid item, item 2 is test
    train, valid, test = np.array([[0, 0]]), np.array([[0, 1]]), np.array([[0, 2]])
    users = torch.ones(1, 1)
    items = torch.tensor([[10.0], [9.0], [8.0], [1.0], [0.5]])
    test_ev = RankingEvaluator(train, test, valid, 1, 5, [1], chunk_users=4)
    assert test_ev.evaluate(users, items)["recall@1"] == 1.0  # items 0 and 1 excluded
    no_exclusion = RankingEvaluator(np.zeros((0, 2), dtype=int), test, None, 1, 5, [1])
    assert no_exclusion.evaluate(users, items)["recall@1"] == 0.0


def test_ndcg_uses_ideal_dcg_over_min_truth_and_k():
    # two truth items at ranks 1 and 3 (1-based) of a single user; K = 1 and K = 5
    train = np.zeros((0, 2), dtype=int)
    truth = np.array([[0, 0], [0, 2]])
    items = torch.tensor([[5.0], [4.0], [3.0], [2.0], [1.0]])
    ev = RankingEvaluator(train, truth, None, 1, 5, [1, 5])
    got = ev.evaluate(torch.ones(1, 1), items)
    assert got["ndcg@1"] == pytest.approx(1.0)
    assert got["ndcg@5"] == pytest.approx((1 + 1 / 2) / (1 + 1 / math.log2(3)))
    assert got["recall@5"] == 1.0 and got["precision@5"] == pytest.approx(2 / 5)


def test_popularity_ranks_by_train_count():
    train = np.array([[0, 1], [1, 1], [2, 1], [0, 2], [1, 2], [2, 3]])
    users, items = popularity_tables(train, 4, 5)
    assert items[:, 0].tolist() == [0.0, 3.0, 2.0, 1.0, 0.0]
    truth = np.array([[3, 1]])
    ev = RankingEvaluator(train, truth, None, 4, 5, [1])
    assert ev.evaluate(users, items)["recall@1"] == 1.0
