"""Stream generators shared by the tests (no downloads: everything is generated)."""

from __future__ import annotations

import numpy as np


def mixture(n, means, scales, weights=None, seed=0, dtype=np.float64):
    """``n`` samples of a Gaussian mixture with isotropic components, and their labels."""
    rng = np.random.default_rng(seed)
    means = np.asarray(means, dtype=float)
    K, D = means.shape
    weights = np.full(K, 1.0 / K) if weights is None else np.asarray(weights)
    y = rng.choice(K, size=n, p=weights)
    X = means[y] + rng.standard_normal((n, D)) * np.asarray(scales, dtype=float)[y, None]
    return X.astype(dtype), y


def blobs(n=600, K=3, D=4, sep=6.0, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed + 1000)
    means = rng.normal(0, sep, (K, D))
    return mixture(n, means, np.linspace(0.7, 1.3, K), seed=seed, dtype=dtype) + (means,)


def state_snapshot(model) -> dict:
    """Deep copy of everything a model holds, for exact before/after comparison."""
    import pickle

    return pickle.loads(pickle.dumps(model.__dict__))


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        va, vb = a[k], b[k]
        if k == "_state":
            for f in va.__dataclass_fields__:
                np.testing.assert_array_equal(getattr(va, f), getattr(vb, f), err_msg=f)
        elif k == "_rng":
            sa, sb = va.get_state(), vb.get_state()
            assert sa[0] == sb[0] and np.array_equal(sa[1], sb[1]) and sa[2:] == sb[2:]
        elif isinstance(va, np.ndarray):
            np.testing.assert_array_equal(va, vb, err_msg=k)
        else:
            assert va == vb or (va != va and vb != vb), k
