"""Stage `evaluate`: full-ranking Recall/NDCG/Precision@K on valid and test for the teacher, the
student and a popularity baseline, plus model sizes (params: evaluate, device).

Outputs metrics/evaluate.json.
"""

from pathlib import Path

import torch

from topodistill.cli import run_stage
from topodistill.data import load_prepared
from topodistill.io import write_json
from topodistill.metrics import RankingEvaluator, popularity_tables
from topodistill.models import load_model
from topodistill.params import load_device_name, load_section
from topodistill.trainer import resolve_device

METRICS = Path("metrics/evaluate.json")


def main() -> None:
    params = load_section("evaluate")
    device = resolve_device(load_device_name())
    data = load_prepared("data/prepared")
    teacher = load_model("data/models/teacher.pt", data.train).eval()
    student = load_model("data/models/student.pt", data.train).eval()
    evaluators = {
        "valid": RankingEvaluator(data.train, data.valid, data.test, data.num_users, data.num_items,
                                  params.ks, params.chunk_users, device),
        "test": RankingEvaluator(data.train, data.test, data.valid, data.num_users, data.num_items,
                                 params.ks, params.chunk_users, device),
    }
    with torch.no_grad():
        tables = {"teacher": teacher.representations(), "student": student.representations(),
                  "popularity": popularity_tables(data.train, data.num_users, data.num_items)}
    report: dict = {}
    for name, (users, items) in tables.items():
        report[name] = {split: ev.evaluate(users, items, progress=True, desc=f"{name}/{split}")
                        for split, ev in evaluators.items()}
    report["size"] = {
        "teacher_parameters": teacher.num_parameters(), "teacher_bytes": teacher.num_bytes(),
        "student_parameters": student.num_parameters(), "student_bytes": student.num_bytes(),
        "student_to_teacher_ratio": student.num_parameters() / teacher.num_parameters(),
    }
    report["eval_users"] = {split: ev.num_eval_users for split, ev in evaluators.items()}
    write_json(METRICS, report)
    for name in tables:
        t = report[name]["test"]
        print(f"evaluate: {name:10s} test Recall@50 {t['recall@50']:.4f}  NDCG@50 {t['ndcg@50']:.4f}"
              if "recall@50" in t else f"evaluate: {name}: {t}")


if __name__ == "__main__":
    run_stage("evaluate", main, [str(METRICS)])
