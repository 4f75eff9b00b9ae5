"""Input checks of the estimator's hot path: its hyper-parameters (cached while unchanged), a
batch, and its sample weights."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from .._backends.check_kernels import all_finite
from .._math import array_api as _array_api
from .._math.array_api import to_numpy


def check_sample_weight(sample_weight: Any, X: Any, xp: Any) -> Any:
    """``sample_weight`` as an (n,) array in ``X``'s dtype and namespace (ones for None);
    a clear ``ValueError`` for a wrong shape, non-real, NaN/inf or negative weights, and for
    weights too large for the arithmetic: a sum that overflows float64, or a weight or a
    sum of the weights that overflows the data's dtype (float32)."""
    n = X.shape[0]
    if sample_weight is None:
        return xp.ones(n, dtype=X.dtype, device=_array_api.device(X))
    sw = sample_weight
    if not hasattr(sw, "__array_namespace__") and not isinstance(sw, np.ndarray):
        sw = np.asarray(sw)
    sw_np = to_numpy(sw)
    if sw_np.ndim == 0:
        sw_np = np.full(n, float(sw_np))
    if sw_np.ndim != 1 or sw_np.shape[0] != n:
        raise ValueError(
            f"sample_weight must have shape ({n},), got {tuple(sw_np.shape)}."
        )
    if not np.issubdtype(sw_np.dtype, np.number) or np.iscomplexobj(sw_np):
        raise ValueError("sample_weight must be real numbers.")
    sw_np = sw_np.astype(np.float64)
    if not np.all(np.isfinite(sw_np)):
        raise ValueError("sample_weight contains NaN or infinity.")
    if np.any(sw_np < 0):
        raise ValueError("sample_weight must be non-negative.")
    with np.errstate(over="ignore"):
        total = float(np.sum(sw_np))
        dtype = _host_dtype(X.dtype)
        cast = sw_np.astype(dtype) if dtype != sw_np.dtype else sw_np
    if not np.isfinite(total):
        raise ValueError(
            f"sample_weight sums to {total} (its {n} weights overflow float64; the largest "
            f"is {float(sw_np.max()):.3g}): rescale the weights."
        )
    if cast is not sw_np and not np.all(np.isfinite(cast)):
        raise ValueError(
            f"sample_weight overflows {dtype.name}, the data's dtype (the largest "
            f"weight is {float(sw_np.max()):.3g}): rescale the weights."
        )
    limit = float(np.finfo(dtype).max) / 2 if dtype.kind == "f" else np.inf
    if total > limit:  # the batch's masses, summed in the data's dtype, would overflow it
        raise ValueError(
            f"sample_weight sums to {total:.3g}, more than {dtype.name} (the data's dtype) "
            f"can sum (at most {limit:.3g}): rescale the weights, or pass the rows as "
            "float64."
        )
    return _array_api.asarray_like(sw_np, X, xp, dtype=X.dtype)


def _host_dtype(dtype: Any) -> np.dtype:
    """The NumPy dtype of an array-API dtype (``torch.float32`` -> float32)."""
    try:
        return np.dtype(dtype)
    except TypeError:
        try:
            return np.dtype(str(dtype).rsplit(".", 1)[-1])
        except TypeError:
            return np.dtype(np.float64)


def is_plain_valid_batch(X: Any, model: Any) -> bool:
    """Whether ``X`` needs none of ``validate_data``'s conversions or checks (a hot-path
    shortcut for the common case of a fitted model fed float NumPy batches; anything else,
    and any doubt about finiteness, goes through ``validate_data`` and its messages)."""
    if type(X) is not np.ndarray or X.ndim != 2 or X.dtype not in _FLOAT_DTYPES:
        return False
    if X.shape[0] < 1 or X.shape[1] != getattr(model, "n_features_in_", -1):
        return False
    if hasattr(model, "feature_names_in_"):
        return False  # validate_data warns about the missing names
    from sklearn import get_config

    config = get_config()
    if config["array_api_dispatch"]:
        return False
    if config["assume_finite"]:
        return True
    return all_finite(X)  # NaN or inf: validate_data raises its message


_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


#: estimator -> the key of its hyper-parameters last found valid. Kept outside the
#: estimators, so that their ``__dict__`` (pickles, ``clone``, a failed call's "nothing
#: changed") holds only what it held before.
_valid_hyperparameters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def validate_hyperparameters(model: Any, check: Callable[[], None]) -> None:
    """``check()`` (every hyper-parameter against the table), unless the values and types of
    ``model``'s parameters are those last found valid: a ~1 us comparison instead of ~20 us
    of checks on every ``partial_fit``. The key holds ``model._validated_params`` by value
    and ``model._identity_params`` by type and identity (an array is not hashed)."""
    key = tuple([(type(v), v) for v in (getattr(model, a, None)
                                         for a in model._validated_params)]
                + [(type(v), id(v)) for v in (getattr(model, a, None)
                                              for a in model._identity_params)])
    try:
        if key == _valid_hyperparameters.get(model):
            return
    except TypeError:  # an unhashable (subclass) estimator: checked every time
        check()
        return
    check()
    _valid_hyperparameters[model] = key
