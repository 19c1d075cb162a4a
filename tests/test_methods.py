"""FitNet, DE, RD, RRD and LightGCN: each loss on a hand-made case, and the trainer with them."""

import math

import numpy as np
import pytest
import torch

from topodistill.distillers import DE, RRD, build_distiller, build_ranking
from topodistill.errors import ConfigError
from topodistill.losses import fitnet_loss, position_weights, rd_loss, rrd_loss
from topodistill.models import LightGCN, build_model, load_model, normalized_adjacency, save_model
from topodistill.params import section_from_dict
from topodistill.trainer import train


def test_fitnet_loss_by_hand():
    t = torch.tensor([[1.0, 2.0]])
    s = torch.tensor([[1.0]])
    w = torch.tensor([[1.0], [1.0]])
    assert fitnet_loss(t, s, w, torch.tensor([0.0, 1.0])).item() == pytest.approx(0.0)
    assert fitnet_loss(t, s, w).item() == pytest.approx(1.0)  # projection (1, 1): error (0, 1)
    assert fitnet_loss(t, 2 * s, w).item() == pytest.approx(1.0 + 0.0)  # (2, 2): error (-1, 0)


def test_rd_loss_and_position_weights_by_hand():
    w = position_weights(3, 1.0)
    e = np.exp(-np.arange(1, 4))
    assert torch.allclose(w, torch.tensor(e / e.sum(), dtype=torch.float32))
    assert rd_loss(torch.zeros(1, 2), torch.tensor([0.5, 0.5])).item() == pytest.approx(math.log(2))
    # higher scores for the teacher's top items lower the loss
    assert rd_loss(torch.full((1, 2), 3.0), torch.tensor([0.5, 0.5])) < rd_loss(torch.zeros(1, 2), torch.tensor([0.5, 0.5]))


def test_rrd_loss_by_hand():
    a, b, c, d = 2.0, 1.0, 0.5, -1.0
    expected = -((a - math.log(math.exp(a) + math.exp(b) + math.exp(c) + math.exp(d)))
                 + (b - math.log(math.exp(b) + math.exp(c) + math.exp(d))))
    value = rrd_loss(torch.tensor([[a, b]]), torch.tensor([[c, d]]))
    assert value.item() == pytest.approx(expected, rel=1e-6)
    # the teacher's order scores better than the reverse; the uninteresting items' order is free
    assert rrd_loss(torch.tensor([[b, a]]), torch.tensor([[c, d]])) > value
    assert rrd_loss(torch.tensor([[a, b]]), torch.tensor([[d, c]])).item() == pytest.approx(value.item())


def test_normalized_adjacency_by_hand():
    pairs = np.array([[0, 0], [0, 1], [1, 0]])
    a = normalized_adjacency(pairs, 2, 2).to_dense()
    # nodes: u0 u1 i0 i1; degrees 2 1 2 1
    expected = torch.zeros(4, 4)
    for u, i, v in ((0, 2, 1 / 2), (0, 3, 1 / math.sqrt(2)), (1, 2, 1 / math.sqrt(2))):
        expected[u, i] = expected[i, u] = v
    assert torch.allclose(a, expected)


def test_lightgcn_is_the_mean_of_propagated_layers_and_round_trips(tmp_path):
    pairs = np.array([[0, 0], [0, 1], [1, 0], [2, 2]])
    torch.manual_seed(0)
    model = LightGCN(3, 3, 4, 0.1, pairs, num_layers=2)
    a = normalized_adjacency(pairs, 3, 3).to_dense()
    e0 = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach()
    mean = (e0 + a @ e0 + a @ a @ e0) / 3
    users, items = model.representations()
    assert torch.allclose(users, mean[:3], atol=1e-6) and torch.allclose(items, mean[3:], atol=1e-6)
    save_model(model, tmp_path / "m.pt")
    again = load_model(tmp_path / "m.pt", pairs)
    assert isinstance(again, LightGCN) and again.num_layers == 2
    assert torch.equal(again.representations()[0], users.detach())


def test_lightgcn_cpu_propagation_matches_dense_value_and_gradient():
    pairs = _toy(12, 15, 4)
    torch.manual_seed(0)
    model = LightGCN(12, 15, 6, 0.1, pairs, num_layers=3)
    a = normalized_adjacency(pairs, 12, 15).to_dense()
    weights = torch.randn(12 + 15, 6)

    def dense_loss(e0):
        total, layer = e0, e0
        for _ in range(3):
            layer = a @ layer
            total = total + layer
        return ((total / 4) * weights).sum()

    e0 = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach().requires_grad_()
    dense_loss(e0).backward()
    users, items = model.representations()
    loss = (torch.cat([users, items]) * weights).sum()
    loss.backward()
    assert loss.item() == pytest.approx(dense_loss(e0).item(), rel=1e-5)
    grad = torch.cat([model.user_embedding.weight.grad, model.item_embedding.weight.grad])
    assert torch.allclose(grad, e0.grad, atol=1e-6)


def _toy(num_users=60, num_items=80, per_user=8, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(u, i) for u in range(num_users) for i in rng.choice(num_items, per_user, replace=False)]
    return np.array(rows, dtype=np.int64)


def _teacher(pairs, num_users, num_items, dim=16):
    torch.manual_seed(0)
    t = build_model("bpr", num_users, num_items, dim, 0.1)
    train(t, pairs, num_items, section_from_dict("teacher", {"epochs": 2, "batch_size": 128,
                                                             "eval_every": 100}), 0, torch.device("cpu"))
    return [x.detach() for x in t.representations()]


def test_rrd_uninteresting_items_avoid_top_lists_and_train():
    pairs = _toy()
    top = torch.from_numpy(np.stack([np.random.default_rng(u).choice(80, 10, replace=False)
                                     for u in range(60)]))
    rrd = RRD(top, section_from_dict("distill", {"rrd": {"num_interesting": 5,
                                                         "num_uninteresting": 20}}).rrd, pairs, 80)
    rrd.start_epoch(np.random.default_rng(0))
    drawn = rrd.uninteresting.numpy()
    train_sets = [set(pairs[pairs[:, 0] == u, 1]) for u in range(60)]
    for u in range(60):
        assert not (set(drawn[u]) & set(top[u].tolist())) and not (set(drawn[u]) & train_sets[u])
    assert rrd.items_for(torch.tensor([3])).shape == (1, 25)


def test_ranking_list_too_short_is_a_config_error():
    p = section_from_dict("distill", {"ranking": "rd", "rd": {"top_k": 30}})
    with pytest.raises(ConfigError) as err:
        build_ranking(p, torch.zeros(5, 10, dtype=torch.long), _toy(5, 40, 3), 40)
    assert "distill.rd.top_k = 30" in str(err.value) and "rank.top_n = 10" in str(err.value)


def test_de_experts_and_selection_get_gradients():
    torch.manual_seed(0)
    tu, ti = torch.randn(10, 8), torch.randn(12, 8)
    de = DE(tu, ti, 3, section_from_dict("distill", {}).de, torch.Generator().manual_seed(0))
    su = torch.randn(4, 3, requires_grad=True)
    si = torch.randn(5, 3, requires_grad=True)
    out = de(torch.arange(4), torch.arange(5), su, si, 0.0)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and su.grad.abs().sum() > 0
    for p in de.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("method,ranking,model", [
    ("fitnet", "none", "bpr"), ("de", "none", "bpr"), ("none", "rd", "bpr"),
    ("htd", "rrd", "bpr"), ("ftd", "none", "lightgcn"),
])
def test_every_combination_trains_deterministically(method, ranking, model):
    num_users, num_items = 60, 80
    pairs = _toy(num_users, num_items)
    tu, ti = _teacher(pairs, num_users, num_items)
    g = torch.Generator().manual_seed(0)
    clusters = {"user_groups": torch.randint(0, 4, (num_users,), generator=g),
                "user_centroids": torch.randn(4, 16, generator=g),
                "item_groups": torch.randint(0, 4, (num_items,), generator=g),
                "item_centroids": torch.randn(4, 16, generator=g)}
    params = section_from_dict("distill", {"method": method, "ranking": ranking, "model": model,
                                           "student_dim": 4, "epochs": 2, "batch_size": 128,
                                           "eval_every": 100, "rrd": {"num_interesting": 5}})
    with torch.no_grad():
        top = torch.topk(tu @ ti.T, 10, dim=1).indices
    results = []
    for _ in range(2):
        torch.manual_seed(1)
        student = build_model(model, num_users, num_items, 4, 0.1, pairs, 2)
        distiller = build_distiller(params, tu, ti, clusters, True, torch.Generator().manual_seed(1))
        ranking_obj = build_ranking(params, top, pairs, num_items)
        res = train(student, pairs, num_items, params, 1, torch.device("cpu"), distiller=distiller,
                    distill_weight=params.distill_weight, ranking=ranking_obj)
        results.append((res.history, [p.detach().clone() for p in student.parameters()]))
    (h1, p1), (h2, p2) = results
    assert all(math.isfinite(h["loss"]) for h in h1)
    if ranking != "none":
        assert h1[-1]["ranking_loss"] > 0
    if method != "none":
        assert h1[-1]["distill_loss"] != 0
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))
