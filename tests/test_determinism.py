"""The same params on CPU give the same metrics; another seed gives other metrics."""

import json

from helpers import make_project, stage, tiny_params

STAGES = ("fetch", "prepare", "teacher", "cluster", "distill", "evaluate")


def run_all(path):
    for name in STAGES:
        stage(name, path)
    return json.loads((path / "metrics" / "evaluate.json").read_text())


def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path):
    params = tiny_params(**{"distill.method": "htd", "device": "cpu"})
    a = run_all(make_project(tmp_path / "a", params))
    b = run_all(make_project(tmp_path / "b", params))
    assert a == b
    c = run_all(make_project(tmp_path / "c", tiny_params(**{"distill.method": "htd", "device": "cpu",
                                                              "seed": 1})))
    assert c["student"] != a["student"]
