"""Stage `fetch`: obtain the raw interactions into data/raw/ (params: fetch, seed).

ml-100k: MovieLens-100K extracted from the recbole==1.2.1 wheel (sha256-checked);
synthetic: a clustered latent-factor dataset; none: nothing to fetch (prepare reads data.path).
"""

from pathlib import Path

from topodistill.cli import run_stage
from topodistill.fetch import ML100K_PACKAGE, ML100K_SHA256, fetch_ml100k, generate_synthetic
from topodistill.io import atomic_dir, write_json
from topodistill.params import load_section, load_seed

OUT = Path("data/raw")


def main() -> None:
    params = load_section("fetch")
    seed = load_seed()
    with atomic_dir(OUT) as tmp:
        if params.dataset == "ml-100k":
            path = fetch_ml100k(tmp / "ml-100k.inter")
            source = {"dataset": "ml-100k", "file": "data/raw/ml-100k.inter",
                      "from": f"pip download {ML100K_PACKAGE}", "sha256": ML100K_SHA256}
            print(f"fetch: MovieLens-100K -> data/raw/{path.name} (sha256 verified)")
        elif params.dataset == "synthetic":
            frame = generate_synthetic(params.synthetic, seed)
            frame.to_csv(tmp / "synthetic.tsv", sep="\t", index=False)
            source = {"dataset": "synthetic", "file": "data/raw/synthetic.tsv", "rows": len(frame),
                      "seed": seed}
            print(f"fetch: synthetic data, {len(frame)} interactions -> data/raw/synthetic.tsv")
        else:
            source = {"dataset": "none", "note": "prepare reads data.path directly"}
            print("fetch: dataset 'none': nothing to fetch; prepare reads data.path")
        write_json(tmp / "source.json", source)


if __name__ == "__main__":
    run_stage("fetch", main, [str(OUT)])
