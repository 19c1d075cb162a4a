"""Helpers shared by the thin stage scripts: error reporting, seeding, device, DVCLive logging."""

from __future__ import annotations

import os
import random
import sys
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import TopoDistillError
from .io import remove_outputs


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def thread_count() -> int:
    """CPU threads the stages use: ``TOPODISTILL_THREADS``, else the machine's core count."""
    return int(os.environ.get("TOPODISTILL_THREADS") or os.cpu_count() or 1)


def run_stage(name: str, main: Callable[[], None], outputs: list[str]) -> None:
    """Run a stage's ``main``; on any error remove its outputs, print a clear message, exit non-zero.

    Errors caused by input (:class:`TopoDistillError`) are printed without a traceback.
    """
    torch.set_num_threads(thread_count())
    try:
        main()
    except TopoDistillError as exc:
        remove_outputs(*outputs)
        print(f"error [{name}]: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        remove_outputs(*outputs)
        print(f"error [{name}]: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception:
        remove_outputs(*outputs)
        traceback.print_exc()
        print(f"error [{name}]: unexpected failure (traceback above); outputs removed", file=sys.stderr)
        sys.exit(1)


class CurveLogger:
    """Per-epoch training curves through DVCLive (``dir``/plots/metrics/*.tsv, ``dir``/metrics.json).

    Loss terms are logged every epoch under ``train/``, validation metrics under ``valid/`` at the
    epochs where they are computed. DVCLive's own dvc.yaml and experiment saving are turned off:
    the curves are declared in the project's dvc.yaml.
    """

    KEEP = ("loss", "base_loss", "distill_loss", "topology", "assignment", "temperature",
            "one_hot_fraction", "ranking_loss", "epoch_seconds")

    def __init__(self, directory: str | Path):
        from dvclive import Live

        remove_outputs(directory)
        self.live = Live(dir=str(directory), save_dvc_exp=False, dvcyaml=False, report=None)

    def __call__(self, record: dict) -> None:
        self.live.step = record["epoch"]
        for key in self.KEEP:
            if key in record:
                self.live.log_metric(f"train/{key}", float(record[key]), plot=True)
        for key, value in record.items():
            if key.startswith("valid_"):
                self.live.log_metric(f"valid/{key[len('valid_'):]}", float(value), plot=True)
        self.live.make_summary()

    def close(self) -> None:
        self.live.end()
