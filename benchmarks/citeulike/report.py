"""Turn benchmarks/citeulike/results*.json into the tables of RESULTS.md and recall_vs_size.png.

    python benchmarks/citeulike/report.py          # prints the markdown tables, writes the figure

Tables: the reproduction (dims × none/FTD/HTD beside the official values), the HTD variants,
the same dim-20 cells before and after the speed-ups (results_before_speedups.json), and the
methods comparison (run.py --comparison) on CiteULike and on ML-100K (results_ml100k.json).

Cells with no run yet are shown as "—". Values are mean ± sample std over the seeds present.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from run import same_cell  # benchmarks/citeulike/run.py (this script's folder is on sys.path)

HERE = Path(__file__).resolve().parent
OFFICIAL = {  # test Recall@50 at epoch 100, official notebook (../shared/datasets/citeulike/README.md)
    10: {"none": 0.1788, "ftd": 0.2112, "htd": 0.2282},
    20: {"none": 0.2276, "ftd": 0.2516, "htd": 0.2744},
    100: {"none": 0.2976, "ftd": 0.3116, "htd": 0.3116},
    200: {"none": 0.3152, "ftd": 0.3175, "htd": 0.3200},
}
OFFICIAL_TEACHER = 0.3123
TEACHER_DIM = 200


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt(values: list[float]) -> str:
    if not values:
        return "—"
    m, s = mean_std(values)
    return f"{m:.4f} ± {s:.4f} (n={len(values)})" if len(values) > 1 else f"{m:.4f} (n=1)"


def main_table(rows: list[dict]) -> str:
    lines = ["| dim | method | ours: test Recall@50 | official | ours − official | NDCG@50 | Recall@20 | Recall@10 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for dim, methods in OFFICIAL.items():
        for method, official in methods.items():
            runs = [r for r in rows if r["dim"] == dim and r["method"] == method and r["variant"] == "default"]
            rec = [r["student"]["test"]["recall@50"] for r in runs]
            diff = f"{statistics.mean(rec) - official:+.4f}" if rec else "—"
            lines.append(f"| {dim} | {method} | {fmt(rec)} | {official:.4f} | {diff} | "
                         f"{fmt([r['student']['test']['ndcg@50'] for r in runs])} | "
                         f"{fmt([r['student']['test']['recall@20'] for r in runs])} | "
                         f"{fmt([r['student']['test']['recall@10'] for r in runs])} |")
    teachers = {round(r["teacher"]["test"]["recall@50"], 6) for r in rows if r["variant"] == "default"}
    lines.append("")
    lines.append(f"Teacher (BPR dim 200, seed 0): test Recall@50 "
                 f"{', '.join(f'{t:.4f}' for t in sorted(teachers)) or '—'} vs official {OFFICIAL_TEACHER}.")
    return "\n".join(lines)


VARIANTS = {  # what each HTD variant of run.py --ablations changes from the defaults (paper)
    "default": "paper: prototypes with gradient, same-group pairs, adaptive, random init",
    "official_code": "detach_prototypes + positive_teacher_similarity pairs (official code)",
    "detach_prototypes": "student prototypes without gradient only",
    "positive_pairs": "same-group pairs with cos_t > 0 only",
    "init_from_clusters": "selection network started at the k-means centroids",
    "kmeans_groups": "assignment: kmeans (fixed groups from the cluster stage)",
}


def ablation_table(rows: list[dict]) -> str:
    lines = ["| HTD variant (dim 20) | what changes | test Recall@50 | − default | NDCG@50 | Recall@10 | seeds |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    base = [r["student"]["test"]["recall@50"] for r in rows
            if r["dim"] == 20 and r["method"] == "htd" and r["variant"] == "default"]
    variants = ["default"] + sorted({r["variant"] for r in rows
                                     if r["dim"] == 20 and r["method"] == "htd" and r["variant"] in VARIANTS
                                     and r["variant"] != "default"})
    for v in variants:
        runs = sorted((r for r in rows if r["dim"] == 20 and r["method"] == "htd" and r["variant"] == v),
                      key=lambda r: r["seed"])
        rec = [r["student"]["test"]["recall@50"] for r in runs]
        diff = f"{statistics.mean(rec) - statistics.mean(base):+.4f}" if rec and base and v != "default" else ""
        per_seed = ", ".join(f"s{r['seed']} {r['student']['test']['recall@50']:.4f}" for r in runs)
        lines.append(f"| {v} | {VARIANTS[v]} | {fmt(rec)} | {diff} | "
                     f"{fmt([r['student']['test']['ndcg@50'] for r in runs])} | "
                     f"{fmt([r['student']['test']['recall@10'] for r in runs])} | {per_seed} |")
    return "\n".join(lines)


def before_after_table(before: list[dict], after: list[dict]) -> str:
    lines = ["| dim 20 | before the speed-ups | after | difference of means |", "| --- | --- | --- | --- |"]
    for method in ("none", "ftd", "htd"):
        b = [r["student"]["test"]["recall@50"] for r in before
             if r["dim"] == 20 and r["method"] == method and r["variant"] == "default"]
        a = [r["student"]["test"]["recall@50"] for r in after
             if r["dim"] == 20 and r["method"] == method and r["variant"] == "default"]
        diff = f"{statistics.mean(a) - statistics.mean(b):+.4f}" if a and b else "—"
        lines.append(f"| {method} | {fmt(b)} | {fmt(a)} | {diff} |")
    return "\n".join(lines)


COMPARISON_ROWS = [("none", "none"), ("fitnet", "none"), ("de", "none"), ("ftd", "none"),
                   ("htd", "none"), ("none", "rd"), ("none", "rrd"), ("htd", "rrd")]


def comparison_table(rows: list[dict], model: str) -> str:
    metrics = [f"{m}@{k}" for m in ("recall", "ndcg") for k in (10, 20, 50)]
    lines = ["| method | " + " | ".join(metrics) + " |", "| --- " * (len(metrics) + 1) + "|"]
    for method, ranking in COMPARISON_ROWS:
        variant = model if ranking == "none" else f"{model}-{ranking}"
        # the BPR rows without ranking distillation are the reproduction's cells
        runs = [r for r in rows if r["dim"] == 20 and r["method"] == method
                and same_cell(r["variant"]) == same_cell(variant)]
        if not runs:
            continue
        name = {("none", "none"): "student (no distillation)", ("none", "rd"): "RD",
                ("none", "rrd"): "RRD", ("htd", "rrd"): "HTD+RRD"}.get((method, ranking), method.upper()
                                                                        if method != "fitnet" else "FitNet")
        lines.append(f"| {name} | " + " | ".join(fmt([r["student"]["test"][m] for r in runs])
                                                  for m in metrics) + " |")
    teachers = sorted({round(r["teacher"]["test"]["recall@50"], 4) for r in rows
                       if r["variant"].startswith(model)})
    lines.append("")
    lines.append(f"Teacher ({model}, dim 200): test Recall@50 {', '.join(map(str, teachers)) or '—'}.")
    return "\n".join(lines)


def rrd_sensitivity_table(rows: list[dict]) -> str:
    """RRD's weight and number of interesting items (rrd_sensitivity.json: seed-0 runs at dim 20)."""
    metrics = [f"{m}@{k}" for m in ("recall", "ndcg") for k in (10, 20, 50)]
    lines = ["| method | rrd.weight | rrd.num_interesting | " + " | ".join(metrics) + " |",
             "| --- " * (len(metrics) + 3) + "|"]
    for r in rows:
        name = "RRD" if r["method"] == "none" else f"{r['method'].upper()}+RRD"
        lines.append(f"| {name} | {r['rrd.weight']:g} | {r['rrd.num_interesting']} | "
                     + " | ".join(f"{r['student']['test'][m]:.4f}" for m in metrics) + " |")
    return "\n".join(lines)


def _new_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 4))


def _save_figure(fig, ax, xlabel: str, ylabel: str, title: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def figure(rows: list[dict], path: Path) -> None:
    fig, ax = _new_figure()
    for method, label, color in (("none", "student", "tab:blue"), ("ftd", "FTD", "tab:green"),
                                 ("htd", "HTD", "tab:purple")):
        xs, ys, es = [], [], []
        for dim in OFFICIAL:
            rec = [r["student"]["test"]["recall@50"] for r in rows
                   if r["dim"] == dim and r["method"] == method and r["variant"] == "default"]
            if rec:
                m, s = mean_std(rec)
                xs.append(dim / TEACHER_DIM)
                ys.append(m)
                es.append(s)
        if xs:
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, color=color, label=f"{label} (ours)")
        ax.plot([d / TEACHER_DIM for d in OFFICIAL], [OFFICIAL[d][method] for d in OFFICIAL],
                linestyle=":", marker="x", alpha=0.6, color=color, label=f"{label} (official)")
    teachers = [r["teacher"]["test"]["recall@50"] for r in rows if r["variant"] == "default"]
    if teachers:
        ax.axhline(statistics.mean(teachers), color="black", label="teacher (ours)")
    ax.axhline(OFFICIAL_TEACHER, color="black", linestyle=":", label="teacher (official)")
    ax.set_xscale("log")
    _save_figure(fig, ax, "student size (dim / teacher dim)", "test Recall@50",
                 "CiteULike, BPR teacher dim 200", path)


def teacher_curves_figure(path: Path, out: Path) -> None:
    """Valid Recall@50 of the BPR-MF and LightGCN teachers during training (teacher_curves.json)."""
    fig, ax = _new_figure()
    for c in json.loads(path.read_text())["curves"]:
        epochs = sorted(int(e) for e in c["valid_recall@50"])
        # epochs that were not recorded are left as a gap, not drawn as a straight line
        segments, step = [[epochs[0]]], min(b - a for a, b in zip(epochs, epochs[1:]))
        for a, b in zip(epochs, epochs[1:]):
            if b - a > 2 * step:
                segments.append([])
            segments[-1].append(b)
        color = None
        for i, seg in enumerate(segments):
            line, = ax.plot(seg, [c["valid_recall@50"][str(e)] for e in seg], marker="o", markersize=3,
                            linestyle="-" if c["model"] == "lightgcn" else "--", color=color,
                            label=None if i else f"{c['model']} lr {c['lr']:g}, weight decay {c['weight_decay']:g}")
            color = line.get_color()
    _save_figure(fig, ax, "epoch", "valid Recall@50", "CiteULike teachers, dim 200", out)


def main() -> None:
    rows = json.loads((HERE / "results.json").read_text())
    print(main_table(rows))
    print()
    print(ablation_table(rows))
    before = HERE / "results_before_speedups.json"
    if before.exists():
        print()
        print(before_after_table(json.loads(before.read_text()), rows))
    for name, data in (("CiteULike", rows), ("ML-100K", json.loads((HERE / "results_ml100k.json").read_text())
                                               if (HERE / "results_ml100k.json").exists() else [])):
        for model in ("bpr", "lightgcn"):
            if any(r["variant"].startswith(model) for r in data):
                print(f"\n{name}, {model} teacher → {model} student (dim 20)\n")
                print(comparison_table(data, model))
    sensitivity = HERE / "rrd_sensitivity.json"
    if sensitivity.exists():
        print("\nRRD settings, CiteULike, BPR 200 → 20, seed 0\n")
        print(rrd_sensitivity_table(json.loads(sensitivity.read_text())))
    total = sum(r["wall_seconds"] for r in rows)
    print(f"\n{len(rows)} runs, {total / 60:.1f} minutes of wall time in all")
    figure(rows, HERE / "recall_vs_size.png")
    if (HERE / "teacher_curves.json").exists():
        teacher_curves_figure(HERE / "teacher_curves.json", HERE / "teacher_curves.png")


if __name__ == "__main__":
    main()
