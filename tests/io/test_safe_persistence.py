"""Regressions of issue 14 (reliability, second round) in saving and loading models:

- (2) ``online_gmm.save`` is atomic: a failed or interrupted save (a full disk, Ctrl-C,
  SIGTERM) leaves the previous file as it was and no ``.tmp-*`` file behind;
- (10) a pickle-free format, written by default and read without running code from the file;
  pickle-based files load only with ``trusted=True`` (``--trusted``), and ``read_header``
  never unpickles;
- the attacks that found these: files that run code when unpickled, truncated and
  bit-flipped model files of both formats (a clear error, never a crash or code run).
"""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest

import online_gmm
from online_gmm import OnlineGaussianMixture, PowerDecay, load, save
from online_gmm.__main__ import main
from online_gmm._io import persistence
from online_gmm._io.persistence import UntrustedFileError, is_model_archive, read_header
from online_gmm.core import STATE_FIELDS

from .._data import assert_same_state, state_snapshot

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parents[1] / "fixtures"
TYPES = ["full", "tied", "diag", "spherical"]


def _fitted(covariance_type="diag", dtype=np.float64, **params):
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(-4, 1, (60, 3)), rng.normal(4, 1, (60, 3))]).astype(dtype)
    params = {"random_state": 0, "forgetting_rate": PowerDecay(0.1), "anneal_steps": 5,
              "temperature_init": 2.0, **params}
    model = OnlineGaussianMixture(3, covariance_type=covariance_type, **params)
    for batch in np.array_split(rng.permutation(X), 3):
        model.partial_fit(batch)
    return model, X


def _no_temporaries(directory: Path) -> bool:
    return not [p for p in os.listdir(directory) if p.startswith(".tmp")]


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("online-gmm: error: ") and "Traceback" not in err
    return lines[0]


def _comparable(model) -> dict:
    """``state_snapshot``, with a RandomState parameter made comparable."""
    snap = state_snapshot(model)
    if isinstance(snap.get("random_state"), np.random.RandomState):
        snap["random_state"] = repr(snap["random_state"].get_state(legacy=False))
    return snap


def assert_identical(a, b) -> None:
    """Everything a model holds: the same attributes in the same order, of the same types,
    arrays of the same dtype, shape and layout and values; the fitted attributes views of
    the state, as the estimator makes them (float32 copies for a float32 model)."""
    assert list(a.__dict__) == list(b.__dict__)
    assert_same_state(_comparable(a), _comparable(b))
    for k, va in a.__dict__.items():
        vb = b.__dict__[k]
        assert type(va) is type(vb), k
        if isinstance(va, np.ndarray):
            assert va.dtype == vb.dtype and va.shape == vb.shape, k
            assert va.flags.c_contiguous == vb.flags.c_contiguous, k
    if "_state" in b.__dict__:
        for attr, field in [("weights_", "weights"), ("means_", "means"),
                            ("covariances_", "covariances"),
                            ("precisions_cholesky_", "precisions_cholesky")]:
            published, state = getattr(b, attr), getattr(b._state, field)
            if published.dtype == state.dtype:
                assert published is state
            else:  # a float32 model's attributes: its float64 state rounded (scikit-learn's)
                assert published.dtype == np.float32
                np.testing.assert_array_equal(published, state.astype(np.float32))
        for f in b._state.__dataclass_fields__:
            assert getattr(a._state, f).dtype == getattr(b._state, f).dtype, f


# ---------------------------------------------------------------------- (10) the format
@pytest.mark.parametrize("covariance_type", TYPES)
def test_the_pickle_free_round_trip_is_exact_and_resumes_bit_identically(
    tmp_path, covariance_type
):
    model, X = _fitted(covariance_type)
    loaded = load(save(model, tmp_path / "m.npz", include_warmup_buffer=True))
    assert_identical(model, loaded)
    np.testing.assert_array_equal(loaded.precisions_, model.precisions_)
    # the stream continues exactly as the uninterrupted one (and as a pickle round trip)
    straight = pickle.loads(pickle.dumps(model))
    rng = np.random.default_rng(7)
    for _ in range(3):
        batch = rng.normal(0, 5, (40, 3))
        straight.partial_fit(batch)
        loaded.partial_fit(batch)
    assert_identical(straight, loaded)
    np.testing.assert_array_equal(straight.score_samples(X), loaded.score_samples(X))


@pytest.mark.parametrize("case", [
    "float32", "unfitted", "unfitted-with-inits", "random-state-instance", "global-rng",
    "fit", "numpy-scalars", "from-sklearn", "unseeded",
])
def test_every_kind_of_model_round_trips(tmp_path, case):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    if case == "float32":
        model = OnlineGaussianMixture(2, random_state=1).partial_fit(X.astype(np.float32))
    elif case == "unfitted":
        model = OnlineGaussianMixture(2)
    elif case == "unfitted-with-inits":
        model = OnlineGaussianMixture(2, means_init=np.zeros((2, 4)), weights_init=[0.5, 0.5],
                                      precisions_init=np.ones((2, 4)))
    elif case == "random-state-instance":
        model = OnlineGaussianMixture(2, random_state=np.random.RandomState(5)).partial_fit(X)
        assert model._rng is model.random_state
    elif case == "global-rng":
        model = OnlineGaussianMixture(2).partial_fit(X)
    elif case == "fit":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = OnlineGaussianMixture(3, n_init=2, max_iter=3, random_state=4).fit(X)
    elif case == "numpy-scalars":
        model = OnlineGaussianMixture(np.int64(2), reg_covar=np.float64(1e-5),
                                      random_state=np.int32(3)).partial_fit(X)
    elif case == "from-sklearn":
        from sklearn.mixture import GaussianMixture

        model = OnlineGaussianMixture.from_sklearn(GaussianMixture(2, random_state=0).fit(X))
    elif case == "unseeded":
        model = OnlineGaussianMixture(2, random_state=1).partial_fit(X, sample_weight=np.zeros(200))
    loaded = load(save(model, tmp_path / "m.npz", include_warmup_buffer=True))
    assert_identical(model, loaded)
    if case == "random-state-instance":
        assert loaded._rng is loaded.random_state  # one generator, as in the model
    if "_state" in model.__dict__ and model._state.seeded.any():
        Y = rng.normal(size=(30, 4)).astype(model.means_.dtype if case != "float32"
                                            else np.float32)
        straight = pickle.loads(pickle.dumps(model))
        straight.partial_fit(Y)
        loaded.partial_fit(Y)
        assert_identical(straight, loaded)


def test_the_file_is_an_npz_of_arrays_and_a_json_header(tmp_path):
    model, _ = _fitted("full")
    path = save(model, tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as npz:  # plain NumPy reads it, pickle-free
        files = npz.files
        header = json.loads(npz["header"].tobytes())
        assert npz["state.means"].dtype == np.float64
        np.testing.assert_array_equal(npz["state.moment"], model._state.moment)
    assert files[0] == "header"
    assert {f"state.{f}" for f in STATE_FIELDS} <= set(files)
    assert header["format_version"] == persistence.FORMAT_VERSION == 2
    assert header["class"] == "online_gmm._estimator.OnlineGaussianMixture"
    assert header["params"]["forgetting_rate"] == {"PowerDecay": [0.1, 10.0, 0.6]}
    assert header["params"]["n_components"] == 3
    assert header["attributes"]["n_steps_"] == 3
    assert header["rng"]["RandomState"]["dict"]["bit_generator"] == "MT19937"
    assert read_header(path) == header
    assert is_model_archive(path)
    np.savez(tmp_path / "data.npz", X=np.zeros((2, 2)))
    assert not is_model_archive(tmp_path / "data.npz")


def _rate(step):
    return 0.05


def _schedule(step):
    return 1.0 + 1.0 / (1 + step)


@pytest.mark.parametrize("param,value", [
    ("forgetting_rate", _rate),
    ("anneal_schedule", _schedule),
])
def test_a_callable_cannot_be_saved_pickle_free_and_the_error_says_what_to_do(
    tmp_path, param, value
):
    model, _ = _fitted(**{param: value})
    target = tmp_path / "m.npz"
    save(OnlineGaussianMixture(2), target)
    before = target.read_bytes()
    with pytest.raises(TypeError, match=rf"{param}=.*format=\"pickle\"") as err:
        save(model, target)
    assert "trusted=True" in str(err.value)
    assert target.read_bytes() == before and _no_temporaries(tmp_path)  # nothing written
    # the pickle-based format stores it, and loads it back when trusted
    save(model, target, format="pickle")
    loaded = load(target, trusted=True)
    assert getattr(loaded, param)(4) == value(4)


def test_a_subclass_needs_the_pickle_format(tmp_path):
    class Mine(OnlineGaussianMixture):
        pass

    with pytest.raises(TypeError, match="Mine.*format=\"pickle\""):
        save(Mine(2), tmp_path / "m.npz")


def test_a_newer_pickle_free_format_is_refused_naming_the_versions(tmp_path):
    model, _ = _fitted()
    path = save(model, tmp_path / "m.npz")
    future = _rewrite_header(path, tmp_path / "future.npz",
                             format_version=3, online_gmm_version="9.0.0")
    with pytest.raises(ValueError, match=r"future\.npz.*format version 3; upgrade online-gmm"
                                         r".*saved by online-gmm 9\.0\.0") as err:
        load(future)
    assert f"this is online-gmm {online_gmm.__version__}" in str(err.value)


def _rewrite_header(src: Path, dst: Path, **changes) -> Path:
    """A copy of a pickle-free file with its JSON header changed (a crafted file)."""
    with np.load(src, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    header = json.loads(members["header"].tobytes())
    header.update(changes)
    members["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(dst, "wb") as fh:
        np.savez(fh, **members)
    return dst


def _rewrite_member(src: Path, dst: Path, name: str, value) -> Path:
    with np.load(src, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    members[name] = value
    with open(dst, "wb") as fh:
        np.savez(fh, **members)
    return dst


@pytest.mark.parametrize("change,message", [
    (dict(magic="something else"), "not an online-gmm model file"),
    (dict(format_version="2"), "format version '2'"),
    (dict(**{"class": "os.system"}), "'os.system'"),
    (dict(params={"n_components": 3, "evil": 1}), "unknown parameters"),
    (dict(params={"n_components": {"callable": "os.system"}}), "unreadable value"),
    (dict(params={"n_components": 0}), "n_components"),
    (dict(params={"n_components": 4, "covariance_type": "diag"}), r"state\.weights is "),
    (dict(params={"n_components": 3, "covariance_type": "full"}), r"state\.covariances is "),
    (dict(attributes={"n_features_in_": 5}), "state.means"),
    (dict(attributes={"predict": 1}), "shadow"),
    (dict(attributes={"__class__": 1}), "shadow"),
    (dict(attributes={"n_steps_": -1}), "n_steps_"),
    (dict(rng={"RandomState": {"dict": {"bit_generator": "os.system"}}}), "random generator"),
    (dict(state={"fields": ["weights"]}), "fields"),
])
def test_a_crafted_header_is_refused_clearly(tmp_path, change, message):
    model, _ = _fitted()
    path = save(model, tmp_path / "m.npz")
    if "attributes" in change:  # keep the other attributes
        change = {"attributes": {**read_header(path)["attributes"], **change["attributes"]}}
    if "params" in change:
        change = {"params": {**read_header(path)["params"], **change["params"]}}
    bad = _rewrite_header(path, tmp_path / "crafted.npz", **change)
    with pytest.raises(ValueError, match=message) as err:
        load(bad)
    assert "crafted.npz" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("member,value,message", [
    ("state.weights", np.zeros(3, dtype=np.float32), "float32"),
    ("state.weights", np.zeros(3, dtype=">f8"), "state.weights"),
    ("state.means", np.zeros((3, 2)), r"\[3, 3\]"),
    ("state.seeded", np.ones(3), "bool"),
    ("state.covariances", np.full((3, 3), np.nan), "NaN"),
])
def test_crafted_arrays_are_refused_before_any_use(tmp_path, member, value, message):
    model, _ = _fitted()
    path = save(model, tmp_path / "m.npz")
    bad = _rewrite_member(path, tmp_path / "crafted.npz", member, value)
    with pytest.raises(ValueError, match=message):
        load(bad)


# ---------------------------------------------------------------------- (10) attacks
class _Evil:
    """Unpickling it creates the marker file (the harmless stand-in for os.system)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _attack_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    """Files that run code (create ``marker``) when unpickled."""
    files = {}
    files["bare.joblib"] = tmp_path / "bare.joblib"
    joblib.dump(_Evil(marker), files["bare.joblib"])
    files["bare.pkl"] = tmp_path / "bare.pkl"
    files["bare.pkl"].write_bytes(pickle.dumps(_Evil(marker)))
    # the attack: a valid header, the model's bytes a payload
    payload = {"magic": "online-gmm model", "format_version": 1, "online_gmm_version": "0.1.0",
               "sklearn_version": "1", "numpy_version": "2",
               "class": "online_gmm._estimator.OnlineGaussianMixture",
               "model": pickle.dumps(_Evil(marker))}
    files["header-then-payload.joblib"] = tmp_path / "header-then-payload.joblib"
    joblib.dump(payload, files["header-then-payload.joblib"], compress=3)
    # a payload inside the header itself (before the model's bytes), uncompressed
    files["payload-in-header.joblib"] = tmp_path / "payload-in-header.joblib"
    joblib.dump({**payload, "class": _Evil(marker)}, files["payload-in-header.joblib"])
    # an .npz whose member is a pickled object array
    files["object-member.npz"] = tmp_path / "object-member.npz"
    good = save(OnlineGaussianMixture(2).partial_fit(np.random.default_rng(0).normal(
        size=(20, 2))), tmp_path / "good.npz")
    with np.load(good, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    evil = np.empty(2, dtype=object)
    evil[0] = _Evil(marker)
    members["state.weights"] = evil
    with open(files["object-member.npz"], "wb") as fh:
        np.savez(fh, **members)  # np.savez pickles object arrays
    return files


def test_loading_an_attack_file_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    files = _attack_files(tmp_path, marker)
    for name, path in files.items():
        if name.endswith(".npz"):
            with pytest.raises(ValueError, match="not numbers|damaged"):
                load(path, trusted=True)  # the pickle-free reader never unpickles
        else:
            with pytest.raises(UntrustedFileError, match="trusted=True"):
                load(path)
        if name in ("header-then-payload.joblib", "object-member.npz"):
            read_header(path)  # a well-formed header: read without unpickling the rest
        else:
            with pytest.raises(ValueError):
                read_header(path)  # its docstring promises: without unpickling
        assert not marker.exists(), name
    header = read_header(files["header-then-payload.joblib"])  # a header, read safely
    assert header["online_gmm_version"] == "0.1.0" and "model" not in header
    assert not marker.exists()


def test_the_cli_runs_nothing_from_an_attack_file(tmp_path, capsys):
    marker = tmp_path / "pwned"
    files = _attack_files(tmp_path, marker)
    np.save(tmp_path / "X.npy", np.zeros((4, 2)))
    for name, path in files.items():
        if name.endswith(".npz"):
            continue  # an .npz target is a matrix for diagnose unless it is a model file
        for argv in (["diagnose", str(path)], ["predict", str(path), str(tmp_path / "X.npy")],
                     ["partial-fit", str(path), str(tmp_path / "X.npy")]):
            assert main(argv) == 1, argv
            line = _one_error_line(capsys.readouterr().err)
            assert str(path) in line and "--trusted" in line
        assert not marker.exists(), name


def test_trusted_means_trusted(tmp_path):
    """The documented behaviour of ``trusted=True``: it unpickles (and so runs) the file."""
    marker = tmp_path / "pwned"
    path = _attack_files(tmp_path, marker)["bare.pkl"]
    with pytest.raises(ValueError, match="not an online-gmm model"):
        load(path, trusted=True)
    assert marker.exists()


def test_the_warning_is_in_load_and_in_the_cli_help(capsys):
    doc = load.__doc__
    assert "trusted=True" in doc and "execute arbitrary code" in doc
    for command in ("partial-fit", "predict", "score", "sample", "diagnose"):
        assert main([command, "--help"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "--trusted" in out and "WARNING: loading a pickle runs" in out, command


def _small_files(tmp_path: Path) -> dict[str, bytes]:
    model, _ = _fitted("full")
    out = {}
    for name, kw in {"npz-stored": dict(compress=0), "npz-deflated": dict(compress=3),
                     "pickle": dict(format="pickle")}.items():
        out[name] = Path(save(model, tmp_path / f"{name}.bin", include_warmup_buffer=True,
                              **kw)).read_bytes()
    return out, model


@pytest.mark.parametrize("kind", ["npz-stored", "npz-deflated", "pickle"])
def test_truncated_and_bit_flipped_files_give_a_clear_error(tmp_path, kind):
    """Every truncation and a spread of single-bit flips: a one-line ``ValueError`` naming
    the file, or (a flip in a field nothing reads, e.g. a timestamp) the same model; never
    a crash, never a different model, never code run."""
    files, model = _small_files(tmp_path)
    data = files[kind]
    bad = tmp_path / "bad.bin"
    trusted = kind != "pickle"  # the pickle file is refused unread unless trusted
    rng = np.random.default_rng(0)
    lengths = sorted(set(rng.integers(0, len(data), 150).tolist()) | {0, 1, 8, len(data) - 1})
    flips = [(int(p), int(b)) for p, b in zip(rng.integers(0, len(data), 400),
                                              rng.integers(0, 8, 400), strict=True)]
    outcomes = {"error": 0, "same": 0}
    for blob in [data[:n] for n in lengths] + [_flip(data, p, b) for p, b in flips]:
        bad.write_bytes(blob)
        try:
            loaded = load(bad, trusted=trusted) if kind != "pickle" else load(bad)
        except ValueError as exc:
            msg = str(exc)
            assert "bad.bin" in msg and "\n" not in msg, msg
            outcomes["error"] += 1
        else:
            assert_identical(model, loaded)
            outcomes["same"] += 1
    assert outcomes["error"] > len(lengths)


def _flip(data: bytes, pos: int, bit: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 1 << bit
    return bytes(b)


def test_truncated_pickle_files_give_a_clear_error_when_trusted(tmp_path):
    files, model = _small_files(tmp_path)
    data = files["pickle"]
    header = read_header(tmp_path / "pickle.bin")
    bad = tmp_path / "bad.joblib"
    for n in sorted(set(np.linspace(0, len(data) - 1, 40).astype(int).tolist())):
        bad.write_bytes(data[:n])
        try:  # the last bytes are zlib's checksum, after the pickle's end: it may load
            assert_same_state(state_snapshot(model), state_snapshot(load(bad, trusted=True)))
        except ValueError as exc:
            assert "bad.joblib" in str(exc)
        try:
            assert read_header(bad) == header  # the header came before the cut
        except ValueError as exc:
            assert "bad.joblib" in str(exc)


# ---------------------------------------------------------------------- (2) atomic save
@pytest.mark.parametrize("fmt", ["npz", "pickle"])
@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt(),
])
def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, fmt,
                                                             error):
    old, _ = _fitted()
    target = tmp_path / "model.joblib"
    save(old, target, include_warmup_buffer=True)
    before = target.read_bytes()

    real_dump = joblib.dump

    def failing(value, path, *args, **kwargs):  # writes part of the file, then fails
        if not isinstance(path, str | os.PathLike):
            return real_dump(value, path, *args, **kwargs)  # the model's bytes, in memory
        with open(path, "wb") as fh:
            fh.write(b"\0" * 8192)
        raise error

    if fmt == "npz":
        monkeypatch.setattr(persistence, "_write_npz",
                            lambda path, *a: failing(None, path))
    else:
        monkeypatch.setattr(joblib, "dump", failing)
    new, _ = _fitted("full")
    with pytest.raises(type(error)) as err:
        save(new, target, format=fmt)
    if isinstance(error, OSError):
        assert err.value.filename == str(target)  # the target, not the temporary file
    assert target.read_bytes() == before
    assert _no_temporaries(tmp_path)
    monkeypatch.undo()
    assert_identical(old, load(target))


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failure_at_the_commit_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch,
                                                                      failing):
    """A full disk may only show when the data is flushed (``fsync``), a rename can fail:
    the temporary file goes, the old file stays."""
    old, _ = _fitted()
    target = tmp_path / "model.npz"
    save(old, target)
    before = target.read_bytes()

    def broken(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(OSError, match="No space left") as err:
        save(_fitted("full")[0], target)
    monkeypatch.undo()
    assert err.value.filename == str(target)
    assert target.read_bytes() == before
    assert _no_temporaries(tmp_path)


def test_save_names_the_target_not_its_temporary_file(tmp_path, monkeypatch):
    import tempfile

    ro = tmp_path / "ro"
    ro.mkdir()
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kw):
        if dir is not None and os.path.realpath(dir) == os.path.realpath(ro):
            raise PermissionError(13, "Permission denied", os.path.join(dir, ".tmp-xyz-m"))
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises(PermissionError) as err:
        save(OnlineGaussianMixture(2), ro / "m.joblib")
    assert err.value.filename == str(ro / "m.joblib")
    assert ".tmp-" not in str(err.value)


def test_signal_handlers_are_restored_and_an_applications_own_is_left_alone(tmp_path):
    model, _ = _fitted()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    save(model, tmp_path / "a.npz")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    calls = []

    def mine(signum, frame):
        calls.append(signum)

    old = signal.signal(signal.SIGTERM, mine)
    try:
        save(model, tmp_path / "b.npz")
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, old)
    # and a save from another thread (which cannot install handlers) works
    done = []
    t = threading.Thread(target=lambda: done.append(save(model, tmp_path / "c.npz")))
    t.start()
    t.join()
    assert done and load(tmp_path / "c.npz").n_steps_ == model.n_steps_


CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from online_gmm import OnlineGaussianMixture, save

    target, fmt = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    small = OnlineGaussianMixture(2, random_state=0).partial_fit(rng.normal(size=(50, 3)))
    save(small, target, format=fmt)
    # a large model: a 32 MB parameter array of random numbers (about a second to deflate)
    big = OnlineGaussianMixture(1000, means_init=rng.normal(size=(1000, 4000)))
    print("saving", flush=True)
    save(big, target, format=fmt)
    print("saved", flush=True)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32",
                    reason="POSIX signals")
@pytest.mark.parametrize("fmt", ["npz", "pickle"])
def test_sigterm_mid_save_leaves_the_old_file_and_no_temporary(tmp_path, fmt):
    target = tmp_path / "model.joblib"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                         os.environ.get("PYTHONPATH", "")])}
    errors = tmp_path / "stderr.txt"  # (a file, not a pipe: a full pipe would block the child)
    with open(errors, "wb") as err_file:
        proc = subprocess.Popen([sys.executable, str(script), str(target), fmt], cwd=tmp_path,
                                env=env, stdout=subprocess.PIPE, stderr=err_file)
    try:
        # every wait is bounded: a child that stalls fails the test, never hangs the suite
        assert _line_within(proc, 300) == b"saving\n", (proc.poll(), errors.read_text())
        before = target.read_bytes()
        deadline = time.monotonic() + 60
        while _no_temporaries(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.002)  # the temporary file appears: the save is under way
        assert not _no_temporaries(tmp_path), "the save never started writing"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = errors.read_text()
    assert proc.returncode == -signal.SIGTERM, err  # it died of the signal, as it should
    assert b"saved" not in out
    assert target.read_bytes() == before  # the old, valid model
    assert load(target, trusted=fmt == "pickle").n_components == 2
    assert _no_temporaries(tmp_path)


def _line_within(proc: subprocess.Popen, seconds: float) -> bytes:
    """The child's next line on its stdout, or ``b""`` if none comes within ``seconds``."""
    ready, _, _ = select.select([proc.stdout], [], [], seconds)
    return proc.stdout.readline() if ready else b""


RACE_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from online_gmm import OnlineGaussianMixture, save
    from online_gmm._io import writers as _writers

    target = sys.argv[1]
    model = OnlineGaussianMixture(2, random_state=0).partial_fit(np.zeros((4, 2)) + 1)
    save(model, target)
    real = _writers._temp_in

    def temp_in(path):  # SIGTERM arrives just after the temporary file is created
        tmp = real(path)
        os.kill(os.getpid(), signal.SIGTERM)
        return tmp

    _writers._temp_in = temp_in
    save(model, target)
    print("survived", flush=True)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32",
                    reason="POSIX signals")
def test_sigterm_while_the_temporary_file_is_created_leaves_none(tmp_path):
    target = tmp_path / "model.npz"
    script = tmp_path / "child.py"
    script.write_text(RACE_CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                         os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script), str(target)], cwd=tmp_path, env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert b"survived" not in proc.stdout
    assert load(target).n_steps_ == 1
    assert _no_temporaries(tmp_path)


# ---------------------------------------------------------------------- the CLI
def test_the_cli_loads_a_pickle_with_trusted_and_converts_it(tmp_path, capsys):
    fixture = FIXTURES / "model_v0.1.0.joblib"
    assert main(["diagnose", str(fixture)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "model_v0.1.0.joblib" in line and "--trusted" in line and "0.1.0" in line
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["diagnose", "--trusted", str(fixture)]) == 0
        capsys.readouterr()
        np.save(tmp_path / "X.npy", np.random.default_rng(0).normal(size=(50, 3)))
        out = tmp_path / "converted.npz"
        argv = ["partial-fit", "--trusted", str(fixture), str(tmp_path / "X.npy"), "-o", str(out)]
        assert main(argv) == 0
    assert read_header(out)["format_version"] == 2
    assert main(["diagnose", str(out)]) == 0  # a model, though it ends in .npz
    assert "prototypes: 3" in capsys.readouterr().out


def test_cli_partial_fit_keeps_a_pickle_only_model_a_pickle_and_says_so(tmp_path, capsys):
    model, X = _fitted(forgetting_rate=_rate)
    path = save(model, tmp_path / "m.joblib", format="pickle")
    np.save(tmp_path / "X.npy", X)
    assert main(["partial-fit", "--trusted", path, str(tmp_path / "X.npy")]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "forgetting_rate" in err and "pickle-based" in err
    assert load(path, trusted=True).n_steps_ == model.n_steps_ + 1


def test_the_pickle_reader_handles_every_joblib_compression(tmp_path):
    model, _ = _fitted()
    from online_gmm._io.pickle_format import _pickle_payload

    payload = _pickle_payload(model, include_warmup_buffer=True)
    for compress in (0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)):
        path = tmp_path / "m.joblib"
        joblib.dump(payload, path, compress=compress)
        assert read_header(path)["class"].endswith("OnlineGaussianMixture"), compress
        with pytest.raises(UntrustedFileError, match="format 1"):
            load(path)
        assert_same_state(state_snapshot(model), state_snapshot(load(path, trusted=True)))


def test_protocol_0_pickles_are_parsed_without_running_them(tmp_path):
    path = tmp_path / "p0.joblib"
    path.write_bytes(pickle.dumps({"magic": "online-gmm model", "format_version": 1}, 0))
    # not a compressed joblib file nor protocol 2+: unknown, refused unread
    with pytest.raises(ValueError, match="not an online-gmm model file"):
        load(path)
    buf = io.BytesIO()
    pickle.dump({"magic": "online-gmm model", "format_version": 1, "model": b"x"}, buf, 2)
    path.write_bytes(buf.getvalue())
    assert read_header(path) == {"magic": "online-gmm model", "format_version": 1}


def test_zip_members_must_be_arrays(tmp_path):
    model, _ = _fitted()
    path = save(model, tmp_path / "m.npz")
    other = tmp_path / "renamed.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(other, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "state.nu.npy":
                data = b"not an npy file at all"
            dst.writestr(info, data)
    with pytest.raises(ValueError, match=r"member 'state\.nu' is damaged"):
        load(other)
