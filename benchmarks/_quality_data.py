"""The quality benchmark's datasets (``benchmarks.quality``): labelled data, the held-out
split (20 %, fixed by the seed) and the PCA fitted on the training split.

- ``blobs``: workload 1's generator (:func:`benchmarks._common.overlapping_clusters`, 64
  overlapping clusters in 64-d, seed 0), fewer rows; the labels are the clusters drawn.
- ``digits``: scikit-learn's 8x8 digits (1,797 images, 10 classes), PCA to 16.
- ``text``: 10,000 Debian package synopses labelled by archive section (20 sections),
  all-MiniLM-L6-v2 embeddings (384-d, float16 on disk; see
  :mod:`benchmarks.make_text_embeddings`), PCA to 32.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._common import overlapping_clusters

TEXT_EMBEDDINGS = Path(__file__).resolve().parent / "data" / "debian_descriptions_minilm.npz"
TEST_FRACTION = 0.2


@dataclass
class Dataset:
    """Rows and true labels, with what the benchmark fits on them."""

    name: str
    title: str
    X: np.ndarray  # (n, d) float64, before any PCA
    y: np.ndarray  # (n,) int
    n_components: int  # K of every mixture (and of MiniBatchKMeans)
    covariance_type: str
    batch: int  # the stream's batch size
    pca: int | None = None  # PCA dimension fitted on the training split (None: none)
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        n, d = self.X.shape
        pca = f", PCA to {self.pca} (fitted on the training split)" if self.pca else ""
        return (f"{self.title}: {n:,} rows x {d}{pca}, {len(np.unique(self.y))} classes; "
                f"K = {self.n_components} `{self.covariance_type}`, batches of {self.batch:,}")


@dataclass
class Split:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def labelled_clusters(n: int, k: int, d: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Workload 1's data (``overlapping_clusters(k, d, seed=seed)`` sampled with
    ``default_rng(seed)``, the same draws as ``Clusters.sample``) with its labels."""
    clusters = overlapping_clusters(k, d, seed=seed)
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=clusters.weights)
    Z = rng.standard_normal((n, d)) * clusters.scales[y]
    return clusters.centres[y] + Z, y


def blobs(smoke: bool) -> Dataset:
    if smoke:
        n, k, d, batch = 3_000, 8, 8, 256
    else:
        n, k, d, batch = 30_000, 64, 64, 1024
    X, y = labelled_clusters(n, k, d, seed=0)
    return Dataset("blobs", "workload 1's blobs", X, y, k, "diag", batch,
                   info={"generator": f"overlapping_clusters({k}, {d}, seed=0)"})


def digits(smoke: bool) -> Dataset:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)  # small already: the same in smoke mode
    return Dataset("digits", "digits PCA-16", X.astype(np.float64), y.astype(np.int64), 10,
                   "diag", 128, pca=16)


def text(smoke: bool, path: Path = TEXT_EMBEDDINGS) -> Dataset:
    with np.load(path) as z:
        X = z["embeddings"].astype(np.float64)
        y = z["labels"].astype(np.int64)
        sections = [str(s) for s in z["sections"]]
        meta = json.loads(str(z["meta"]))
    if smoke:  # a fixed subset, every section kept
        keep = np.sort(np.random.default_rng(0).choice(len(y), size=2_000, replace=False))
        X, y = X[keep], y[keep]
    return Dataset(
        "text", "Debian package descriptions, all-MiniLM-L6-v2", X, y, 32, "diag", 128,
        pca=32,
        info={"file": path.name, "sections": sections,
              "rows_with_a_duplicate": meta.get("rows_with_a_duplicate"),
              "model": meta.get("model")},
    )


LOADERS = {"blobs": blobs, "digits": digits, "text": text}


def split(ds: Dataset, seed: int) -> Split:
    """The held-out 20 % drawn by ``default_rng(seed)``; the PCA (if any) fitted on the
    training rows only."""
    n = len(ds.y)
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(TEST_FRACTION * n))
    test, train = perm[:n_test], perm[n_test:]
    X_train, X_test = ds.X[train], ds.X[test]
    if ds.pca:
        from sklearn.decomposition import PCA

        pca = PCA(ds.pca, random_state=seed).fit(X_train)
        X_train, X_test = pca.transform(X_train), pca.transform(X_test)
    return Split(np.ascontiguousarray(X_train), ds.y[train], np.ascontiguousarray(X_test),
                 ds.y[test])
