"""Distillation losses on tiny hand-made tensors, against values worked out by hand."""

import math

import pytest
import torch

from topodistill.losses import (ExpertAssignment, annealed_temperature, bpr_loss,
                                full_topology_loss, full_topology_loss_joint, group_level_topology_loss,
                                grouped_positive_pairs_topology_loss, grouped_topology_loss,
                                gumbel_softmax_weights,
                                pairwise_topology_loss, prototypes)

# teacher: e0=(1,0), e1=(0,1), e2=(1,1)  -> cos(0,1)=0, cos(0,2)=cos(1,2)=1/sqrt2
# student: e0=(1,0), e1=(1,0), e2=(0,1)  -> cos(0,1)=1, cos(0,2)=cos(1,2)=0
T = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
S = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
GROUPS = torch.tensor([0, 0, 1])


def test_bpr_loss_is_summed_negative_log_sigmoid():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0])
    expected = -(math.log(1 / (1 + math.exp(-1.0))) + math.log(0.5))
    assert bpr_loss(pos, neg).item() == pytest.approx(expected, rel=1e-6)


def test_ftd_by_hand():
    # ordered pairs: (0,1) twice: (0-1)^2 ; (0,2),(1,2) twice each: (1/sqrt2 - 0)^2 = 0.5
    assert full_topology_loss(T, S).item() == pytest.approx(2 * (1 + 0.5 + 0.5), abs=1e-6)
    assert pairwise_topology_loss(T, S).item() == pytest.approx(4.0, abs=1e-6)


def test_ftd_zero_when_student_copies_topology():
    rot = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    assert full_topology_loss(T, 3.0 * T @ rot).item() == pytest.approx(0.0, abs=1e-5)


def test_entity_level_uses_group_mask():
    # only (0,1) is a same-group pair: 2 * (0 - 1)^2 = 2
    assert grouped_topology_loss(T, S, GROUPS, 2).item() == pytest.approx(2.0, abs=1e-6)
    mask = (GROUPS[:, None] == GROUPS[None, :]).float()
    assert pairwise_topology_loss(T, S, mask).item() == pytest.approx(2.0, abs=1e-6)
    # the official code's selection also needs cos_t > 0: cos_t(0,1) = 0 drops the pair
    tn = torch.nn.functional.normalize(T, dim=1)
    official = mask * (tn @ tn.T > 0).float()
    assert pairwise_topology_loss(T, S, official).item() == pytest.approx(0.0, abs=1e-6)


def test_group_level_by_hand():
    # teacher prototypes both point along (1,1); student prototypes (1,0) and (0,1)
    pe = 2 * (1 - 1 / math.sqrt(2)) ** 2 + 1 + 2 * 0.5 + 0
    assert group_level_topology_loss(T, S, GROUPS, 2, "pe").item() == pytest.approx(pe, abs=1e-5)
    assert group_level_topology_loss(T, S, GROUPS, 2, "pp").item() == pytest.approx(2.0, abs=1e-5)


def test_prototypes_skip_empty_groups():
    proto, present = prototypes(S, torch.tensor([0, 0, 2]), 3)
    assert present.tolist() == [0, 2]
    assert torch.allclose(proto, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))


@pytest.mark.parametrize("mode", ["pe", "pp"])
def test_gradient_reaches_prototypes_unless_detached(mode):
    s = S.clone().requires_grad_(True)
    group_level_topology_loss(T, s, GROUPS, 2, mode, detach_prototypes=False).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    s2 = S.clone().requires_grad_(True)
    loss = group_level_topology_loss(T, s2, GROUPS, 2, mode, detach_prototypes=True)
    if mode == "pp":  # official code: Group(P,P) then gives no gradient at all
        assert not loss.requires_grad
    else:  # only the entity side of Group(P,e) carries gradient
        loss.backward()
        with_proto = S.clone().requires_grad_(True)
        group_level_topology_loss(T, with_proto, GROUPS, 2, mode).backward()
        assert not torch.allclose(s2.grad, with_proto.grad)


@pytest.mark.parametrize("skewed", [False, True])
def test_frobenius_forms_match_pairwise_value_and_gradient(skewed):
    """Balanced groups take the padded batched path, skewed ones the group-by-group path."""
    gen = torch.Generator().manual_seed(0)
    t = torch.randn(300, 64, generator=gen, dtype=torch.float64)
    groups = torch.randint(0, 7, (300,), generator=gen)
    if skewed:
        groups[:250] = 3
    mask = (groups[:, None] == groups[None, :]).double()
    tn = torch.nn.functional.normalize(t, dim=1)
    positive = mask * (tn @ tn.T > 0).double()  # the official code's pairs
    for fast, slow in [
        (lambda s: full_topology_loss(t, s), lambda s: pairwise_topology_loss(t, s)),
        (lambda s: grouped_topology_loss(t, s, groups, 7), lambda s: pairwise_topology_loss(t, s, mask)),
        (lambda s: grouped_positive_pairs_topology_loss(t, s, groups, 7),
         lambda s: pairwise_topology_loss(t, s, positive)),
    ]:
        s1 = torch.randn(300, 8, generator=gen, dtype=torch.float64).requires_grad_(True)
        s2 = s1.detach().clone().requires_grad_(True)
        a, b = fast(s1), slow(s2)
        a.backward()
        b.backward()
        assert a.item() == pytest.approx(b.item(), rel=1e-9)
        assert torch.allclose(s1.grad, s2.grad, rtol=1e-8, atol=1e-10)


def test_annealed_temperature():
    assert annealed_temperature(0.0) == 1.0
    assert annealed_temperature(0.5) == pytest.approx(1e-5)
    assert annealed_temperature(1.0) == pytest.approx(1e-10)


def test_gumbel_softmax_is_a_distribution_and_hard_when_cold():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 6, generator=gen)
    w = gumbel_softmax_weights(logits, 1.0, gen)
    assert torch.allclose(w.sum(1), torch.ones(50)) and (w >= 0).all()
    cold = gumbel_softmax_weights(logits, 1e-10, gen)
    assert torch.equal(cold.max(1).values, torch.ones(50))


def test_assignment_loss_by_hand_and_centroid_init():
    ea = ExpertAssignment(teacher_dim=2, student_dim=2, num_groups=2, hidden_dim=2)
    with torch.no_grad():
        ea.w1.copy_(torch.eye(2).repeat(2, 1, 1))
        ea.b1.zero_()
        ea.w2.copy_(torch.stack([torch.eye(2), 2 * torch.eye(2)]))
        ea.b2.zero_()
    s = torch.tensor([[1.0, 2.0]])
    t = torch.tensor([[2.0, 2.0]])
    # expert 0: (1,2) -> error (1,0)^2 = 1 ; expert 1: (2,4) -> error (0,-2)^2 = 4
    assert ea.loss(t, s, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(1.0)
    assert ea.loss(t, s, torch.tensor([[0.0, 1.0]])).item() == pytest.approx(4.0)
    assert ea.loss(t, s, torch.tensor([[0.5, 0.5]])).item() == pytest.approx(0.5 ** 2 + 1.0 ** 2)  # mix (1.5, 3)
    centroids = torch.nn.functional.normalize(torch.randn(2, 2), dim=1)
    ea.init_from_centroids(centroids, scale=10.0)
    x = torch.nn.functional.normalize(torch.randn(100, 2), dim=1)
    nearest = torch.cdist(x, centroids).argmin(1)
    assert torch.equal(ea.groups(x), nearest)


@pytest.mark.parametrize("skewed", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 0.02, 1e-3, 1e-10])
def test_assignment_fast_paths_match_dense_reference(temperature, skewed):
    """The dense GEMM form, the sparse (non-zero pairs only) form and the dispatching ``loss``
    give the reference value and every gradient, for soft, partly zero and one-hot weights."""
    torch.manual_seed(0)
    ea = ExpertAssignment(teacher_dim=12, student_dim=4, num_groups=5).double()
    t = torch.randn(40, 12, dtype=torch.float64)
    s = torch.randn(40, 4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    u = torch.rand(40, 5, generator=gen, dtype=torch.float64)
    gumbel = -torch.log(-torch.log(u))

    def sparse_loss(t_, s_, w_):
        return (t_ - ea.mix_sparse(s_, w_)).square().sum()

    def dense_loss(t_, s_, w_):
        return (t_ - ea.mix_dense(s_, w_)).square().sum()

    grads = []
    for fn in (ea.loss_reference, ea.loss, sparse_loss, dense_loss):
        ea.zero_grad()
        s_ = s.clone().requires_grad_(True)
        logits = ea.selection(t)
        if skewed:  # most rows pick expert 2: the sparse path goes expert by expert
            logits = logits + 50.0 * (torch.arange(5) == 2) * (torch.arange(40) < 35)[:, None]
        w = torch.softmax((torch.log_softmax(logits, 1) + gumbel) / temperature, 1)
        value = fn(t, s_, w)
        value.backward()
        grads.append((value.item(), s_.grad.clone(), [p.grad.clone() for p in ea.parameters()]))
    nonzero = (w > 0).sum(1)
    if temperature == 1e-3:  # the interesting case: some rows one-hot, some with several experts
        assert (nonzero == 1).any() and (nonzero > 1).any() and (nonzero < 5).all()
    v_ref, gs_ref, gp_ref = grads[0]
    for value, gs, gp in grads[1:]:
        assert value == pytest.approx(v_ref, rel=1e-10)
        assert torch.allclose(gs, gs_ref, rtol=1e-9, atol=1e-12)
        for a, b in zip(gp, gp_ref):  # selection network and every expert
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_topology_losses_without_constant_have_the_same_gradient():
    torch.manual_seed(3)
    t, s = torch.randn(30, 8, dtype=torch.float64), torch.randn(30, 3, dtype=torch.float64)
    groups = torch.randint(0, 4, (30,))
    for fn in (lambda s_, c: full_topology_loss(t, s_, include_constant=c),
               lambda s_, c: grouped_topology_loss(t, s_, groups, 4, include_constant=c)):
        out = []
        for c in (True, False):
            s_ = s.clone().requires_grad_(True)
            value = fn(s_, c)
            value.backward()
            out.append((value.item(), s_.grad))
        assert out[0][0] != pytest.approx(out[1][0])  # the constant is not zero ...
        assert torch.allclose(out[0][1], out[1][1], rtol=1e-10, atol=1e-12)  # ... and has no gradient


def test_joint_gram_ftd_equals_pairwise_form_in_value_and_gradient():
    """FTD's training form (one GEMM each way, hand-written backward) = the pairwise n × n form
    minus its teacher-only constant, value and gradient, including a zero student row (eps)."""
    torch.manual_seed(4)
    t = torch.nn.functional.normalize(torch.randn(40, 9, dtype=torch.float64), dim=1)
    s = torch.randn(40, 3, dtype=torch.float64)
    s[7] = 0.0
    s_ref = s.clone().requires_grad_(True)
    ref = pairwise_topology_loss(t, s_ref) - (t @ t.T).square().sum()
    ref.backward()
    joint = torch.cat([t, torch.full((40, 3), float("nan"), dtype=torch.float64)], 1)  # scratch
    s_new = s.clone().requires_grad_(True)
    value = full_topology_loss_joint(joint, s_new)
    value.backward()
    assert value.item() == pytest.approx(ref.item(), rel=1e-10)
    assert torch.allclose(s_new.grad, s_ref.grad, rtol=1e-9, atol=1e-12)
    assert torch.equal(joint[:, :9], t)  # the teacher columns are left as they were
    with pytest.raises(ValueError, match="expected"):
        full_topology_loss_joint(joint[:10], s)  # rows do not match


def test_ftd_distiller_reuses_its_scratch_buffer_safely():
    """FTD writes each batch's joint matrix into one buffer: the loss and gradient equal the
    reference form batch after batch, and a second forward before the first backward makes that
    backward fail instead of using overwritten rows."""
    from topodistill.distillers import FTD

    torch.manual_seed(5)
    tu, ti = torch.randn(30, 8, dtype=torch.float64), torch.randn(50, 8, dtype=torch.float64)
    ftd = FTD(tu, ti, student_dim=3)
    for n_u, n_i in ((10, 20), (25, 40), (5, 7)):  # grows, then shrinks inside the buffer
        users, items = torch.randperm(30)[:n_u], torch.randperm(50)[:n_i]
        su = torch.randn(n_u, 3, dtype=torch.float64, requires_grad=True)
        si = torch.randn(n_i, 3, dtype=torch.float64, requires_grad=True)
        value = ftd(users, items, su, si, 0.0)["loss"]
        value.backward()
        su_ref, si_ref = su.detach().clone().requires_grad_(True), si.detach().clone().requires_grad_(True)
        t = torch.cat([tu[users], ti[items]])
        ref = full_topology_loss(t, torch.cat([su_ref, si_ref]), include_constant=False)
        ref.backward()
        assert value.item() == pytest.approx(ref.item(), rel=1e-10)
        assert torch.allclose(su.grad, su_ref.grad, rtol=1e-9, atol=1e-12)
        assert torch.allclose(si.grad, si_ref.grad, rtol=1e-9, atol=1e-12)
    su = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    first = ftd(torch.arange(10), torch.arange(20), su, torch.randn(20, 3, dtype=torch.float64), 0.0)
    ftd(torch.arange(10, 20), torch.arange(20, 40), su, torch.randn(20, 3, dtype=torch.float64), 0.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        first["loss"].backward()
    with pytest.raises(ValueError, match="student_dim 3"):
        ftd(torch.arange(3), torch.arange(3), torch.randn(3, 4), torch.randn(3, 4), 0.0)


@pytest.mark.parametrize("sizes", [[5, 5, 5, 5], [97, 1, 1, 1], [0, 40, 0, 3], [1, 0, 0, 0]])
def test_group_chunks_round_trip_and_bounded_padding(sizes):
    from topodistill.losses.topology import GroupChunks

    groups = torch.cat([torch.full((n,), k) for k, n in enumerate(sizes)])
    groups = groups[torch.randperm(len(groups), generator=torch.Generator().manual_seed(0))]
    x = torch.randn(len(groups), 3)
    gc = GroupChunks.build(groups, len(sizes))
    padded = gc.pad(x)
    assert torch.equal(gc.unpad(padded), x)
    assert gc.num_chunks * gc.width < 2 * len(groups) + gc.width
    # every chunk holds rows of its own group only, and per-group sums are exact
    sums = gc.sum_by_group(padded.sum(1), len(sizes))
    want = torch.zeros(len(sizes), 3).index_add(0, groups, x)
    assert torch.allclose(sums, want, atol=1e-6)
