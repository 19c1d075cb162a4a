"""Speed and memory benchmark of the training loop and the evaluation.

    python benchmarks/perf.py                       # everything (CiteULike parts + scale ladder)
    python benchmarks/perf.py --skip-ladder         # CiteULike parts only (~2 minutes)
    python benchmarks/perf.py --ladder 0.5 1        # a shorter ladder (millions of interactions)

Writes benchmarks/perf.json and prints a table. Every part runs in its own child process so that
its peak resident memory (ru_maxrss) is its own; ratios are measured within one run.

CiteULike parts (../shared/datasets/citeulike/, paper settings: batch 1024, teacher dim 200,
students dim 20, K = 30): seconds per training epoch (median of the measured epochs after a
warm-up epoch) for the teacher, the `none`, FTD and HTD students — HTD early (first epochs: Gumbel
temperature ≈ 1, soft weights, every expert active) and late (last epochs: one-hot weights) —,
the achieved GFLOP/s of HTD's dense assignment loss next to a bare matmul of the same total size,
the same for the one-hot (late) form, a lower bound for a late HTD epoch (the `none` epoch plus
the FLOPs of the matrix products HTD adds, at the bare matmul's rate), and one full evaluation
of all users next to its floor (bare chunked U @ Vᵀ + top-k(50)).

Scale ladder: synthetic clustered data of about 0.5M, 1M, 2M and 5M train interactions (50 per
user, items = users / 2; the largest 100k users × 50k items): one epoch of the `none` student and
one late HTD epoch, one full evaluation, peak memory, and time per million interactions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from topodistill.data import load_prepared, prepare, read_interactions, save_prepared  # noqa: E402
from topodistill.distillers import build_distiller  # noqa: E402
from topodistill.losses.assignment import ExpertAssignment  # noqa: E402
from topodistill.metrics import RankingEvaluator  # noqa: E402
from topodistill.models import build_model, load_model, save_model  # noqa: E402
from topodistill.params import section_from_dict  # noqa: E402
from topodistill.trainer import train  # noqa: E402

CITEULIKE = ROOT.parent / "shared" / "datasets" / "citeulike" / "interactions.tsv"
K = 30


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def train_params(**kw):
    base = {"epochs": 100, "eval_every": 1000}
    base.update(kw)
    return section_from_dict("distill", base)


def epoch_times(model, data, params, distiller=None, first_epoch=0, seed=0):
    result = train(model, data.train, data.num_items, params, seed, torch.device("cpu"),
                   distiller=distiller, distill_weight=params.distill_weight,
                   desc="bench", first_epoch=first_epoch)
    return [h["epoch_seconds"] for h in result.history], result.history


def random_clusters(num_users, num_items, dim, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"user_groups": torch.randint(0, K, (num_users,), generator=g),
            "user_centroids": torch.randn(K, dim, generator=g),
            "item_groups": torch.randint(0, K, (num_items,), generator=g),
            "item_centroids": torch.randn(K, dim, generator=g)}


# ---------------------------------------------------------------- parts (each in a child process)

def part_prepare_citeulike(work: Path, args) -> dict:
    t0 = time.perf_counter()
    frame = read_interactions(args.citeulike)
    data = prepare(frame, section_from_dict("data", {"path": str(args.citeulike),
                   "split": "predefined", "rating_threshold": None}), 0)
    seconds = time.perf_counter() - t0
    save_prepared(data, work / "citeulike")
    return {"seconds": seconds, "users": data.num_users, "items": data.num_items,
            "train": len(data.train)}


def part_teacher(work: Path, args) -> dict:
    data = load_prepared(work / "citeulike")
    torch.manual_seed(0)
    model = build_model("bpr", data.num_users, data.num_items, 200, 0.01)
    n = 1 + args.short_epochs
    times, _ = epoch_times(model, data, train_params(epochs=n))
    save_model(model, work / "teacher.pt")
    return {"epoch_seconds": statistics.median(times[1:]), "all": times}


class _Stop(Exception):
    pass


def _student_epochs(work: Path, method: str, first_epoch: int, n_epochs: int) -> dict:
    """Epochs first_epoch … first_epoch + n_epochs − 1 of a 100-epoch student schedule."""
    data = load_prepared(work / "citeulike")
    teacher = load_model(work / "teacher.pt")
    tu, ti = (t.detach() for t in teacher.representations())
    torch.manual_seed(0)
    student = build_model("bpr", data.num_users, data.num_items, 20, 0.01)
    params = train_params(method=method, epochs=100)
    clusters = random_clusters(data.num_users, data.num_items, 200)
    distiller = build_distiller(params, tu, ti, clusters, True, torch.Generator().manual_seed(0))
    history: list[dict] = []

    def stop_after(record):
        history.append(record)
        if len(history) >= n_epochs:
            raise _Stop

    try:
        train(student, data.train, data.num_items, params, 0, torch.device("cpu"),
              distiller=distiller, distill_weight=params.distill_weight, desc=method,
              first_epoch=first_epoch, on_epoch=stop_after)
    except _Stop:
        pass
    times = [h["epoch_seconds"] for h in history]
    out = {"epoch_seconds": statistics.median(times[1:]) if len(times) > 1 else times[0],
           "all": times, "epochs": [h["epoch"] for h in history]}
    if "one_hot_fraction" in history[-1]:
        out["one_hot_fraction"] = [round(h["one_hot_fraction"], 4) for h in history]
    return out


def part_none(work, args):
    return _student_epochs(work, "none", 0, 1 + args.short_epochs)


def part_ftd(work, args):
    return _student_epochs(work, "ftd", 0, 1 + args.short_epochs)


def part_htd_early(work, args):
    return _student_epochs(work, "htd", 0, 1 + args.epochs)


def part_htd_late(work, args):
    return _student_epochs(work, "htd", 100 - (1 + args.epochs), 1 + args.epochs)


def _seconds_per_call(fn, reps: int = 5, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def part_assignment_gflops(work, args) -> dict:
    """Dense (soft-weight) assignment loss of a realistic batch vs a bare matmul of the same size."""
    data = load_prepared(work / "citeulike")
    teacher = load_model(work / "teacher.pt")
    tu, ti = (t.detach() for t in teacher.representations())
    rng = np.random.default_rng(0)
    rows = data.train[rng.permutation(len(data.train))[:1024]]
    users = torch.unique(torch.from_numpy(rows[:, 0]))
    items = torch.unique(torch.from_numpy(np.concatenate([rows[:, 1],
                         rng.integers(0, data.num_items, 1024)])))
    torch.manual_seed(0)
    sides = []
    for ids, table in ((users, tu), (items, ti)):
        ea = ExpertAssignment(200, 20, K)
        s = torch.randn(len(ids), 20, requires_grad=True)
        sides.append((ea, table[ids], s))

    def step():
        for ea, t, s in sides:
            w = torch.softmax(ea.selection(t) + torch.randn(len(t), K), 1)  # soft weights, T = 1
            ea.loss(t, s, w).backward()

    hidden = (200 + 20) // 2
    flops = 0.0
    for _, t, _ in sides:
        n = len(t)
        fwd = 2 * n * 20 * K * hidden + 2 * n * K * hidden * 200
        flops += 3 * fwd  # forward + backward (two GEMMs per forward GEMM)
    loss_s = _seconds_per_call(step)
    # bare matmuls of the same total size: the three big GEMMs of each side
    mats = []
    for _, t, _ in sides:
        n = len(t)
        mats.append((torch.randn(n, K * hidden), torch.randn(K * hidden, 200), torch.randn(n, 20),
                     torch.randn(20, K * hidden)))

    def bare():
        for a, b, c, d in mats:
            a @ b
            (a @ b) @ b.T  # stand-ins for the two backward GEMMs
            c @ d
            c @ d
            c.T @ a
    bare_s = _seconds_per_call(bare)
    # late epochs: one-hot weights, each row through its own expert only (the exact sparse form)
    onehot = [F.one_hot(ea.selection(t).argmax(1), K).to(t.dtype) for ea, t, _ in sides]

    def step_one_hot():
        for (ea, t, s), w in zip(sides, onehot):
            ea.loss(t, s, w).backward()
    rows = sum(len(t) for _, t, _ in sides)
    late_flops = {k: rows * v for k, v in late_htd_flops_per_row(hidden).items()}
    one_hot_flops = late_flops["experts"]
    one_hot_s = _seconds_per_call(step_one_hot)
    return {"rows": [len(users), len(items)], "gflop_per_step": flops / 1e9,
            "assignment_seconds": loss_s, "assignment_gflops": flops / loss_s / 1e9,
            "bare_matmul_seconds": bare_s, "bare_matmul_gflops": flops / bare_s / 1e9,
            "ratio_to_bare": (flops / loss_s) / (flops / bare_s),
            "one_hot_gflop_per_step": one_hot_flops / 1e9, "one_hot_seconds": one_hot_s,
            "one_hot_gflops": one_hot_flops / one_hot_s / 1e9,
            "steps_per_epoch": -(-len(data.train) // 1024),
            "late_htd_gflop_per_step": {k: v / 1e9 for k, v in late_flops.items()}}


def late_htd_flops_per_row(hidden: int, d_t: int = 200, d_s: int = 20, k: int = K) -> dict:
    """FLOPs per entity row and batch of the matrix products a late (one-hot) HTD step must run
    on top of the `none` student: the row's own expert MLP forward and backward (input and
    weight gradients: 3 × the forward), the selection network's forward (its backward is exactly
    zero when the weights are one-hot), the entity-level Gram products TᵀS forward and T(TᵀS)
    backward (SᵀS terms left out), and the group-level similarities of the K prototypes to the
    row in the teacher space (forward only) and the student space (forward and backward)."""
    return {"experts": 3 * 2 * (d_s * hidden + hidden * d_t),
            "selection": 2 * d_t * k,
            "entity_topology": 2 * 2 * d_t * d_s,
            "group_topology": 2 * k * d_t + 3 * 2 * k * d_s}


def _eval_vs_floor(data, user_table, item_table, chunk=1024, k=50) -> dict:
    ev = RankingEvaluator(data.train, data.test, data.valid, data.num_users, data.num_items,
                          [10, 20, 50], chunk_users=chunk)
    ev.evaluate(user_table, item_table)  # warm-up
    t0 = time.perf_counter()
    ev.evaluate(user_table, item_table)
    eval_s = time.perf_counter() - t0
    users = torch.as_tensor(ev.users)
    item_t = item_table.T.contiguous()

    def floor():
        for start in range(0, len(users), chunk):
            torch.topk(user_table[users[start:start + chunk]] @ item_t, k, dim=1)
    floor()
    t0 = time.perf_counter()
    floor()
    floor_s = time.perf_counter() - t0
    return {"eval_seconds": eval_s, "floor_seconds": floor_s, "ratio": eval_s / floor_s,
            "users": len(users), "items": data.num_items}


def part_eval_citeulike(work, args) -> dict:
    data = load_prepared(work / "citeulike")
    torch.manual_seed(0)
    student = build_model("bpr", data.num_users, data.num_items, 20, 0.01)
    with torch.no_grad():
        return _eval_vs_floor(data, *student.representations())


def synthetic_pool(num_users, num_items, per_user, seed=0, num_clusters=50, affinity=0.8):
    """Fast clustered implicit data (O(interactions)): each interaction picks, with probability
    ``affinity``, an item of the user's cluster (Zipf-like popularity inside it), else any item."""
    rng = np.random.default_rng(seed)
    ucl = rng.integers(0, num_clusters, num_users)
    icl = rng.integers(0, num_clusters, num_items)
    order = np.argsort(icl, kind="stable")
    starts = np.searchsorted(icl[order], np.arange(num_clusters))
    sizes = np.bincount(icl, minlength=num_clusters)
    users = np.repeat(np.arange(num_users), per_user)
    c = ucl[users]
    in_cluster = rng.random(len(users)) < affinity
    offset = np.floor(sizes[c] * rng.random(len(users)) ** 2).astype(np.int64)
    items = np.where(in_cluster, order[starts[c] + np.minimum(offset, sizes[c] - 1)],
                     rng.integers(0, num_items, len(users)))
    return pd.DataFrame({"user": users.astype(str), "item": items.astype(str)})


def part_ladder(work, args, millions: float) -> dict:
    n = int(millions * 1e6)
    num_users = n // 50
    num_items = num_users // 2
    frame = synthetic_pool(num_users, num_items, 55)  # ~50 unique after duplicates + held-out
    t0 = time.perf_counter()
    data = prepare(frame, section_from_dict("data", {"path": "synthetic", "rating_threshold": None}), 0)
    prepare_s = time.perf_counter() - t0
    del frame
    torch.manual_seed(0)
    teacher = build_model("bpr", data.num_users, data.num_items, 200, 0.01)
    tu, ti = (t.detach() for t in teacher.representations())
    out = {"millions": millions, "users": data.num_users, "items": data.num_items,
           "train": len(data.train), "prepare_seconds": prepare_s}
    student = build_model("bpr", data.num_users, data.num_items, 20, 0.01)
    params = train_params(method="none", epochs=1)
    times, _ = epoch_times(student, data, params)
    out["none_epoch_seconds"] = times[0]
    params = train_params(method="htd", epochs=100)
    distiller = build_distiller(params, tu, ti, random_clusters(data.num_users, data.num_items, 200),
                                True, torch.Generator().manual_seed(0))
    times, hist = epoch_times(student, data, params, distiller, first_epoch=99)
    out["htd_late_epoch_seconds"] = times[0]
    out["htd_one_hot_fraction"] = hist[0].get("one_hot_fraction")
    with torch.no_grad():
        out.update({f"eval_{k}": v for k, v in _eval_vs_floor(data, *student.representations()).items()
                    if k in ("eval_seconds", "floor_seconds", "ratio")})
    m = len(data.train) / 1e6
    out["none_seconds_per_million"] = out["none_epoch_seconds"] / m
    out["htd_seconds_per_million"] = out["htd_late_epoch_seconds"] / m
    # the dense Adam update of both whole tables at every step (the paper's semantics: weight
    # decay and moments on every row) costs steps × table size = O(interactions × entities) per
    # epoch: time it alone, so the rest of the epoch can be seen to grow linearly
    out["adam_epoch_seconds"] = _adam_epoch_seconds(student, len(data.train))
    out["none_minus_adam_seconds_per_million"] = (out["none_epoch_seconds"]
                                                  - out["adam_epoch_seconds"]) / m
    return out


def _adam_epoch_seconds(model, train_size: int, batch_size: int = 1024, reps: int = 20) -> float:
    """Seconds per epoch of the fused Adam step alone over the model's tables (random gradients)."""
    from topodistill.trainer import make_optimizer
    params = [p for p in model.parameters()]
    opt = make_optimizer(params, 0.001, 0.001, torch.device("cpu"))
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    for _ in range(3):
        opt.step()
    t0 = time.perf_counter()
    for _ in range(reps):
        opt.step()
    per_step = (time.perf_counter() - t0) / reps
    return per_step * -(-train_size // batch_size)


PARTS = {
    "prepare_citeulike": part_prepare_citeulike,
    "teacher": part_teacher,
    "none": part_none,
    "ftd": part_ftd,
    "htd_early": part_htd_early,
    "htd_late": part_htd_late,
    "assignment_gflops": part_assignment_gflops,
    "eval_citeulike": part_eval_citeulike,
}


def child(args) -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    work = Path(args.work)
    t0 = time.perf_counter()
    if args.part.startswith("ladder:"):
        result = part_ladder(work, args, float(args.part.split(":")[1]))
    else:
        result = PARTS[args.part](work, args)
    result["wall_seconds"] = time.perf_counter() - t0
    result["peak_rss_mb"] = peak_rss_mb()
    Path(args.result).write_text(json.dumps(result))


def run_part(name: str, work: Path, args) -> dict:
    out = work / f"{name.replace(':', '_')}.json"
    cmd = [sys.executable, __file__, "--child", name, "--work", str(work), "--result", str(out),
           "--epochs", str(args.epochs), "--short-epochs", str(args.short_epochs),
           "--citeulike", str(args.citeulike)]
    print(f"[perf] {name} …", flush=True)
    env = dict(os.environ, TQDM_DISABLE="1")
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"part {name} failed with exit code {proc.returncode}")
    result = json.loads(out.read_text())
    print(f"[perf] {name}: {json.dumps({k: v for k, v in result.items() if k != 'all'})[:300]}",
          flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--citeulike", type=Path, default=CITEULIKE)
    ap.add_argument("--epochs", type=int, default=3,
                    help="measured HTD epochs per part (after 1 warm-up)")
    ap.add_argument("--short-epochs", type=int, default=8,
                    help="measured epochs of the sub-second parts: teacher, none, FTD (after 1 "
                         "warm-up; their first epochs are slower, and a few epochs of 0.2 s are "
                         "at the mercy of the machine's noise)")
    ap.add_argument("--ladder", type=float, nargs="*", default=[0.5, 1, 2, 5],
                    help="ladder rungs in millions of interactions")
    ap.add_argument("--skip-ladder", action="store_true")
    ap.add_argument("--skip-citeulike", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "perf.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.part = args.child
        child(args)
        return
    started = time.perf_counter()
    report: dict = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                                "cpus": os.cpu_count(), "torch": torch.__version__,
                                "threads": torch.get_num_threads()},
                    "settings": {"batch_size": 1024, "teacher_dim": 200, "student_dim": 20,
                                 "num_groups": K, "measured_epochs": args.epochs,
                                 "measured_epochs_short_parts": args.short_epochs}}
    with tempfile.TemporaryDirectory(prefix="perf-") as tmp:
        work = Path(tmp)
        if not args.skip_citeulike:
            if not args.citeulike.exists():
                raise SystemExit(f"{args.citeulike}: CiteULike file not found (use --citeulike or "
                                 f"--skip-citeulike)")
            cu = {name: run_part(name, work, args) for name in PARTS}
            cu["ratios"] = {
                "ftd_over_none": cu["ftd"]["epoch_seconds"] / cu["none"]["epoch_seconds"],
                "htd_late_over_none": cu["htd_late"]["epoch_seconds"] / cu["none"]["epoch_seconds"],
                "htd_early_over_none": cu["htd_early"]["epoch_seconds"] / cu["none"]["epoch_seconds"],
                "eval_over_floor": cu["eval_citeulike"]["ratio"],
                "assignment_over_bare_matmul": cu["assignment_gflops"]["ratio_to_bare"],
            }
            a = cu["assignment_gflops"]
            # a lower bound for a late HTD epoch: the `none` epoch plus the matrix products HTD
            # adds (late_htd_flops_per_row) at the bare matmul's rate measured in this run
            gflop_epoch = {k: v * a["steps_per_epoch"] for k, v in a["late_htd_gflop_per_step"].items()}
            extra = sum(gflop_epoch.values()) / a["bare_matmul_gflops"]
            cu["htd_late_floor"] = {
                "gflop_per_epoch": gflop_epoch,
                "seconds_at_bare_matmul_rate": extra,
                "epoch_seconds_lower_bound": cu["none"]["epoch_seconds"] + extra}
            cu["ratios"]["htd_late_lower_bound_over_none"] = (
                cu["htd_late_floor"]["epoch_seconds_lower_bound"] / cu["none"]["epoch_seconds"])
            cu["ratios"]["one_hot_assignment_over_bare_matmul"] = (
                a["one_hot_gflops"] / a["bare_matmul_gflops"])
            report["citeulike"] = cu
        if not args.skip_ladder:
            rungs = [run_part(f"ladder:{m:g}", work, args) for m in args.ladder]
            if len(rungs) > 1:
                for key in ("none_seconds_per_million", "htd_seconds_per_million",
                            "none_minus_adam_seconds_per_million"):
                    report.setdefault("ladder_ratios", {})[f"{key}_largest_over_smallest"] = \
                        rungs[-1][key] / rungs[0][key]
            report["ladder"] = rungs
    report["total_seconds"] = time.perf_counter() - started
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwrote {args.out}")


def print_table(r: dict) -> None:
    if "citeulike" in r:
        c = r["citeulike"]
        print("\nCiteULike (batch 1024, teacher 200, students 20, K 30)        seconds   peak MB")
        rows = [("teacher epoch (dim 200)", c["teacher"]), ("none epoch", c["none"]),
                ("FTD epoch", c["ftd"]), ("HTD epoch, early (soft Gumbel)", c["htd_early"]),
                ("HTD epoch, late (one-hot)", c["htd_late"])]
        for label, part in rows:
            print(f"  {label:<40s} {part['epoch_seconds']:10.3f} {part['peak_rss_mb']:9.0f}")
        e = c["eval_citeulike"]
        print(f"  {'full evaluation (all users)':<40s} {e['eval_seconds']:10.3f} {e['peak_rss_mb']:9.0f}")
        print(f"  {'floor: chunked U@V.T + topk(50)':<40s} {e['floor_seconds']:10.3f}")
        a = c["assignment_gflops"]
        print(f"  HTD dense assignment: {a['assignment_gflops']:.1f} GFLOP/s vs bare matmul "
              f"{a['bare_matmul_gflops']:.1f} GFLOP/s (ratio {a['ratio_to_bare']:.2f})")
        if "htd_late_floor" in c:
            f = c["htd_late_floor"]
            print(f"  HTD one-hot assignment: {a['one_hot_gflops']:.1f} GFLOP/s "
                  f"({a['one_hot_gflops'] / a['bare_matmul_gflops']:.2f} of the bare matmul)")
            print(f"  late HTD's added matrix products: {sum(f['gflop_per_epoch'].values()):.1f} GFLOP "
                  f"per epoch (" + ", ".join(f"{k} {v:.1f}" for k, v in f["gflop_per_epoch"].items())
                  + f"), {f['seconds_at_bare_matmul_rate']:.3f} s at the bare matmul rate: "
                  f"late HTD epoch >= {f['epoch_seconds_lower_bound']:.3f} s")
        print("  ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in c["ratios"].items()))
    if "ladder" in r:
        print("\nScale ladder (synthetic)      train   none s  (Adam s)  HTD late s  eval s  floor s  s/M none  s/M HTD  peak MB")
        for g in r["ladder"]:
            print(f"  {g['millions']:>4g}M {g['users']:>7d}u {g['items']:>6d}i {g['train']:>9d} "
                  f"{g['none_epoch_seconds']:8.2f} {g['adam_epoch_seconds']:9.2f} {g['htd_late_epoch_seconds']:10.2f} "
                  f"{g['eval_eval_seconds']:7.2f} {g['eval_floor_seconds']:8.2f} "
                  f"{g['none_seconds_per_million']:9.2f} {g['htd_seconds_per_million']:8.2f} "
                  f"{g['peak_rss_mb']:8.0f}")
        if "ladder_ratios" in r:
            print("  " + ", ".join(f"{k} {v:.2f}" for k, v in r["ladder_ratios"].items()))
    print(f"\ntotal {r['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
