"""Helpers for tests that run the real stage scripts / dvc in a temporary project copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["stages", "topodistill", "dvc.yaml", "params.yaml", "pyproject.toml"]


def tiny_params(**overrides) -> dict:
    """The project's params.yaml switched to the synthetic dataset, tiny models and 2 epochs."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["fetch"]["dataset"] = "synthetic"
    params["fetch"]["synthetic"].update({"num_users": 120, "num_items": 150,
                                         "interactions_per_user": 15})
    params["data"]["path"] = "data/raw/synthetic.tsv"
    for section in ("teacher", "distill"):
        params[section].update({"epochs": 2, "eval_every": 1, "batch_size": 256})
    params["teacher"]["dim"] = 16
    params["distill"]["student_dim"] = 4
    params["cluster"]["num_groups"] = 4
    params["rank"]["top_n"] = 20
    params["distill"]["rrd"]["num_interesting"] = 10  # <= rank.top_n on tiny data
    for dotted, value in overrides.items():
        node = params
        keys = dotted.split(".")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return params


def make_project(path: Path, params: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, path / name)
    (path / "params.yaml").write_text(yaml.safe_dump(params or tiny_params(), sort_keys=False))
    return path


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = str(Path(sys.executable).parent) + os.pathsep + e.get("PATH", "")
    e["PYTHONPATH"] = ""
    e.update({"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
              "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
              "DVC_NO_ANALYTICS": "1", "TQDM_DISABLE": "1"})
    return e


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def stage(name: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", f"stages.{name}"], cwd, check)
