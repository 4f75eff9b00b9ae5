"""The ``online-gmm`` command line: every subcommand, every input format, exit statuses."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from online_gmm import OnlineGaussianMixture
from online_gmm.__main__ import main
from online_gmm._cli.output import Progress
from online_gmm._io import readers as _readers
from online_gmm._io import sources as _sources
from online_gmm._io.persistence import load, save
from online_gmm.diagnostics import collapse_report, format_report

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["demo", "fit", "partial-fit", "predict", "score", "sample", "diagnose"]


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[-6.0, 0.0, 2.0], [6.0, 1.0, -2.0]])
    X = centres[rng.integers(0, 2, n)] + rng.standard_normal((n, 3))
    return X


@pytest.fixture
def X():
    return _data()


@pytest.fixture
def npy(tmp_path, X):
    path = tmp_path / "X.npy"
    np.save(path, X)
    return path


@pytest.fixture
def model_path(tmp_path, npy):
    path = tmp_path / "model.joblib"
    assert main(["fit", "-k", "2", "--random-state", "0", "-o", str(path), str(npy)]) == 0
    return path


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def _csv_rows(text: str) -> np.ndarray:
    return np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("online-gmm: error: ")
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------------- help and usage
@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_everywhere(command, capsys):
    argv = ["--help"] if command is None else [command, "--help"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: online-gmm")


def test_version(capsys):
    from online_gmm import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"online-gmm {__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["no-such-command"],
        ["fit", "--no-such-option", "x.npy", "-o", "m.joblib"],
        ["fit", "x.npy"],  # -o is required
        ["fit", "--covariance-type", "banana", "-o", "m.joblib", "x.npy"],
        ["fit", "-k", "two", "-o", "m.joblib", "x.npy"],
        ["diagnose", "m.npy", "--eps", "3"],
        ["predict", "m.joblib", "x.npy", "--batch-size", "0"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: online-gmm" in err and "error:" in err


def test_invalid_hyper_parameter_is_a_usage_error(npy, tmp_path, capsys):
    out = tmp_path / "m.joblib"
    assert main(["fit", "-k", "0", "-o", str(out), str(npy)]) == 2
    assert "n_components" in capsys.readouterr().err
    assert main(["fit", "--forgetting-rate", "1.5", "-o", str(out), str(npy)]) == 2
    assert not out.exists()


def test_demo_runs_the_builtin_demo(monkeypatch):
    calls = []
    monkeypatch.setattr("online_gmm._cli.demo.run_demo", lambda: calls.append(1))
    assert main(["demo"]) == 0
    assert calls == [1]


# ---------------------------------------------------------------------- fit
def test_fit_streams_partial_fit_like_the_api(npy, X, tmp_path):
    out = tmp_path / "m.joblib"
    argv = ["fit", "-k", "2", "--batch-size", "100", "--random-state", "3", "--epochs", "2"]
    assert main([*argv, "--forgetting-rate", "0.01", "-o", str(out), str(npy)]) == 0
    model = load(out)
    ref = OnlineGaussianMixture(2, batch_size=100, random_state=3, forgetting_rate=0.01)
    for _ in range(2):
        for start in range(0, len(X), 100):
            ref.partial_fit(X[start : start + 100])
    np.testing.assert_array_equal(model.means_, ref.means_)
    assert model.n_steps_ == 12 and model.n_samples_seen_ == 1200
    assert model.forgetting_rate == 0.01


def test_fit_converge_loads_the_data_for_the_estimators_fit(npy, X, tmp_path):
    out = tmp_path / "m.joblib"
    argv = ["fit", "-k", "2", "--converge", "--random-state", "0", "--max-iter", "50"]
    assert main([*argv, "-q", "-o", str(out), str(npy)]) == 0
    ref = OnlineGaussianMixture(2, random_state=0, max_iter=50).fit(X)
    np.testing.assert_array_equal(load(out).means_, ref.means_)
    assert main([*argv, "--epochs", "2", "-o", str(out), str(npy)]) == 2


def test_fit_is_batch_em_by_passes_over_the_files(X, tmp_path):
    # two shards, read in batches of 128 rows at every pass: the estimator's fit of the rows
    np.save(tmp_path / "a.npy", X[:250])
    np.save(tmp_path / "b.npy", X[250:])
    out = tmp_path / "m.npz"
    argv = ["fit", "-k", "2", "--batch-size", "128", "--random-state", "0", "--tol", "1e-6"]
    assert main([*argv, "-q", "-o", str(out), str(tmp_path / "a.npy"),
                 str(tmp_path / "b.npy")]) == 0
    model = load(out)
    ref = OnlineGaussianMixture(2, random_state=0, tol=1e-6).fit(X)
    np.testing.assert_allclose(model.means_, ref.means_, rtol=1e-10)
    np.testing.assert_allclose(model.covariances_, ref.covariances_, rtol=1e-10)
    assert model.n_iter_ == ref.n_iter_ and model.converged_
    assert model.n_samples_seen_ == len(X)


def test_fit_over_files_holds_one_batch_at_a_time(X, tmp_path, monkeypatch):
    from online_gmm._em import batch as _batch_em

    np.save(tmp_path / "X.npy", X)
    seen = []
    original = _batch_em.Rows.statistics

    def spy(self, state, config, inv_temp):
        seen.append(self.n_samples)
        return original(self, state, config, inv_temp)

    monkeypatch.setattr(_batch_em.Rows, "statistics", spy)
    argv = ["fit", "-k", "2", "--batch-size", "100", "--random-state", "0", "-q"]
    assert main([*argv, "-o", str(tmp_path / "m.npz"), str(tmp_path / "X.npy")]) == 0
    model = load(tmp_path / "m.npz")
    assert seen and max(seen) == 100 and sum(seen) == model.n_iter_ * len(X)


def test_fit_of_data_read_once_is_one_online_pass_with_a_notice(X, tmp_path, monkeypatch,
                                                                 capsys):
    text = "\n".join(",".join(f"{v:.17g}" for v in row) for row in X).encode() + b"\n"
    _stdin(monkeypatch, text)
    out = tmp_path / "m.npz"
    assert main(["fit", "-k", "2", "--random-state", "0", "-o", str(out), "-"]) == 0
    err = capsys.readouterr().err
    assert "read only once" in err and "one online pass" in err
    model = load(out)
    ref = OnlineGaussianMixture(2, random_state=0)
    for start in range(0, len(X), ref.batch_size):
        ref.partial_fit(X[start : start + ref.batch_size])
    np.testing.assert_allclose(model.means_, ref.means_, rtol=1e-12)
    assert model.n_steps_ == ref.n_steps_


def test_fit_means_init(npy, tmp_path):
    init = tmp_path / "init.csv"
    np.savetxt(init, [[-6.0, 0.0, 2.0], [6.0, 1.0, -2.0]], delimiter=",")
    out = tmp_path / "m.joblib"
    assert main(["fit", "-k", "2", "--means-init", str(init), "-o", str(out), str(npy)]) == 0
    means = load(out).means_
    assert means[0, 0] < 0 < means[1, 0]


# ---------------------------------------------------------------------- input formats
def _means_after_fit(tmp_path, *data, extra=()):
    out = tmp_path / "fmt.joblib"
    # (one online pass: the same rows in the same batches, whatever the format; standard
    # input can give no other)
    argv = ["fit", "-k", "2", "--random-state", "0", "--batch-size", "128", "--epochs", "1",
            *extra]
    assert main([*argv, "-o", str(out), *map(str, data)]) == 0
    return load(out).means_


def test_every_input_format_gives_the_same_model(tmp_path, npy, X, monkeypatch):
    ref = _means_after_fit(tmp_path, npy)
    # .npz: the only array, or the one named by --key
    np.savez(tmp_path / "one.npz", data=X)
    np.testing.assert_array_equal(_means_after_fit(tmp_path, tmp_path / "one.npz"), ref)
    np.savez(tmp_path / "two.npz", a=X, b=X[:5])
    two = tmp_path / "two.npz"
    np.testing.assert_array_equal(_means_after_fit(tmp_path, two, extra=["--key", "a"]), ref)
    # CSV with a header (auto-detected), TSV, whitespace .txt, a numeric header skipped
    np.savetxt(tmp_path / "h.csv", X, delimiter=",", header="a,b,c", comments="", fmt="%.17g")
    np.testing.assert_array_equal(_means_after_fit(tmp_path, tmp_path / "h.csv"), ref)
    np.savetxt(tmp_path / "X.tsv", X, delimiter="\t", fmt="%.17g")
    np.testing.assert_array_equal(_means_after_fit(tmp_path, tmp_path / "X.tsv"), ref)
    np.savetxt(tmp_path / "X.txt", X, fmt="%.17g")
    np.testing.assert_array_equal(_means_after_fit(tmp_path, tmp_path / "X.txt"), ref)
    np.savetxt(tmp_path / "n.csv", X, delimiter=";", header="1;2;3", comments="", fmt="%.17g")
    got = _means_after_fit(
        tmp_path, tmp_path / "n.csv", extra=["--skip-header", "--delimiter", ";"]
    )
    np.testing.assert_array_equal(got, ref)
    # standard input: CSV, or a binary .npy stream with --format npy
    _stdin(monkeypatch, (tmp_path / "h.csv").read_bytes())
    np.testing.assert_array_equal(_means_after_fit(tmp_path, "-"), ref)
    _stdin(monkeypatch, npy.read_bytes())
    np.testing.assert_array_equal(_means_after_fit(tmp_path, "-", extra=["--format", "npy"]), ref)
    # a directory of shards, a glob pattern, and several files
    shards = tmp_path / "shards"
    shards.mkdir()
    for i, part in enumerate(np.array_split(X, 7)):
        np.save(shards / f"part-{i:03d}.npy", part)
    np.testing.assert_array_equal(_means_after_fit(tmp_path, shards), ref)
    pattern = str(shards / "part-*.npy")
    np.testing.assert_array_equal(_means_after_fit(tmp_path, pattern), ref)
    files = sorted(shards.glob("*.npy"))
    np.testing.assert_array_equal(_means_after_fit(tmp_path, *files), ref)


def test_shards_are_streamed_one_at_a_time(tmp_path, X, monkeypatch):
    shards = tmp_path / "shards"
    shards.mkdir()
    rows = 120
    for i in range(5):
        np.save(shards / f"s{i}.npy", X[i * rows : (i + 1) * rows])
    events: list[tuple[str, int]] = []
    fed = [0]
    original_open = _readers._open_npy

    def recording_open(path):
        arr = original_open(path)
        assert isinstance(arr, np.memmap)  # mapped, not read
        events.append(("open", fed[0]))
        return arr

    original_partial_fit = OnlineGaussianMixture.partial_fit

    def recording_partial_fit(self, batch, *args, **kwargs):
        assert isinstance(batch, np.ndarray) and not isinstance(batch, np.memmap)
        assert len(batch) <= 32
        fed[0] += len(batch)
        return original_partial_fit(self, batch, *args, **kwargs)

    monkeypatch.setattr(_readers, "_open_npy", recording_open)
    monkeypatch.setattr(OnlineGaussianMixture, "partial_fit", recording_partial_fit)
    out = tmp_path / "m.joblib"
    argv = ["fit", "-k", "2", "--batch-size", "32", "--epochs", "1"]
    assert main([*argv, "-o", str(out), str(shards)]) == 0
    assert fed[0] == 5 * rows
    opens = [n for kind, n in events if kind == "open"]
    assert len(opens) == 5
    # shard i is opened only once the rows of the shards before it have (but for at most one
    # pending batch) gone into the model: never more than one shard in flight.
    for i, n_fed in enumerate(opens):
        assert i * rows - 32 < n_fed <= i * rows


def test_batches_run_across_sources(tmp_path):
    for i, n in enumerate([3, 10, 1, 6]):
        np.save(tmp_path / f"s{i}.npy", np.full((n, 2), float(i), dtype=np.float32))
    sources = _sources.expand_sources([str(tmp_path)])
    batches = list(_readers.iter_batches(sources, 4))
    assert [len(b) for b in batches] == [4, 4, 4, 4, 4]
    np.testing.assert_array_equal(
        np.concatenate(batches)[:, 0], np.repeat([0, 1, 2, 3], [3, 10, 1, 6])
    )
    assert all(b.dtype == np.float32 for b in batches)
    np.save(tmp_path / "s9.npy", np.zeros((2, 3)))
    with pytest.raises(_sources.DataError, match="columns"):
        list(_readers.iter_batches(_sources.expand_sources([str(tmp_path)]), 4))
    with pytest.raises(ValueError):
        next(_readers.iter_batches(sources, 0))


def test_stdin_only_once_and_one_epoch(npy, tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "m.joblib")
    _stdin(monkeypatch, b"1,2,3\n")
    assert main(["fit", "-o", out, "-", "-"]) == 2
    assert main(["fit", "--epochs", "2", "-o", out, "-"]) == 2
    assert "only once" in capsys.readouterr().err


# ---------------------------------------------------------------------- partial-fit
def test_partial_fit_in_place_and_to_output(model_path, npy, tmp_path):
    before = load(model_path)
    assert main(["partial-fit", str(model_path), str(npy), "--batch-size", "200"]) == 0
    after = load(model_path)
    assert after.n_samples_seen_ == before.n_samples_seen_ + 600
    assert after.n_steps_ == before.n_steps_ + 3
    ref = before
    for start in range(0, 600, 200):
        ref.partial_fit(np.load(npy)[start : start + 200])
    np.testing.assert_array_equal(after.means_, ref.means_)
    other = tmp_path / "v2.joblib"
    assert main(["partial-fit", str(model_path), str(npy), "-o", str(other), "--epochs", "2"]) == 0
    assert load(other).n_samples_seen_ == after.n_samples_seen_ + 1200
    assert load(model_path).n_samples_seen_ == after.n_samples_seen_  # untouched
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_partial_fit_failure_leaves_the_model_untouched(model_path, tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 5)))  # wrong number of features
    stamp = model_path.read_bytes()
    assert main(["partial-fit", str(model_path), str(bad)]) == 1
    assert "features" in _one_error_line(capsys.readouterr().err)
    assert model_path.read_bytes() == stamp
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


# ---------------------------------------------------------------------- predict / score
def test_predict_outputs(model_path, npy, X, tmp_path, capsys):
    model = load(model_path)
    assert main(["predict", str(model_path), str(npy)]) == 0
    labels = _csv_rows(capsys.readouterr().out).ravel()
    np.testing.assert_array_equal(labels, model.predict(X))
    out_npy = tmp_path / "labels.npy"
    assert (
        main(["predict", str(model_path), str(npy), "-o", str(out_npy), "--batch-size", "7"]) == 0
    )
    np.testing.assert_array_equal(np.load(out_npy), model.predict(X))
    out_csv = tmp_path / "proba.csv"
    assert main(["predict", str(model_path), str(npy), "--proba", "-o", str(out_csv)]) == 0
    np.testing.assert_array_equal(
        np.loadtxt(out_csv, delimiter=",", ndmin=2), model.predict_proba(X)
    )  # float64 written with round-trip precision
    out_proba = tmp_path / "proba.npy"
    assert main(["predict", str(model_path), str(npy), "--proba", "-o", str(out_proba)]) == 0
    np.testing.assert_array_equal(np.load(out_proba), model.predict_proba(X))


def test_predict_bad_output_extension_is_usage_error(model_path, npy, capsys):
    assert main(["predict", str(model_path), str(npy), "-o", "labels.xyz"]) == 2
    assert "extension" in capsys.readouterr().err


def test_score_mean_and_per_sample(model_path, npy, X, tmp_path, capsys, monkeypatch):
    model = load(model_path)
    assert main(["score", str(model_path), str(npy), "--batch-size", "64"]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(model.score(X), rel=1e-12)
    per = tmp_path / "ll.npy"
    assert main(["score", str(model_path), str(npy), "-o", str(per)]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(model.score(X), rel=1e-12)
    np.testing.assert_array_equal(np.load(per), model.score_samples(X))
    buf = io.StringIO()
    np.savetxt(buf, X[:4], delimiter=",", fmt="%.17g")
    _stdin(monkeypatch, buf.getvalue().encode())
    assert main(["score", str(model_path), "-", "-o", "-"]) == 0
    np.testing.assert_array_equal(
        _csv_rows(capsys.readouterr().out).ravel(), model.score_samples(X[:4])
    )


def test_float32_data_keeps_its_dtype(model_path, X, tmp_path):
    x32 = tmp_path / "x32.npy"
    np.save(x32, X.astype(np.float32))
    out = tmp_path / "ll32.npy"
    assert main(["score", str(model_path), str(x32), "-o", str(out)]) == 0
    assert np.load(out).dtype == np.float32
    assert main(["score", str(model_path), str(x32), "-o", str(out), "--dtype", "float64"]) == 0
    assert np.load(out).dtype == np.float64


def test_failed_output_leaves_no_file(model_path, npy, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n4,5,6\n7,oops,9\n")
    out = tmp_path / "labels.npy"
    assert main(["predict", str(model_path), str(npy), str(bad), "-o", str(out)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "bad.csv: line 3, field 2: not a number" in line
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


# ---------------------------------------------------------------------- sample
def test_sample(model_path, tmp_path, capsys):
    assert main(["sample", str(model_path), "-n", "5", "--random-state", "1"]) == 0
    first = _csv_rows(capsys.readouterr().out)
    assert first.shape == (5, 3)
    out, lab = tmp_path / "s.npy", tmp_path / "y.csv"
    argv = ["sample", str(model_path), "-n", "5", "--random-state", "1"]
    assert main([*argv, "-o", str(out), "--labels", str(lab)]) == 0
    np.testing.assert_array_equal(np.load(out), first)
    y = np.loadtxt(lab, dtype=int, ndmin=1)
    assert y.shape == (5,) and set(y) <= {0, 1}
    assert main(["sample", str(model_path), "-n", "0"]) == 2


# ---------------------------------------------------------------------- diagnose
def test_diagnose_model_and_matrix(model_path, tmp_path, capsys):
    model = load(model_path)
    assert main(["diagnose", str(model_path)]) == 0
    expected = format_report(collapse_report(model.means_, model.weights_))
    assert capsys.readouterr().out.strip() == expected
    C = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [-1.0, 0.0]])
    np.save(tmp_path / "C.npy", C)
    np.savetxt(tmp_path / "w.csv", [0.5, 0.5, 0.0, 0.0])
    argv = ["diagnose", str(tmp_path / "C.npy"), "--eps", "0.025", "1.5"]
    assert main([*argv, "--weights", str(tmp_path / "w.csv")]) == 0
    expected = format_report(collapse_report(C, [0.5, 0.5, 0, 0], eps=(0.025, 1.5)))
    assert capsys.readouterr().out.strip() == expected
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_prototypes"] == 4 and report["unique"] == {"0.025": 3, "1.5": 2}


# ---------------------------------------------------------------------- runtime errors
def test_runtime_errors_are_one_line_exit_1(model_path, npy, tmp_path, capsys):
    cases = [
        ["predict", str(model_path), str(tmp_path / "missing.npy")],
        ["predict", str(tmp_path / "missing.joblib"), str(npy)],
        ["fit", "-o", str(tmp_path / "no" / "dir" / "m.joblib"), str(npy)],
        ["fit", "-o", str(tmp_path / "m.joblib"), str(tmp_path / "*.nomatch")],
        ["fit", "-o", str(tmp_path / "m.joblib"), str(tmp_path / "data.bin")],
    ]
    (tmp_path / "data.bin").write_bytes(b"\0\1")
    for argv in cases:
        assert main(argv) == 1, argv
        _one_error_line(capsys.readouterr().err)
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 3)), b=np.zeros((2, 3)))
    assert main(["score", str(model_path), str(tmp_path / "two.npz")]) == 1
    assert "--key" in _one_error_line(capsys.readouterr().err)
    np.save(tmp_path / "one_d.npy", np.zeros(5))
    assert main(["score", str(model_path), str(tmp_path / "one_d.npy")]) == 1
    assert "2-D" in _one_error_line(capsys.readouterr().err)
    (tmp_path / "empty.csv").write_text("a,b,c\n")
    assert main(["fit", "-o", str(tmp_path / "m.joblib"), str(tmp_path / "empty.csv")]) == 1
    notice, error = capsys.readouterr().err.strip().splitlines()  # (why there is no row)
    assert "line 1 ('a,b,c') is not all numbers: skipped as a header" in notice
    assert "no data" in _one_error_line(error)


def test_not_a_model_and_incompatible_version(model_path, npy, tmp_path, capsys, monkeypatch):
    junk = tmp_path / "junk.joblib"
    joblib.dump({"not": "a model"}, junk)
    assert main(["predict", str(junk), str(npy)]) == 1
    assert "junk.joblib" in _one_error_line(capsys.readouterr().err)
    from online_gmm._io import npz_format as _npz_format

    future = tmp_path / "future.joblib"
    monkeypatch.setattr(_npz_format, "FORMAT_VERSION", 999)  # what save writes
    save(load(model_path), future)
    monkeypatch.undo()
    assert main(["diagnose", str(future)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "future.joblib" in line and "version" in line


def test_debug_shows_the_exception(model_path, tmp_path):
    with pytest.raises(_sources.DataError, match="missing.npy"):
        main(["predict", "--debug", str(model_path), str(tmp_path / "missing.npy")])


# ---------------------------------------------------------------------- progress
def test_progress_line():
    out = io.StringIO()
    clock = iter([0.0, 0.5, 2.0, 2.1, 3.0, 3.0])
    p = Progress(True, total=400, stream=out, clock=lambda: next(clock))
    p.update(100)  # before the delay: silent
    assert out.getvalue() == ""
    p.update(100, "epoch 1/2")
    assert out.getvalue() == "\r200 samples  100 samples/s  50%  epoch 1/2"
    p.update(100)  # within the redraw interval: silent
    p.update(100)
    assert out.getvalue().endswith("\r" + "400 samples  133 samples/s  100%".ljust(42))
    p.close()
    assert out.getvalue().endswith("\r")
    silent = io.StringIO()
    q = Progress(False, stream=silent)
    q.update(10**9)
    q.close()
    assert silent.getvalue() == ""


def test_quiet_when_not_a_tty(npy, tmp_path, capsys):
    assert main(["fit", "-k", "2", "-o", str(tmp_path / "m.joblib"), str(npy)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ---------------------------------------------------------------------- real processes
def test_real_processes_exit_codes_and_streams(model_path, tmp_path):
    """``python -m online_gmm`` as scripts see it; the three processes run side by side."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }

    def start(*args):
        return subprocess.Popen(
            [sys.executable, "-m", "online_gmm", *args],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    ok = start("predict", str(model_path), "-")
    failing = start("predict", "missing.joblib", "missing.npy")
    misused = start("score", "--bogus")
    out, err = ok.communicate(b"-6,0,2\n6,1,-2\n", timeout=120)
    assert ok.returncode == 0, err
    assert err == b""  # quiet: standard error is not a terminal
    labels = out.split()
    assert len(labels) == 2 and labels[0] != labels[1]

    out, err = failing.communicate(timeout=120)
    assert failing.returncode == 1
    assert out == b""
    assert "missing.joblib" in _one_error_line(err.decode())

    out, err = misused.communicate(timeout=120)
    assert misused.returncode == 2
    assert b"usage: online-gmm score" in err and b"online-gmm score: error:" in err
