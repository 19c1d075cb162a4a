"""Where an epoch's time goes: torch.profiler over one training epoch on CiteULike.

    python benchmarks/profile_epoch.py --method htd --epoch 95     # a late (one-hot) HTD epoch
    python benchmarks/profile_epoch.py --method htd --epoch 0      # an early (soft) HTD epoch
    python benchmarks/profile_epoch.py --method ftd
    python benchmarks/profile_epoch.py --method teacher
    python benchmarks/profile_epoch.py --method teacher --model lightgcn

Trains a teacher for ``--teacher-epochs`` epochs (only its shape matters here), then profiles
epoch ``--epoch`` of a 100-epoch student schedule (the Gumbel temperature follows it) and prints
the operators by total CPU time. This is the profile that guided the performance work
(benchmarks/perf.py measures the results).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from topodistill.data import prepare, read_interactions  # noqa: E402
from topodistill.distillers import build_distiller  # noqa: E402
from topodistill.models import build_model  # noqa: E402
from topodistill.params import section_from_dict  # noqa: E402
from topodistill.trainer import train  # noqa: E402

CITEULIKE = ROOT.parent / "shared" / "datasets" / "citeulike" / "interactions.tsv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", choices=["teacher", "none", "ftd", "htd"], default="htd")
    ap.add_argument("--epoch", type=int, default=95, help="epoch of the 100-epoch schedule to profile")
    ap.add_argument("--teacher-epochs", type=int, default=2)
    ap.add_argument("--model", choices=["bpr", "lightgcn"], default="bpr",
                    help="base model of the teacher and the student")
    ap.add_argument("--citeulike", type=Path, default=CITEULIKE)
    ap.add_argument("--rows", type=int, default=25, help="operators to print")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    frame = read_interactions(args.citeulike)
    data = prepare(frame, section_from_dict("data", {"path": str(args.citeulike), "split": "predefined",
                                                     "rating_threshold": None}), 0)
    torch.manual_seed(0)
    teacher = build_model(args.model, data.num_users, data.num_items, 200, 0.01, data.train)
    cpu = torch.device("cpu")
    if args.method == "teacher":
        model, distiller, params = teacher, None, section_from_dict("teacher", {"epochs": 1})
        first = 0
    else:
        train(teacher, data.train, data.num_items,
              section_from_dict("teacher", {"epochs": args.teacher_epochs, "eval_every": 1000}), 0, cpu)
        tu, ti = (t.detach() for t in teacher.representations())
        g = torch.Generator().manual_seed(0)
        k = 30
        clusters = {"user_groups": torch.randint(0, k, (data.num_users,), generator=g),
                    "user_centroids": torch.randn(k, 200, generator=g),
                    "item_groups": torch.randint(0, k, (data.num_items,), generator=g),
                    "item_centroids": torch.randn(k, 200, generator=g)}
        params = section_from_dict("distill", {"method": args.method, "epochs": args.epoch + 1,
                                               "eval_every": 1000})
        model = build_model(args.model, data.num_users, data.num_items, 20, 0.01, data.train)
        distiller = build_distiller(params, tu, ti, clusters, True, torch.Generator().manual_seed(0))
        # the schedule is 100 epochs: run only epoch args.epoch with progress args.epoch / 100
        params = section_from_dict("distill", {"method": args.method, "epochs": 100, "eval_every": 1000})
        first = args.epoch

    class Stop(Exception):
        pass

    def stop(record):
        raise Stop

    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        try:
            train(model, data.train, data.num_items, params, 0, cpu, distiller=distiller,
                  distill_weight=getattr(params, "distill_weight", 0.0), desc="profile",
                  first_epoch=first, on_epoch=stop)
        except Stop:
            pass
    print(f"{args.method} epoch {args.epoch}: {time.perf_counter() - t0:.2f} s under the profiler")
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=args.rows))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
