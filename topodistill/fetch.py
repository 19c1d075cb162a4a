"""Obtaining raw data: MovieLens-100K from the RecBole wheel, or a synthetic clustered dataset."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError
from .io import atomic_path
from .params import SyntheticParams

ML100K_PACKAGE = "recbole==1.2.1"
ML100K_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
ML100K_SHA256 = "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_ml100k(dest: str | Path) -> Path:
    """Extract MovieLens-100K (RecBole atomic format) from the ``recbole`` wheel into ``dest``.

    The wheel is downloaded with ``pip download --no-deps`` into a temporary directory; recbole is
    never installed or imported. The extracted file is checked against a pinned sha256.
    """
    dest = Path(dest)
    hint = ("To use a local copy instead, put the file anywhere and run e.g. "
            "`dvc exp run -S fetch.dataset=none -S data.path=/path/to/ml-100k.inter` "
            "(or edit data.path in params.yaml).")
    with tempfile.TemporaryDirectory(prefix="topodistill-fetch-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--disable-pip-version-check", ML100K_PACKAGE, "-d", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DataError(f"could not download {ML100K_PACKAGE} for MovieLens-100K: {exc}. {hint}") from None
        wheels = list(Path(tmp).glob("recbole-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise DataError(f"could not download {ML100K_PACKAGE} for MovieLens-100K "
                            f"(pip said: {proc.stderr.strip()[-500:] or 'nothing'}). {hint}")
        try:
            with zipfile.ZipFile(wheels[0]) as zf:
                payload = zf.read(ML100K_MEMBER)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise DataError(f"{wheels[0].name}: cannot extract {ML100K_MEMBER}: {exc}. {hint}") from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != ML100K_SHA256:
        raise DataError(f"{ML100K_MEMBER}: sha256 {digest} does not match the pinned "
                        f"{ML100K_SHA256}. {hint}")
    with atomic_path(dest) as tmp_path:
        tmp_path.write_bytes(payload)
    return dest


def generate_synthetic(params: SyntheticParams, seed: int) -> pd.DataFrame:
    """Implicit feedback from clustered latent factors.

    Users and items are drawn around ``num_clusters`` shared centres; each user picks
    ``interactions_per_user`` distinct items with probability ∝ exp(u·v / temperature)
    (Gumbel top-k, vectorised, chunked over users). Tokens are strings (``u_12``, ``i_7``), all
    ratings are 5 and timestamps increase, so every split mode applies.
    """
    rng = np.random.default_rng(seed)
    d, c = params.latent_dim, params.num_clusters
    centres = rng.normal(size=(c, d)) / np.sqrt(d)
    ucl = rng.integers(0, c, params.num_users)
    icl = rng.integers(0, c, params.num_items)
    spread = params.cluster_spread / np.sqrt(d)
    U = centres[ucl] + rng.normal(scale=spread, size=(params.num_users, d))
    V = centres[icl] + rng.normal(scale=spread, size=(params.num_items, d))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    k = params.interactions_per_user
    chunk = max(1, int(2e7 // params.num_items))
    picks = []
    for start in range(0, params.num_users, chunk):
        logits = U[start:start + chunk] @ V.T / params.temperature
        logits += rng.gumbel(size=logits.shape)
        picks.append(np.argpartition(-logits, k - 1, axis=1)[:, :k])
    items = np.concatenate(picks, axis=0)
    users = np.repeat(np.arange(params.num_users), k)
    items = items.reshape(-1)
    n = len(users)
    return pd.DataFrame({
        "user_id": np.char.add("u_", users.astype(str)),
        "item_id": np.char.add("i_", items.astype(str)),
        "rating": np.full(n, 5.0),
        "timestamp": rng.permutation(n).astype(np.int64) + 1_000_000_000,
    })
