"""Stage `distill`: train the compact student with BPR + distill_weight · L_distill
(params: distill, seed, device). distill.method: none | ftd | htd.

Outputs data/models/student.pt, metrics/distill.json and training curves in plots/student/.
"""

from pathlib import Path

import numpy as np
import torch

from topodistill.cli import CurveLogger, run_stage, seed_everything
from topodistill.data import load_prepared
from topodistill.distillers import build_distiller
from topodistill.io import atomic_path, write_json
from topodistill.metrics import RankingEvaluator
from topodistill.models import build_model, load_model
from topodistill.params import load_device_name, load_section, load_seed
from topodistill.trainer import resolve_device, train

MODEL = Path("data/models/student.pt")
METRICS = Path("metrics/distill.json")
CURVES = Path("plots/student")


def main() -> None:
    params = load_section("distill")
    seed = params.seed if params.seed is not None else load_seed()
    device = resolve_device(load_device_name())
    data = load_prepared("data/prepared")
    teacher = load_model("data/models/teacher.pt", "bpr").to(device)
    with np.load("data/clusters/clusters.npz") as npz:
        clusters = {k: torch.from_numpy(npz[k]).to(device) for k in
                    ("user_groups", "user_centroids", "item_groups", "item_centroids")}
        normalized = bool(npz["normalized"])
    seed_everything(seed)
    student = build_model(params.model, data.num_users, data.num_items, params.student_dim,
                          params.init_std)
    teacher_users, teacher_items = (t.detach() for t in teacher.representations())
    generator = torch.Generator(device=device).manual_seed(seed)
    distiller = build_distiller(params, teacher_users, teacher_items, clusters, normalized, generator)
    evaluator = RankingEvaluator(data.train, data.valid, data.test, data.num_users, data.num_items,
                                 [50], device=device)
    logger = CurveLogger(CURVES)
    print(f"distill: method {params.method}, student dim {params.student_dim} "
          f"(teacher {teacher_users.shape[1]}), {params.epochs} epochs on {device}")
    result = train(student, data.train, data.num_items, params, seed, device, distiller=distiller,
                   distill_weight=params.distill_weight, evaluator=evaluator, on_epoch=logger,
                   desc=f"student[{params.method}]")
    logger.close()
    with atomic_path(MODEL) as tmp:
        torch.save({k: v.cpu() for k, v in student.state_dict().items()}, tmp)
    write_json(METRICS, {"method": params.method, "student_dim": params.student_dim,
                         **result.summary(str(device))})


if __name__ == "__main__":
    run_stage("distill", main, [str(MODEL), str(METRICS), str(CURVES)])
