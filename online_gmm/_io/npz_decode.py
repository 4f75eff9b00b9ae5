"""Reading the pickle-free model file (format 2): :class:`_Decoder` builds the model from
the JSON header and the array members, checking everything first.

What a crafted file can make :func:`online_gmm.load` allocate is bounded by what its
declared parameters need: each array member's ``.npy`` header (shape, dtype) is read and
compared with the array expected where it is referenced (the state's fields by
``n_components``, ``n_features_in_`` and ``covariance_type``; the warm-up buffer by its rows
held, within :data:`online_gmm._em.warmup.MAX_BUFFER_BYTES`; a random generator's words) before
any of its data is; a member is read once (a second reference is refused), straight into
its array; values hold arrays only where the model has them, and attributes are the
estimator's own (:data:`ATTRIBUTES`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .model_file import _BIT_GENERATORS, _CLASS, _PUBLISHED, _reason, _refuse

#: The attributes a model file may hold besides the parameters, the state, the random
#: generator and the fitted attributes rebuilt from the state: name -> kind.
ATTRIBUTES = {
    "n_steps_": "count", "n_samples_seen_": "count", "n_reseeded_": "count",
    "n_iter_": "count", "n_features_in_": "count", "converged_": "flag",
    "_user_init_pending": "flag", "lower_bound_": "float", "temperature_": "float",
    "feature_names_in_": "names", "_warmup": "warmup", "_sklearn_output_config": "config",
    "lower_bounds_": "floats", "_published_dtype": "dtype",
}
#: Those a fitted model must have (``feature_names_in_`` and ``_warmup`` are optional).
REQUIRED = ("n_steps_", "n_samples_seen_", "n_reseeded_", "n_iter_", "n_features_in_",
            "converged_", "_user_init_pending", "lower_bound_", "temperature_")
#: The parameters that may be arrays.
ARRAY_PARAMS = ("weights_init", "means_init", "precisions_init")
#: Most words of an array inside a random generator's state (MT19937's key).
_RNG_WORDS = 624
#: Bytes read at a time into an array.
_CHUNK = 1 << 20

#: ``expect(shape, dtype)``: None if an array of that shape and dtype may be read here,
#: else why not.
Expect = Callable[[tuple, Any], "str | None"]


class _Mismatch(ValueError):
    pass


def read_member(zf: Any, name: str, path: Any, saved: str, expect: Expect) -> Any:
    """One array member, read with ``allow_pickle=False``: its ``.npy`` header is checked
    (``expect``, and against the zip directory) before any data is allocated, then the data
    is read into the array, to the end (which checks its CRC)."""
    import numpy as np

    fmt = np.lib.format
    try:
        info = zf.getinfo(f"{name}.npy")
    except KeyError:
        raise _refuse(path, saved, f"the file has no member {name!r}") from None
    try:
        with zf.open(info) as fh:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = fmt.read_array_header_2_0(fh)
            else:  # pragma: no cover - read_magic accepts only these
                raise ValueError(f"npy version {version}")
            if dtype.hasobject or dtype.fields or dtype.kind not in "biufc":
                raise ValueError(f"dtype {dtype} is not numbers")
            problem = expect(tuple(shape), dtype)
            if problem:
                raise _Mismatch(problem)
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes != info.file_size - fh.tell():
                raise ValueError(
                    f"shape {shape} of {dtype} does not match the member's size "
                    f"({info.file_size} bytes)"
                )
            arr = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
            raw = memoryview(arr.reshape(-1, order="A").view(np.uint8))
            pos = 0
            while pos < nbytes:
                chunk = fh.read(min(_CHUNK, nbytes - pos))
                if not chunk:
                    raise ValueError("the member's data ends early")
                raw[pos : pos + len(chunk)] = chunk
                pos += len(chunk)
            if fh.read(1):
                raise ValueError("the member's data runs on")
    except _Mismatch as exc:
        raise _refuse(path, saved, str(exc)) from None
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, ValueError, OSError, ...
        raise _refuse(path, saved, f"member {name!r} is damaged ({_reason(exc)})") from None
    return arr


def _describe(shape: tuple, dtype: Any) -> str:
    return f"{dtype}{list(shape)}"


def exactly(what: str, shape: tuple, dtype: Any, why: str) -> Expect:
    import numpy as np

    dtype = np.dtype(dtype)

    def expect(s: tuple, d: Any) -> str | None:
        if d != dtype or s != tuple(shape):
            return f"{what} is {_describe(s, d)}, but {why} need {_describe(shape, dtype)}"
        return None

    return expect


def _rng_words(shape: tuple, dtype: Any) -> str | None:
    if len(shape) != 1 or shape[0] > _RNG_WORDS or dtype.kind not in "iu":
        return f"a random generator's state holds no {_describe(shape, dtype)} array"
    return None


class _Decoder:
    """The inverse of :class:`online_gmm._io.npz_format._Encoder`, checking every value it
    builds. ``member(name, expect)`` gives an array member (from the archive, or from the
    members :func:`online_gmm.save` is about to write); ``fail(detail)`` the error."""

    def __init__(self, member: Callable[[str, Expect], Any],
                 fail: Callable[[str], Exception]) -> None:
        self.member, self.fail = member, fail
        self.read: set[str] = set()

    def array(self, name: Any, where: str, expect: Expect | None) -> Any:
        if expect is None:
            raise self.fail(f"{where}: an array is not expected here")
        if not isinstance(name, str):
            raise self.fail(f"{where}: unreadable array reference {name!r:.60}")
        if name in self.read:
            raise self.fail(f"{where}: member {name!r:.60} is referenced twice")
        self.read.add(name)
        return self.member(name, expect)

    def value(self, v: Any, where: str, expect: Expect | None = None) -> Any:
        import numpy as np

        from .._math.schedules import PowerDecay

        if v is None or isinstance(v, bool | str | int | float):
            return v
        if isinstance(v, list):
            return [self.value(x, where) for x in v]
        if not (isinstance(v, dict) and len(v) in (1, 2)):
            raise self.fail(f"{where}: unreadable value {v!r:.60}")
        tag = next(iter(v))
        body = v[tag]
        if tag == "float" and body in ("inf", "-inf", "nan"):
            return float(body)
        if tag == "numpy" and len(v) == 2 and isinstance(body, str):
            try:
                dtype = np.dtype(body)
            except TypeError:
                raise self.fail(f"{where}: unreadable NumPy scalar type {body!r:.40}") from None
            if dtype.kind not in "biuf" or dtype.itemsize > 8:
                raise self.fail(f"{where}: unreadable NumPy scalar type {body!r}")
            scalar = self.value(v["value"], where)
            if not isinstance(scalar, bool | int | float):
                raise self.fail(f"{where}: unreadable NumPy scalar {scalar!r:.40}")
            return dtype.type(scalar)
        if len(v) != 1:
            raise self.fail(f"{where}: unreadable value {v!r:.60}")
        if tag == "tuple" and isinstance(body, list):
            return tuple(self.value(x, where) for x in body)
        if tag == "dict" and isinstance(body, dict):
            return {k: self.value(x, f"{where}[{k!r}]", expect) for k, x in body.items()}
        if tag == "array":
            return self.array(body, where, expect)
        if tag == "strings" and isinstance(body, list) and all(type(s) is str for s in body):
            return np.array(body, dtype=object)
        if tag == "PowerDecay" and isinstance(body, list) and len(body) == 3:
            return PowerDecay(*body)
        if tag == "RandomState":
            return self.random_state(self.value(body, where, _rng_words), where)
        raise self.fail(f"{where}: unreadable value {v!r:.60}")

    def random_state(self, state: Any, where: str) -> Any:
        import numpy as np

        name = state.get("bit_generator") if isinstance(state, dict) else None
        if name not in _BIT_GENERATORS:
            raise self.fail(f"{where}: unreadable random generator {name!r}")
        rng = np.random.RandomState(getattr(np.random, name)())
        rng.set_state(state)
        return rng

    # ------------------------------------------------------------------ the model
    def model(self, header: dict) -> Any:
        import numpy as np

        from .._estimators.gaussian import OnlineGaussianMixture
        from .._math.state import STATE_FIELDS, MixtureState

        if header.get("class") != _CLASS:
            raise self.fail(f"it holds a {header.get('class')!r:.80}, not an "
                            "OnlineGaussianMixture")
        names = OnlineGaussianMixture._get_param_names()
        params = header.get("params")
        if not isinstance(params, dict) or set(params) - set(names):
            unknown = sorted(set(params) - set(names)) if isinstance(params, dict) else params
            raise self.fail(f"unknown parameters {unknown!r:.80} (written by a newer "
                            "online-gmm?)")
        # the parameters without arrays first: they give the shapes of the arrays
        values = {k: self.value(v, k) for k, v in params.items() if k not in ARRAY_PARAMS}
        probe = OnlineGaussianMixture(**values)
        probe._validate_hyperparameters()  # scikit-learn's messages, naming the parameter
        fitted = header.get("fitted")
        if type(fitted) is not bool:
            raise self.fail("unreadable 'fitted'")
        attrs = header.get("attributes", {})
        if not isinstance(attrs, dict):
            raise self.fail("unreadable attributes")
        state_dict = self.attributes(attrs, fitted)
        D = state_dict.get("n_features_in_")
        values.update(self.array_params(params, int(probe.n_components),
                                        probe.covariance_type, D))
        probe = OnlineGaussianMixture(**values)
        probe._validate_hyperparameters()
        state_dict = {**probe.__dict__, **state_dict}
        if "rng" in header:
            rng = header["rng"]
            if rng == {"same_as": "random_state"}:
                state_dict["_rng"] = state_dict["random_state"]
            else:
                state_dict["_rng"] = self.value(rng, "_rng")
            if type(state_dict["_rng"]) is not np.random.RandomState:
                raise self.fail("_rng is not a RandomState")
        if fitted:
            if header.get("state", {}).get("fields") != list(STATE_FIELDS):
                raise self.fail(f"the model's state has fields {header.get('state')!r:.100}, "
                                f"not {list(STATE_FIELDS)}")
            if "_rng" not in state_dict:
                raise self.fail("a fitted model without its random generator")
            self.check_pending(state_dict, probe)
            if "_warmup" in attrs:
                state_dict["_warmup"] = self.warmup(attrs["_warmup"], probe, int(D))
            arrays = self.state(probe, int(D))
            state_dict["_state"] = MixtureState(**arrays)
        expected = set(state_dict) | (set(_PUBLISHED) if fitted else set())
        order = header.get("order")
        if (not isinstance(order, list) or len(set(order)) != len(order)
                or not set(order) <= expected):
            raise self.fail("the attribute order lists other attributes than the file's")
        order = order + sorted(expected - set(order))
        ordered = {k: state_dict.get(k) for k in order}
        model = object.__new__(OnlineGaussianMixture)
        from .._version import __version__

        ordered["_online_gmm_version"] = __version__  # not an unpickle: no version warning
        model.__setstate__(ordered)
        if fitted:
            model._publish()  # weights_ ... precisions_, as after every step
        return model

    def array_params(self, params: dict, K: int, covariance_type: str,
                     D: int | None) -> dict:
        """``weights_init``, ``means_init``, ``precisions_init``: arrays only of their
        shapes for ``n_components`` (and ``n_features_in_``, or the features ``means_init``
        declares in an unfitted model)."""
        from .._math.covariance import covariance

        out: dict[str, Any] = {}
        declared: list[int | None] = [D]

        def numbers(d: Any) -> bool:
            return d.kind in "iuf" and d.itemsize <= 8

        def means(s: tuple, d: Any) -> str | None:
            if not numbers(d) or len(s) != 2 or s[0] != K or (D is not None and s[1] != D):
                return (f"means_init is {_describe(s, d)}, but n_components={K}"
                        + ("" if D is None else f" and n_features_in_={D}")
                        + " need numbers of shape (n_components, n_features)")
            declared[0] = s[1]
            return None

        def weights(s: tuple, d: Any) -> str | None:
            if not numbers(d) or s != (K,):
                return f"weights_init is {_describe(s, d)}, but n_components={K} need [{K}]"
            return None

        def precisions(s: tuple, d: Any) -> str | None:
            n = declared[0] if declared[0] is not None else (s[-1] if s else 0)
            shape = tuple(covariance(covariance_type).shape(K, n))
            if not numbers(d) or s != shape:
                return (f"precisions_init is {_describe(s, d)}, but n_components={K} and "
                        f"covariance_type={covariance_type!r} need {list(shape)}")
            return None

        for name, expect in (("weights_init", weights), ("means_init", means),
                             ("precisions_init", precisions)):
            if name in params:
                out[name] = self.value(params[name], name, expect)
        return out

    def attributes(self, attrs: dict, fitted: bool) -> dict:
        """The bookkeeping (JSON values; ``_warmup`` is read later), checked by kind."""
        import numpy as np

        from .._estimators.gaussian import OnlineGaussianMixture

        out: dict[str, Any] = {}
        for k, v in attrs.items():
            if not isinstance(k, str) or k.startswith("__") or hasattr(OnlineGaussianMixture, k):
                raise self.fail(f"attribute {k!r:.60} would shadow the class's")
            if k in OnlineGaussianMixture._get_param_names() or k in ("_state", "_rng") or (
                    k in _PUBLISHED):
                raise self.fail(f"attribute {k!r:.60} stored twice")
            kind = ATTRIBUTES.get(k)
            if kind is None:
                raise self.fail(f"unknown attribute {k!r:.60}")
            if not fitted and kind != "config":
                raise self.fail(f"attribute {k!r:.60} in a model that is not fitted")
            if kind != "warmup":
                out[k] = self.value(v, k)
        for k in (REQUIRED if fitted else ()):
            if k not in out:
                raise self.fail(f"a fitted model without {k}")
        for k, x in out.items():
            kind = ATTRIBUTES[k]
            if kind == "count" and (not isinstance(x, int | np.integer) or isinstance(x, bool)
                                    or x < (1 if k == "n_features_in_" else 0)):
                low = "a positive" if k == "n_features_in_" else "a non-negative"
                raise self.fail(f"{k} must be {low} integer, got {x!r:.40}")
            if kind == "flag" and not isinstance(x, bool | np.bool_):
                raise self.fail(f"{k} must be a boolean, got {x!r:.40}")
            if kind == "float" and not isinstance(x, float | np.floating):
                raise self.fail(f"{k} must be a float, got {x!r:.40}")
            if kind == "floats" and not (isinstance(x, list) and all(
                    isinstance(a, float | np.floating) for a in x)):
                raise self.fail(f"{k} must be a list of floats, got {x!r:.40}")
            if kind == "dtype" and x not in (None, "float32", "float64"):
                raise self.fail(f"{k} must be 'float32' or 'float64', got {x!r:.40}")
            if kind == "config" and not (isinstance(x, dict) and all(
                    type(a) is str and type(b) is str for a, b in x.items())):
                raise self.fail(f"{k} must map names to names, got {x!r:.40}")
        names = out.get("feature_names_in_")
        if names is not None and (not isinstance(names, np.ndarray) or names.dtype != object
                                  or names.shape != (out["n_features_in_"],)):
            raise self.fail("feature_names_in_ does not match n_features_in_")
        if fitted:
            out["n_features_in_"] = int(out["n_features_in_"])
        return out

    def check_pending(self, attrs: dict, probe: Any) -> None:
        """User initial parameters pending: only with ``means_init``, valid for the state."""
        from .._math.parameters import check_initial_parameters

        if not attrs["_user_init_pending"]:
            return
        if probe.means_init is None:
            raise self.fail("_user_init_pending is true without means_init")
        try:
            check_initial_parameters(probe.n_components, probe.covariance_type,
                                     attrs["n_features_in_"], probe.weights_init,
                                     probe.means_init, probe.precisions_init)
        except ValueError as exc:
            raise self.fail(f"_user_init_pending is true, but {_reason(exc)}") from None

    def warmup(self, v: Any, probe: Any, D: int) -> Any:
        """The warm-up's buffer: None, or its rows (``n_rows`` x ``n_features_in_``, float,
        finite, positive finite 1-D weights) within the buffer's cap and the parameters'
        range of restarts."""
        if v is None:
            return None
        from .._em.consistency import check_loaded

        body = v.get("Warmup") if isinstance(v, dict) and len(v) == 1 else None
        if not isinstance(body, dict) or set(body) - {"size", "restarts", "n_rows", "limit",
                                                      "refining", "X", "w"}:
            raise self.fail(f"_warmup: unreadable warm-up {v!r:.60}")
        fields = {k: body.get(k) for k in ("size", "restarts", "n_rows", "limit")}
        fields["refining"] = body.get("refining", False)
        fields["limit"] = 0 if fields["limit"] is None else fields["limit"]
        problem = check_loaded(fields, D, probe.warmup_restarts)
        if problem:
            raise self.fail(f"_warmup: {problem}")
        n = fields["n_rows"]
        dtypes: list[Any] = []

        def rows(s: tuple, d: Any) -> str | None:
            if d.str not in ("<f4", "<f8") or s != (n, D):
                return f"_warmup's rows are {_describe(s, d)}, but it holds {n} rows of {D}"
            dtypes.append(d)
            return None

        def weights(s: tuple, d: Any) -> str | None:
            if not dtypes or d != dtypes[0] or s != (n,):
                return f"_warmup's weights are {_describe(s, d)}, not {n} of its rows' dtype"
            return None

        if body.get("X") is None or body.get("w") is None:
            raise self.fail("_warmup: a buffer without its rows")
        X = self.value(body["X"], "_warmup.X", rows)
        w = self.value(body["w"], "_warmup.w", weights)
        problem = check_loaded(fields, D, probe.warmup_restarts, X=X, w=w)
        if problem:
            raise self.fail(f"_warmup: {problem}")
        from .._em.warmup import Warmup

        return Warmup(X=X, w=w, **fields)

    def state(self, probe: Any, D: int) -> dict:
        import numpy as np

        from .._em.consistency import state_problem
        from .._math.covariance import covariance
        from .._math.state import STATE_FIELDS

        K, ct = int(probe.n_components), probe.covariance_type
        cov = covariance(ct).shape(K, D)
        shapes = {
            "weights": (K,), "means": (K, D), "covariances": cov, "precisions_cholesky": cov,
            "mass": (K,), "nu": (K,), "moment": cov, "tied_mass": (1,), "seeded": (K,),
        }
        why = f"n_components={K}, n_features_in_={D} and covariance_type={ct!r}"
        arrays = {}
        for f in STATE_FIELDS:
            dtype = np.dtype(bool) if f == "seeded" else np.dtype(np.float64)
            arr = self.array(f"state.{f}", f"state.{f}",
                             exactly(f"state.{f}", tuple(shapes[f]), dtype, why))
            if f != "seeded" and not np.isfinite(arr).all():
                raise self.fail(f"state.{f} holds NaN or infinity")
            arrays[f] = arr
        problem = state_problem(arrays, ct)
        if problem:
            raise self.fail(f"{problem}: not a model that can predict")
        return arrays
