"""Version compatibility: a model saved by an earlier version (a fixture file committed under
``tests/fixtures/``, one set per release, written by ``tests/fixtures/make_fixtures.py``)
loads in this one and answers as it did, or is refused with a message that names the file,
the version that saved it and this version. Pickle-based files (``.joblib``, ``.pkl``) load
only with ``trusted=True``; pickle-free ones (``.safe.npz``) without it."""

from __future__ import annotations

import pickle
import re
import types
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

import online_gmm
from online_gmm import OnlineGaussianMixture
from online_gmm._io.persistence import (
    FORMAT_VERSION,
    PICKLE_FORMAT_VERSION,
    UntrustedFileError,
    load,
    read_header,
    save,
)

from .._data import assert_same_state, blobs, state_snapshot

FIXTURES = Path(__file__).parents[1] / "fixtures"
SAVED = (
    sorted(FIXTURES.glob("model_v*.joblib"))
    + sorted(FIXTURES.glob("model_v*.pkl"))
    + sorted(FIXTURES.glob("model_v*.safe.npz"))
)


def _version_of(path: Path) -> str:
    return re.fullmatch(r"model_v(.+?)\.(joblib|pkl|safe\.npz)", path.name).group(1)


def test_the_fixtures_of_this_version_exist():
    """Every release commits its fixtures (run tests/fixtures/make_fixtures.py)."""
    names = {p.name for p in FIXTURES.iterdir()}
    v = online_gmm.__version__
    assert {f"model_v{v}.joblib", f"model_v{v}.pkl", f"model_v{v}.npz",
            f"model_v{v}.safe.npz"} <= names
    assert "model_v0.1.0.joblib" in names  # the first release's, kept for ever


def _open(path: Path):
    if path.name.endswith(".safe.npz"):
        return load(path)  # pickle-free: no trust needed
    if path.suffix == ".joblib":
        return load(path, trusted=True)
    with open(path, "rb") as fh, warnings.catch_warnings():
        # scikit-learn warns (InconsistentVersionWarning) when the fixture was pickled by
        # another scikit-learn; the model must still work.
        warnings.simplefilter("ignore")
        return pickle.load(fh)


@pytest.mark.parametrize("path", SAVED, ids=[p.name for p in SAVED])
def test_a_saved_model_loads_and_answers_as_when_saved(path):
    model = _open(path)
    assert isinstance(model, OnlineGaussianMixture)
    ref = np.load(FIXTURES / f"model_v{_version_of(path)}.npz")
    # stored parameters come back exactly; computed answers to round-off (another BLAS)
    np.testing.assert_array_equal(model.weights_, ref["weights"])
    np.testing.assert_array_equal(model.means_, ref["means"])
    np.testing.assert_array_equal(model.covariances_, ref["covariances"])
    np.testing.assert_array_equal(model.precisions_cholesky_, ref["precisions_cholesky"])
    assert model.n_steps_ == int(ref["n_steps"])
    assert model.n_samples_seen_ == int(ref["n_samples_seen"])
    X = ref["X"]
    np.testing.assert_array_equal(model.predict(X), ref["predict"])
    np.testing.assert_allclose(model.predict_proba(X), ref["predict_proba"], rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(model.score_samples(X), ref["score_samples"], rtol=1e-10)
    # and it keeps learning: the loaded model is a working online model, not a snapshot
    before = model.n_steps_
    model.partial_fit(X)
    assert model.n_steps_ == before + 1
    assert np.all(np.isfinite(model.score_samples(X)))
    assert model.weights_.sum() == pytest.approx(1.0, abs=1e-12)


def test_joblib_fixture_header_records_the_versions():
    header = read_header(FIXTURES / "model_v0.1.0.joblib")
    assert header["online_gmm_version"] == "0.1.0"
    assert header["format_version"] == 1
    assert header["class"] == "online_gmm._estimator.OnlineGaussianMixture"
    assert "model" not in header


def _fitted(covariance_type="diag"):
    X, _, _ = blobs(n=300, K=3, D=3, seed=3)
    model = OnlineGaussianMixture(3, covariance_type=covariance_type, forgetting_rate=0.05,
                                  random_state=0)
    for b in np.array_split(X, 3):
        model.partial_fit(b)
    return model, X


@pytest.mark.parametrize("fmt", ["npz", "pickle"])
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_save_load_round_trip_is_exact(tmp_path, covariance_type, fmt):
    model, X = _fitted(covariance_type)
    path = save(model, tmp_path / "m.joblib", format=fmt)
    loaded = load(path, trusted=fmt == "pickle")
    assert_same_state(state_snapshot(model), state_snapshot(loaded))
    header = read_header(path)
    assert header["online_gmm_version"] == online_gmm.__version__
    assert header["format_version"] == (FORMAT_VERSION if fmt == "npz"
                                        else PICKLE_FORMAT_VERSION)
    # an unfitted model saves too
    unfitted = save(OnlineGaussianMixture(2), tmp_path / "u.joblib", format=fmt)
    assert not hasattr(load(unfitted, trusted=fmt == "pickle"), "_state")


def test_the_default_format_is_pickle_free_and_pickle_files_need_trust(tmp_path):
    model, _ = _fitted()
    safe = save(model, tmp_path / "m.joblib")
    assert read_header(safe)["format_version"] == FORMAT_VERSION == 2
    load(safe)  # no trust needed
    pickled = save(model, tmp_path / "p.joblib", format="pickle")
    with pytest.raises(UntrustedFileError, match=r"trusted=True") as err:
        load(pickled)
    assert "format 1, saved by online-gmm" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["model_v0.1.0.joblib", "model_v0.1.0.pkl"])
def test_the_fixtures_of_0_1_0_need_trust(name):
    """The 0.1.0 files are pickles: refused without trusted=True, loaded with it."""
    path = FIXTURES / name
    with pytest.raises(UntrustedFileError, match=re.escape(name)):
        load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's InconsistentVersionWarning, maybe
        model = load(path, trusted=True)
    ref = np.load(FIXTURES / "model_v0.1.0.npz")
    np.testing.assert_array_equal(model.means_, ref["means"])
    np.testing.assert_array_equal(model.predict(ref["X"]), ref["predict"])


def _tampered(tmp_path, **changes) -> Path:
    model, _ = _fitted()
    path = save(model, tmp_path / "model.joblib", format="pickle")
    payload = joblib.load(path)
    payload.update(changes)
    out = tmp_path / "tampered.joblib"
    joblib.dump(payload, out)
    return out


def _clear_message(path: Path, saved: str | None) -> str:
    """The message must name the file, the version that saved it (None: the file does not
    say, and the message does not make one up) and this version."""
    by = "" if saved is None else rf"saved by online-gmm {re.escape(saved)}.*"
    return (
        rf"(?s){re.escape(str(path))}.*{by}"
        rf"this is online-gmm {re.escape(online_gmm.__version__)}"
    )


def test_a_newer_format_fails_with_a_clear_message(tmp_path):
    path = _tampered(tmp_path, format_version=FORMAT_VERSION + 1, online_gmm_version="9.0.0")
    with pytest.raises(ValueError, match=_clear_message(path, "9.0.0")) as err:
        load(path, trusted=True)
    assert f"format version {FORMAT_VERSION + 1}" in str(err.value)
    assert "upgrade online-gmm" in str(err.value)


@pytest.mark.parametrize("fmt", [0, None, "1", 1.5])
def test_an_unknown_format_fails_with_a_clear_message(tmp_path, fmt):
    path = _tampered(tmp_path, format_version=fmt)
    with pytest.raises(ValueError, match=_clear_message(path, online_gmm.__version__)):
        load(path, trusted=True)


def test_a_model_that_no_longer_unpickles_fails_with_a_clear_message(tmp_path):
    path = _tampered(tmp_path, model=b"certainly not a joblib stream")
    with pytest.raises(ValueError, match=_clear_message(path, online_gmm.__version__)):
        load(path, trusted=True)


def test_a_state_missing_fields_fails_with_a_clear_message(tmp_path):
    import io

    from online_gmm.core import MixtureState

    model, _ = _fitted()
    old = model._state

    legacy = types.SimpleNamespace()  # a state as an imagined earlier version laid it out
    for f in MixtureState.__dataclass_fields__:
        if f != "nu":
            setattr(legacy, f, getattr(old, f))
    model._state = legacy
    buf = io.BytesIO()
    try:
        joblib.dump(model, buf)
    finally:
        model._state = old
    path = _tampered(tmp_path, model=buf.getvalue(), online_gmm_version="0.0.9")
    with pytest.raises(ValueError, match=_clear_message(path, "0.0.9")) as err:
        load(path, trusted=True)
    assert "'nu'" in str(err.value)


@pytest.mark.parametrize(
    "payload,what",
    [
        (GaussianMixture(2), "GaussianMixture"),
        ({"weights": np.ones(3)}, "dict"),
        ([1, 2, 3], "list"),
    ],
    ids=["sklearn-model", "dict", "list"],
)
def test_a_file_that_is_not_an_online_gmm_model_is_refused(tmp_path, payload, what):
    path = tmp_path / "other.joblib"
    joblib.dump(payload, path)
    with pytest.raises(ValueError, match=_clear_message(path, None)) as err:
        load(path, trusted=True)
    assert what in str(err.value)
    assert "saved by" not in str(err.value)  # (not "saved by online-gmm unknown")
    with pytest.raises(UntrustedFileError, match=re.escape(str(path))):
        load(path)  # without trust, nothing is unpickled


def test_a_file_that_is_not_joblib_is_refused(tmp_path):
    path = tmp_path / "notes.joblib"
    path.write_text("just some text\n")
    with pytest.raises(ValueError, match=_clear_message(path, None)):
        load(path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.joblib")


def test_a_bare_joblib_dump_of_a_model_loads(tmp_path):
    model, _ = _fitted("full")
    path = tmp_path / "bare.joblib"
    joblib.dump(model, path)
    assert_same_state(state_snapshot(model), state_snapshot(load(path, trusted=True)))


def test_save_refuses_what_is_not_an_online_model(tmp_path):
    with pytest.raises(TypeError, match="OnlineGaussianMixture"):
        save(GaussianMixture(2), tmp_path / "x.joblib")


def test_plain_pickle_records_the_version_and_warns_on_mismatch():
    model, X = _fitted()
    state = model.__getstate__()
    assert state["_online_gmm_version"] == online_gmm.__version__
    state["_online_gmm_version"] = "0.0.1"
    clone = OnlineGaussianMixture.__new__(OnlineGaussianMixture)
    with pytest.warns(UserWarning, match=r"0\.0\.1.*" + re.escape(online_gmm.__version__)):
        clone.__setstate__(state)
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))


def test_old_module_paths_are_the_modules_themselves():
    # pickles of earlier versions name online_gmm._stats, _warmup, ...: importing those
    # gives the real modules, whose own names and specs stay theirs (importlib.reload works)
    import importlib
    import subprocess
    import sys

    code = (
        "import importlib, pickle, online_gmm\n"
        "import online_gmm._stats as old, online_gmm._math.state as new\n"
        "assert old is new and new.__spec__.name == 'online_gmm._math.state'\n"
        "assert importlib.reload(new).__name__ == 'online_gmm._math.state'\n"
        "cls = pickle.loads(b'conline_gmm._warmup\\nWarmup\\n.')\n"
        "assert cls.__module__ == 'online_gmm._em.warmup'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert importlib.import_module("online_gmm._estimator").OnlineGaussianMixture is (
        OnlineGaussianMixture)
