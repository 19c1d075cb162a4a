"""Stage `cluster`: k-means prototypes of the teacher's user and item spaces (params: cluster, seed).

Outputs data/clusters/clusters.npz (assignments and centroids per side), metrics/cluster.json and
plots/cluster.png (group sizes and a PCA map coloured by group).
"""

from pathlib import Path

import numpy as np
import torch

from topodistill.cli import run_stage
from topodistill.cluster import cluster_side, plot_clusters
from topodistill.data import load_prepared
from topodistill.io import atomic_path, write_json
from topodistill.models import load_model
from topodistill.params import load_section, load_seed

OUT = Path("data/clusters/clusters.npz")
METRICS = Path("metrics/cluster.json")
PLOT = Path("plots/cluster.png")


def main() -> None:
    params = load_section("cluster")
    seed = load_seed()
    teacher = load_model("data/models/teacher.pt", load_prepared("data/prepared").train)
    teacher.eval()
    with torch.no_grad():
        users, items = (t.numpy() for t in teacher.representations())
    results = {"users": cluster_side(users, params, seed, "users"),
               "items": cluster_side(items, params, seed, "items")}
    with atomic_path(OUT) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, user_groups=results["users"]["labels"],
                     user_centroids=results["users"]["centroids"],
                     item_groups=results["items"]["labels"],
                     item_centroids=results["items"]["centroids"],
                     normalized=np.array(params.normalize))
    report = {side: res["report"] for side, res in results.items()}
    report["num_groups"] = params.num_groups
    report["normalized"] = params.normalize
    write_json(METRICS, report)
    with atomic_path(PLOT) as tmp:
        plot_clusters(results, tmp, seed)
    for side in ("users", "items"):
        r = report[side]
        print(f"cluster: {side}: silhouette {r['silhouette']:.3f}, group sizes "
              f"{r['min_group_size']}/{r['median_group_size']:.0f}/{r['max_group_size']} (min/median/max)")


if __name__ == "__main__":
    run_stage("cluster", main, [str(OUT), str(METRICS), str(PLOT)])
