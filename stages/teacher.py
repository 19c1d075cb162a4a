"""Stage `teacher`: train the large teacher, BPR-MF or LightGCN (params: teacher, seed, device).

Outputs data/models/teacher.pt (weights, model name and configuration), metrics/teacher.json and the training curves in
plots/teacher/ (DVCLive).
"""

from pathlib import Path

from topodistill.cli import CurveLogger, run_stage, seed_everything
from topodistill.data import load_prepared
from topodistill.io import atomic_path, write_json
from topodistill.metrics import RankingEvaluator
from topodistill.models import build_model, save_model
from topodistill.params import load_device_name, load_section, load_seed
from topodistill.trainer import resolve_device, train

MODEL = Path("data/models/teacher.pt")
METRICS = Path("metrics/teacher.json")
CURVES = Path("plots/teacher")


def main() -> None:
    params = load_section("teacher")
    seed = load_seed()
    device = resolve_device(load_device_name())
    data = load_prepared("data/prepared")
    seed_everything(seed)
    model = build_model(params.model, data.num_users, data.num_items, params.dim, params.init_std,
                        data.train, params.num_layers)
    evaluator = RankingEvaluator(data.train, data.valid, data.test, data.num_users, data.num_items,
                                 [50], device=device)
    logger = CurveLogger(CURVES)
    print(f"teacher: {params.model} dim {params.dim}, {params.epochs} epochs on {device}")
    result = train(model, data.train, data.num_items, params, seed, device, evaluator=evaluator,
                   on_epoch=logger, desc="teacher")
    logger.close()
    with atomic_path(MODEL) as tmp:
        save_model(model, tmp)
    write_json(METRICS, result.summary(str(device)))


if __name__ == "__main__":
    run_stage("teacher", main, [str(MODEL), str(METRICS), str(CURVES)])
