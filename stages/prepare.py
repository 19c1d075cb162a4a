"""Stage `prepare`: read data.path, keep implicit positives, split, remap ids (params: data, seed).

Outputs data/prepared/ (train/valid/test.tsv, users.tsv/items.tsv id maps, meta.json) and
metrics/data.json.
"""

from pathlib import Path

from topodistill.cli import run_stage
from topodistill.data import prepare, read_interactions, save_prepared
from topodistill.io import write_json
from topodistill.params import load_section, load_seed

OUT = Path("data/prepared")
METRICS = Path("metrics/data.json")


def main() -> None:
    params = load_section("data")
    seed = load_seed()
    frame = read_interactions(params.path)
    data = prepare(frame, params, seed, source=params.path)
    save_prepared(data, OUT)
    write_json(METRICS, {"source": params.path, "split": params.split, **data.stats})
    s = data.stats
    print(f"prepare: {s['users']} users, {s['items']} items, train {s['train']}, valid {s['valid']}, "
          f"test {s['test']}, density {s['density']:.4f}, duplicates collapsed {s['duplicates_collapsed']}")


if __name__ == "__main__":
    run_stage("prepare", main, [str(OUT), str(METRICS)])
