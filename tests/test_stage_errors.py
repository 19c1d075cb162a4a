"""Bad input makes a stage exit non-zero with a message naming the file/line or parameter, and
leaves no output behind."""

import shutil
import sys

import pytest
import yaml

from helpers import make_project, stage, tiny_params


@pytest.fixture(scope="module")
def ready(tmp_path_factory):
    """A tiny project with every stage run once (shared, read-only template)."""
    path = make_project(tmp_path_factory.mktemp("template"))
    for name in ("fetch", "prepare", "teacher", "cluster", "rank"):
        stage(name, path)
    return path


def copy_of(ready, tmp_path, **overrides):
    dst = tmp_path / "proj"
    shutil.copytree(ready, dst)
    (dst / "params.yaml").write_text(yaml.safe_dump(tiny_params(**overrides), sort_keys=False))
    return dst


def assert_fails(proc, *needles):
    assert proc.returncode != 0
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.mark.parametrize("content,needles", [
    (None, ["not found"]),
    ("", ["file is empty"]),
    ("user\titem\trating\n1\t2\t5\n1\t2\n", ["line 3", "rating"]),
    ("user\titem\trating\n1\t2\t5\n1\t2\t5\t9\n", ["line 3"]),
    ("user\titem\trating\n1\t2\tgood\n", ["line 2", "'good'"]),
])
def test_prepare_bad_files(ready, tmp_path, content, needles):
    proj = copy_of(ready, tmp_path, **{"data.path": "input.tsv"})
    if content is not None:
        (proj / "input.tsv").write_text(content)
    proc = stage("prepare", proj, check=False)
    assert_fails(proc, "input.tsv", *needles)
    assert not (proj / "data" / "prepared").exists()
    assert not (proj / "metrics" / "data.json").exists()


@pytest.mark.parametrize("overrides,stage_name,needles,outputs", [
    ({"distill.method": "kd"}, "distill", ["distill.method", "'kd'", "none, fitnet, de, ftd, htd"],
     ["data/models/student.pt", "metrics/distill.json", "plots/student"]),
    ({"distill.student_dim": 0}, "distill", ["distill.student_dim", "> 0"],
     ["data/models/student.pt"]),
    ({"distill.ranking": "rrd", "distill.rrd.num_interesting": 50}, "distill",
     ["distill.rrd.num_interesting = 50", "rank.top_n = 20"], ["data/models/student.pt"]),
    ({"rank.top_n": 1000}, "rank", ["rank.top_n", "1000"],
     ["data/rank/teacher_top.npy", "metrics/rank.json"]),
    ({"cluster.num_groups": 1000}, "cluster", ["cluster.num_groups", "1000"],
     ["data/clusters/clusters.npz", "metrics/cluster.json", "plots/cluster.png"]),
    ({"teacher.init_std": 1e30}, "teacher", ["loss became nan", "epoch 1"],
     ["data/models/teacher.pt", "metrics/teacher.json", "plots/teacher"]),
    ({"data.split": "random"}, "prepare", ["data.split", "'random'"], ["data/prepared"]),
    ({"device": "tpu"}, "teacher", ["device", "'tpu'"], ["data/models/teacher.pt"]),
])
def test_bad_parameters(ready, tmp_path, overrides, stage_name, needles, outputs):
    proj = copy_of(ready, tmp_path, **overrides)
    proc = stage(stage_name, proj, check=False)
    assert_fails(proc, *needles)
    assert proc.returncode == 2
    for out in outputs:
        assert not (proj / out).exists(), out
