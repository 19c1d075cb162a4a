"""Prototype clustering of the teacher space (k-means, scikit-learn) and its report/plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score

from .errors import ConfigError
from .params import ClusterParams


def cluster_side(emb: np.ndarray, params: ClusterParams, seed: int, side: str) -> dict:
    """k-means with ``num_groups`` clusters on (optionally L2-normalised) embeddings."""
    if params.num_groups > len(emb):
        raise ConfigError(f"cluster.num_groups: {params.num_groups} groups but only {len(emb)} "
                          f"{side} (num_groups must be <= the number of {side})")
    x = emb.astype(np.float64)
    if params.normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    km = KMeans(n_clusters=params.num_groups, n_init=params.n_init, max_iter=params.max_iter,
                random_state=seed).fit(x)
    labels = km.labels_.astype(np.int64)
    sizes = np.bincount(labels, minlength=params.num_groups)
    n_sample = min(params.silhouette_sample, len(x))
    metric = "cosine" if params.normalize else "euclidean"
    sil = (float(silhouette_score(x, labels, sample_size=n_sample, random_state=seed, metric=metric))
           if 1 < len(np.unique(labels)) < len(x) else float("nan"))
    return {
        "labels": labels,
        "centroids": km.cluster_centers_.astype(np.float32),
        "space": x,
        "report": {
            "inertia": float(km.inertia_),
            "silhouette": sil,
            "silhouette_sample": n_sample,
            "min_group_size": int(sizes.min()),
            "median_group_size": float(np.median(sizes)),
            "max_group_size": int(sizes.max()),
            "empty_groups": int((sizes == 0).sum()),
        },
    }


def plot_clusters(results: dict[str, dict], path: str | Path, seed: int) -> None:
    """Group sizes and a 2-D PCA map of the teacher space coloured by group, users and items."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    rng = np.random.default_rng(seed)
    for col, (side, res) in enumerate(results.items()):
        labels, x = res["labels"], res["space"]
        k = len(res["centroids"])
        sizes = np.bincount(labels, minlength=k)
        ax = axes[0, col]
        order = np.argsort(-sizes)
        ax.bar(np.arange(k), sizes[order], color="tab:blue")
        ax.set_title(f"{side}: group sizes (k-means, K={k}), sorted")
        ax.set_xlabel("group (by size)")
        ax.set_ylabel(f"number of {side}")
        idx = rng.choice(len(x), size=min(5000, len(x)), replace=False)
        pca = PCA(n_components=2, random_state=seed).fit(x)
        xy = pca.transform(x[idx])
        cxy = pca.transform(res["centroids"].astype(np.float64))
        ax = axes[1, col]
        ax.scatter(xy[:, 0], xy[:, 1], c=labels[idx], cmap="tab20", s=4, alpha=0.6)
        ax.scatter(cxy[:, 0], cxy[:, 1], c="black", marker="x", s=40, label="centroids")
        ev = pca.explained_variance_ratio_
        ax.set_title(f"{side}: teacher space, PCA ({ev[0]:.0%} + {ev[1]:.0%} of variance)")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)
