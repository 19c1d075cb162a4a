"""Run the CiteULike reproduction table through the DVC pipeline (no second implementation).

Every cell is one `dvc exp run` of this repository's pipeline, in the workspace, with the
CiteULike split taken as given (`data.split=predefined`) and the paper's protocol (the defaults of
params.yaml):

    python benchmarks/citeulike/run.py                         # the whole table (see --help)
    python benchmarks/citeulike/run.py --dims 20 --methods htd --seeds 0     # one cell
    python benchmarks/citeulike/run.py --ablations             # the HTD variants at dim 20
    python benchmarks/citeulike/run.py --ablations --variants kmeans_groups --seeds 0
    python benchmarks/citeulike/run.py --comparison bpr        # FitNet, DE, RD, RRD, HTD+RRD, ... at dim 20
    python benchmarks/citeulike/run.py --comparison lightgcn   # LightGCN teacher and students
    python benchmarks/citeulike/run.py --comparison bpr --dataset ml-100k --seeds 0   # the default data

The teacher (seed 0) is trained by the first cell and reused by the others: the cells run one
after another in the workspace, so only `distill` and `evaluate` re-run (DVC's run cache cannot
restore stages with `cache: false` outputs, so `--temp`/`--queue` would retrain the teacher for
every cell). Students vary `distill.seed`. The workspace must be clean; it is restored to HEAD
(`git checkout` + `dvc checkout`) at the end, and every cell stays available as a DVC experiment. Each finished run is appended to benchmarks/citeulike/results.json
(dim, method, variant, seed, all valid/test metrics, wall time); runs already there are skipped,
so the command can be interrupted and resumed. `report.py` turns results.json into RESULTS.md and
recall_vs_size.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RESULTS = {"citeulike": HERE / "results.json", "ml-100k": HERE / "results_ml100k.json"}
sys.path.insert(0, str(ROOT))
from topodistill.cli import thread_count  # noqa: E402  (the stages' own thread setting)

DATA = (ROOT.parent / "shared" / "datasets" / "citeulike" / "interactions.tsv").resolve()

DATASETS = {
    "citeulike": {"fetch.dataset": "none", "data.split": "predefined",
                  "data.rating_threshold": "null"},
    "ml-100k": {"fetch.dataset": "ml-100k", "data.path": "data/raw/ml-100k.inter",
                "data.split": "loo_random", "data.rating_threshold": "4"},
}
BASE = {
    "seed": "0",
    # set explicitly in every cell: workspace experiments keep the previous cell's params.yaml
    "teacher.model": "bpr",
    "distill.model": "bpr",
    "teacher.lr": "0.001",
    "distill.lr": "0.001",
    "teacher.weight_decay": "0.001",
    "distill.weight_decay": "0.001",
    "distill.ranking": "none",
    "distill.htd.detach_prototypes": "false",
    "distill.htd.pair_selection": "group",
    "distill.htd.init_from_clusters": "false",
    "distill.htd.assignment": "adaptive",
}
# HTD variants measured at dim 20 (the defaults are the paper's behaviour)
ABLATIONS = {
    "official_code": {"distill.htd.detach_prototypes": "true",
                      "distill.htd.pair_selection": "positive_teacher_similarity"},
    "detach_prototypes": {"distill.htd.detach_prototypes": "true"},
    "positive_pairs": {"distill.htd.pair_selection": "positive_teacher_similarity"},
    "init_from_clusters": {"distill.htd.init_from_clusters": "true"},
    "kmeans_groups": {"distill.htd.assignment": "kmeans"},
}


# the comparison of the methods issue (dim 20): (method, ranking) per base model
COMPARISON = {
    "bpr": [("none", "none"), ("fitnet", "none"), ("de", "none"), ("ftd", "none"),
            ("htd", "none"), ("none", "rd"), ("none", "rrd"), ("htd", "rrd")],
    "lightgcn": [("none", "none"), ("ftd", "none"), ("htd", "none"), ("htd", "rrd")],
}
# base-model settings of the comparison beyond the paper's protocol (measured on CiteULike, LightGCN
# teacher dim 200, valid Recall@50): at the paper's lr 0.001 LightGCN learns far more slowly than
# BPR-MF (epochs 5/10/15: 0.150/0.171/0.189, BPR-MF at epoch 10: 0.208); lr 0.005 learns fast but
# stalls near 0.26 (0.2658 at epoch 100; BPR-MF 0.3043) under the paper's weight decay 0.001 on every
# row at every step; with weight decay 1e-4 (LightGCN's own setting) it reaches 0.2738 by epoch 15.
# So LightGCN teacher and students use lr 0.005 and weight decay 1e-4 within the same 100 epochs.
MODEL_OVERRIDES = {"bpr": {}, "lightgcn": {"teacher.lr": "0.005", "distill.lr": "0.005",
                                          "teacher.weight_decay": "0.0001",
                                          "distill.weight_decay": "0.0001"}}


def load_results(dataset: str) -> list[dict]:
    path = RESULTS[dataset]
    return json.loads(path.read_text()) if path.exists() else []


def save_results(rows: list[dict], dataset: str) -> None:
    tmp = RESULTS[dataset].with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rows, indent=1) + "\n")
    tmp.replace(RESULTS[dataset])


def run_cell(dim: int, method: str, seed: int, variant: str, overrides: dict[str, str],
             data_path: Path, dataset: str = "citeulike") -> dict:
    prefix = "cu" if dataset == "citeulike" else "ml"
    name = f"{prefix}-d{dim}-{method}-{variant}-s{seed}".replace("_", "-").replace("+", "-")
    sets = {**BASE, **DATASETS[dataset], "distill.student_dim": str(dim),
            "distill.method": method, "distill.seed": str(seed), **overrides}
    if dataset == "citeulike":
        sets["data.path"] = str(data_path)
    cmd = ["dvc", "exp", "run", "-n", name]
    for key, value in sets.items():
        cmd += ["-S", f"{key}={value}"]
    print(f"[citeulike] {name}: {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    # a workspace experiment leaves its outputs in the workspace: read the metrics of this run
    # there (`dvc exp show` can also list older experiments of the same name)
    metrics = {"evaluate": json.loads((ROOT / "metrics" / "evaluate.json").read_text()),
               "distill": json.loads((ROOT / "metrics" / "distill.json").read_text())}
    row = {"dim": dim, "method": method, "ranking": sets["distill.ranking"],
           "model": sets["distill.model"], "variant": variant, "seed": seed,
           "overrides": overrides, "experiment": name, "wall_seconds": round(wall, 1),
           "distill_seconds": metrics["distill"].get("train_seconds"),
           "teacher": metrics["evaluate"]["teacher"], "student": metrics["evaluate"]["student"],
           "popularity_test_recall@50": metrics["evaluate"]["popularity"]["test"]["recall@50"],
           # HTD's arithmetic depends on the CPU thread count (README, Determinism)
           "threads": thread_count()}
    print(f"[citeulike] {name}: test Recall@50 {row['student']['test']['recall@50']:.4f} "
          f"(teacher {row['teacher']['test']['recall@50']:.4f}), {wall:.0f} s", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="CiteULike interactions.tsv")
    ap.add_argument("--dims", type=int, nargs="+", default=[10, 20, 100, 200])
    ap.add_argument("--methods", nargs="+", default=["none", "ftd", "htd"])
    ap.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="default: 0 1 2 for dims 10 and 20, 0 for larger dims")
    ap.add_argument("--ablations", action="store_true", help="run the HTD variants at dim 20 instead")
    ap.add_argument("--variants", nargs="+", choices=list(ABLATIONS), default=list(ABLATIONS),
                    help="with --ablations: which variants (default: all)")
    ap.add_argument("--comparison", choices=list(COMPARISON),
                    help="run the methods comparison at dim 20 with this base model instead")
    ap.add_argument("--dataset", choices=list(DATASETS), default="citeulike",
                    help="ml-100k: the pipeline's default data (results_ml100k.json)")
    ap.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra params.yaml override for every cell, recorded in the row's "
                         "overrides (e.g. --set teacher.lr=0.005); repeatable. Rows already in "
                         "the results file count as done whatever their overrides")
    args = ap.parse_args()
    extra = {}
    for item in args.extra:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        extra[key] = value
    if args.dataset == "citeulike" and not args.data.exists():
        raise SystemExit(f"{args.data}: not found (pass --data)")
    cells = []
    if args.comparison:
        model = args.comparison
        for method, ranking in COMPARISON[model]:
            variant = f"{model}-{ranking}" if ranking != "none" else model
            overrides = {"teacher.model": model, "distill.model": model, "distill.ranking": ranking,
                         **MODEL_OVERRIDES[model]}
            for seed in args.seeds or [0, 1, 2]:
                cells.append((20, method, seed, variant, overrides))
    elif args.ablations:
        for variant in args.variants:
            overrides = ABLATIONS[variant]
            for seed in args.seeds or [0, 1, 2]:
                cells.append((20, "htd", seed, variant, overrides))
    else:
        for dim in args.dims:
            for method in args.methods:
                for seed in args.seeds or ([0, 1, 2] if dim <= 20 else [0]):
                    cells.append((dim, method, seed, "default", {}))
    cells = [(dim, method, seed, variant, {**overrides, **extra})
             for dim, method, seed, variant, overrides in cells]
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    dirty = [line for line in dirty if line.strip() and "benchmarks/citeulike/" not in line]
    if dirty:
        raise SystemExit("the workspace has uncommitted changes; commit or stash them first:\n"
                         + "\n".join(dirty))
    try:
        run_cells(cells, args.data.resolve(), args.dataset)
    finally:
        print("[citeulike] restoring the workspace to HEAD", flush=True)
        subprocess.run(["git", "checkout", "--", "params.yaml", "dvc.lock", "metrics", "plots"],
                       cwd=ROOT, check=False)
        subprocess.run(["dvc", "checkout", "--quiet"], cwd=ROOT, check=False)


def same_cell(variant: str) -> str:
    """The comparison's BPR rows without ranking distillation are the reproduction's cells (BASE)."""
    return "default" if variant == "bpr" else variant


def run_cells(cells: list, data_path: Path, dataset: str) -> None:
    rows = load_results(dataset)
    done = {(r["dim"], r["method"], r["seed"], same_cell(r["variant"])) for r in rows}
    started = time.perf_counter()
    for dim, method, seed, variant, overrides in cells:
        if (dim, method, seed, same_cell(variant)) in done:
            print(f"[citeulike] d{dim} {method} {variant} s{seed}: already in results.json", flush=True)
            continue
        rows.append(run_cell(dim, method, seed, variant, overrides, data_path, dataset))
        save_results(rows, dataset)
    print(f"[citeulike] {len(cells)} cells, {time.perf_counter() - started:.0f} s this invocation")


if __name__ == "__main__":
    sys.exit(main())
