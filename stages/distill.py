"""Stage `distill`: train the compact student with BPR + distill_weight · L_distill
[+ ranking weight · L_ranking] (params: distill, seed, device).
distill.method: none | fitnet | de | ftd | htd; distill.ranking: none | rd | rrd.

Outputs data/models/student.pt, metrics/distill.json and training curves in plots/student/.
"""

from pathlib import Path

import numpy as np
import torch

from topodistill.cli import CurveLogger, run_stage, seed_everything
from topodistill.data import load_prepared
from topodistill.distillers import build_distiller, build_ranking
from topodistill.errors import DataError
from topodistill.io import atomic_path, write_json
from topodistill.metrics import RankingEvaluator
from topodistill.models import build_model, load_model, save_model
from topodistill.params import load_device_name, load_section, load_seed
from topodistill.trainer import resolve_device, train

MODEL = Path("data/models/student.pt")
METRICS = Path("metrics/distill.json")
CURVES = Path("plots/student")
TOP_LISTS = Path("data/rank/teacher_top.npy")


def main() -> None:
    params = load_section("distill")
    seed = params.seed if params.seed is not None else load_seed()
    device = resolve_device(load_device_name())
    data = load_prepared("data/prepared")
    teacher = load_model("data/models/teacher.pt", data.train).to(device).eval()
    with np.load("data/clusters/clusters.npz") as npz:
        clusters = {k: torch.from_numpy(npz[k]).to(device) for k in
                    ("user_groups", "user_centroids", "item_groups", "item_centroids")}
        normalized = bool(npz["normalized"])
    seed_everything(seed)
    student = build_model(params.model, data.num_users, data.num_items, params.student_dim,
                          params.init_std, data.train, params.num_layers)
    with torch.no_grad():
        teacher_users, teacher_items = teacher.representations()
    generator = torch.Generator(device=device).manual_seed(seed)
    distiller = build_distiller(params, teacher_users, teacher_items, clusters, normalized, generator)
    if not TOP_LISTS.exists():
        raise DataError(f"{TOP_LISTS}: not found; it is written by the `rank` stage (dvc repro)")
    top_lists = torch.from_numpy(np.load(TOP_LISTS))
    ranking = build_ranking(params, top_lists, data.train, data.num_items)
    evaluator = RankingEvaluator(data.train, data.valid, data.test, data.num_users, data.num_items,
                                 [50], device=device)
    logger = CurveLogger(CURVES)
    print(f"distill: {params.model} student, method {params.method}, ranking {params.ranking}, "
          f"student dim {params.student_dim} "
          f"(teacher {teacher_users.shape[1]}), {params.epochs} epochs on {device}")
    result = train(student, data.train, data.num_items, params, seed, device, distiller=distiller,
                   distill_weight=params.distill_weight, evaluator=evaluator, on_epoch=logger,
                   desc=f"student[{params.method}]", ranking=ranking)
    logger.close()
    with atomic_path(MODEL) as tmp:
        save_model(student, tmp)
    write_json(METRICS, {"method": params.method, "ranking": params.ranking, "model": params.model,
                         "student_dim": params.student_dim,
                         **result.summary(str(device))})


if __name__ == "__main__":
    run_stage("distill", main, [str(MODEL), str(METRICS), str(CURVES)])
