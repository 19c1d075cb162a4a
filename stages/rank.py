"""Stage `rank`: the teacher's top-N unobserved items of every user, best first, for ranking
distillation (RD, RRD) (params: rank). Computed once and cached by DVC.

Outputs data/rank/teacher_top.npy ((users, top_n) int64) and metrics/rank.json.
"""

from pathlib import Path

import numpy as np
import torch

from topodistill.cli import run_stage
from topodistill.data import load_prepared
from topodistill.errors import ConfigError
from topodistill.io import atomic_path, write_json
from topodistill.metrics import top_unobserved_items
from topodistill.models import load_model
from topodistill.params import load_section

OUT = Path("data/rank/teacher_top.npy")
METRICS = Path("metrics/rank.json")


def main() -> None:
    params = load_section("rank")
    data = load_prepared("data/prepared")
    teacher = load_model("data/models/teacher.pt", data.train)
    teacher.eval()
    with torch.no_grad():
        users, items = teacher.representations()
    try:
        top = top_unobserved_items(users, items, data.train, params.top_n, params.chunk_users)
    except ValueError as exc:
        raise ConfigError(f"rank.top_n: {exc}") from None
    with atomic_path(OUT) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, top)
    counts = np.bincount(top.ravel(), minlength=data.num_items)
    write_json(METRICS, {"top_n": params.top_n, "users": int(top.shape[0]),
                         "distinct_items": int((counts > 0).sum()),
                         "items_in_most_lists": int(counts.max())})
    print(f"rank: teacher top-{params.top_n} unobserved items of {top.shape[0]} users "
          f"({int((counts > 0).sum())} distinct items)")


if __name__ == "__main__":
    run_stage("rank", main, [str(OUT), str(METRICS)])
