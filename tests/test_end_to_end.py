"""End to end: the real `dvc` commands in a temporary git repository, on the synthetic dataset."""

import json
import shutil

import pytest

from helpers import make_project, run, tiny_params


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    path = make_project(tmp_path_factory.mktemp("e2e") / "repo",
                        tiny_params(**{"distill.method": "none"}))
    run(["git", "init", "-q", "-b", "main"], path)
    run(["dvc", "init", "-q"], path)
    run(["git", "add", "-A"], path)
    run(["git", "commit", "-q", "-m", "project"], path)
    return path


def test_repro_then_experiment_then_diff(repo):
    proc = run(["dvc", "repro"], repo)
    for name in ("fetch", "prepare", "teacher", "cluster", "rank", "distill", "evaluate"):
        assert f"Running stage '{name}'" in proc.stdout
    report = json.loads((repo / "metrics" / "evaluate.json").read_text())
    for model in ("teacher", "student", "popularity"):
        for split in ("valid", "test"):
            assert 0.0 <= report[model][split]["recall@50"] <= 1.0
    assert report["size"]["student_to_teacher_ratio"] == pytest.approx(4 / 16)
    data = json.loads((repo / "metrics" / "data.json").read_text())
    assert data["users"] == 120 and data["test"] == 120
    assert (repo / "plots" / "cluster.png").stat().st_size > 1000
    assert (repo / "plots" / "student" / "plots" / "metrics" / "train" / "loss.tsv").exists()
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "baseline run"], repo)

    # a second repro with nothing changed runs nothing
    again = run(["dvc", "repro"], repo)
    assert "Running stage" not in again.stdout

    run(["dvc", "exp", "run", "-S", "distill.method=htd", "-S", "distill.ranking=rrd"], repo)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    text = json.dumps(shown)
    assert '"htd"' in text and '"rrd"' in text and "metrics/evaluate.json" in text
    assert (repo / "plots" / "student" / "plots" / "metrics" / "train" / "ranking_loss.tsv").exists()

    diff = run(["dvc", "metrics", "diff", "--json"], repo)
    changed = json.loads(diff.stdout)
    assert "metrics/evaluate.json" in changed
    assert any("student" in key for key in changed["metrics/evaluate.json"])
    # the teacher did not change: only distill and evaluate re-ran in the experiment
    assert not any(key.startswith("teacher.") for key in changed["metrics/evaluate.json"])

    plots = run(["dvc", "plots", "show", "--json"], repo)
    assert "plots/student/plots/metrics" in plots.stdout
