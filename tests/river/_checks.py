"""river's own estimator checks (``river.checks``) with offline datasets.

river feeds an anomaly detector its ``CreditCard`` dataset, a 150 MB download; where it is
not on disk (no network here), :func:`credit_card_like` stands in: the same 30 feature
names and shape (PCA-like ``V1``-``V28``, an increasing ``Time``, a log-normal
``Amount``) with a few frauds far out. river gives a clusterer no dataset at all, so its
dataset checks (learn, pickle, shuffled features, purity, clone independence, bounded
memory) never run on one; :func:`blob_rows` gives it three blobs so that they do.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .._data import mixture

CREDIT_CARD_FEATURES = ["Time", *(f"V{i}" for i in range(1, 29)), "Amount"]
BLOB_MEANS = [[-6.0, 0.0], [6.0, 0.0], [0.0, 8.0]]


def credit_card_like(n: int, seed: int = 0) -> list[tuple[dict, int]]:
    """``n`` rows shaped as river's ``CreditCard``; rows 150, 350, ... (one in 200) are
    frauds: their principal components are 6 times wider."""
    rng = np.random.default_rng(seed)
    scales = np.geomspace(2.0, 0.3, 28)
    V = rng.standard_normal((n, 28)) * scales
    fraud = np.zeros(n, dtype=int)
    fraud[150::200] = 1
    V[fraud == 1] *= 6.0
    time = np.sort(rng.uniform(0, 0.7 * n, n))
    amount = rng.lognormal(3.0, 1.2, n)
    rows = np.column_stack([time, V, amount]).tolist()
    return [(dict(zip(CREDIT_CARD_FEATURES, r, strict=True)), int(y))
            for r, y in zip(rows, fraud, strict=True)]


def blob_rows(n: int, seed: int = 0, n_features: int = 2) -> list[tuple[dict, int]]:
    """``n`` rows of three well-separated blobs, as ``({"x": .., "y": .., "f2": ..}, label)``:
    :data:`BLOB_MEANS` in ``x`` and ``y``, centred unit noise in the other features."""
    means = np.zeros((3, n_features))
    means[:, :2] = BLOB_MEANS
    X, y = mixture(n, means, [1.0, 1.0, 1.0], seed=seed)
    names = ["x", "y", *(f"f{j}" for j in range(2, n_features))]
    return [(dict(zip(names, row, strict=True)), int(k))
            for row, k in zip(X.tolist(), y, strict=True)]


@contextlib.contextmanager
def offline_datasets(monkeypatch):
    """river's checks with :func:`credit_card_like` for a detector (unless ``CreditCard``
    is downloaded) and :func:`blob_rows` for a clusterer; other models as river has them."""
    from river import base, checks, datasets

    original = checks._yield_datasets
    downloaded = datasets.CreditCard().is_downloaded

    def yield_datasets(model, scale: int = 1):
        if isinstance(model, base.AnomalyDetector) and not downloaded:
            yield credit_card_like(1000 * scale)
        elif isinstance(model, base.Clusterer):
            yield blob_rows(300 * scale, n_features=5)  # (river's checks drop 3)
        else:
            yield from original(model, scale)

    with monkeypatch.context() as m:
        m.setattr(checks, "_yield_datasets", yield_datasets)
        yield


def run_checks(model) -> tuple[list[str], list[str]]:
    """Every check of ``river.checks.yield_checks(model)`` on a deep copy of ``model``, as
    river's own test suite runs them (skipping ``model._unit_test_skips()``): ``(passed,
    failed)`` check names (a failure with its exception)."""
    import copy

    from river import checks

    passed, failed = [], []
    for check in checks.yield_checks(model):
        if check.__name__ in model._unit_test_skips():
            continue
        try:
            check(copy.deepcopy(model))
        except Exception as exc:  # noqa: BLE001 - reported by name
            failed.append(f"{check.__name__}: {type(exc).__name__}: {exc}"[:500])
        else:
            passed.append(check.__name__)
    return passed, failed
