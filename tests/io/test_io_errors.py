"""Regressions of issue 14 (reliability, second round) in reading data and in the command
line's errors: a CSV with a UTF-8 byte-order mark keeps its first row (files and standard
input), and each unclear error became one line naming the file or the argument."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from online_gmm import OnlineGaussianMixture
from online_gmm.__main__ import main
from online_gmm._io.readers import iter_batches, load_matrix
from online_gmm._io.sources import DataError, Source

BOM = b"\xef\xbb\xbf"


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("online-gmm: error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def npy(tmp_path):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-5, 1, (100, 3)), rng.normal(5, 1, (100, 3))])
    path = tmp_path / "X.npy"
    np.save(path, X)
    return path


@pytest.fixture
def model_path(tmp_path, npy):
    path = tmp_path / "model.joblib"
    assert main(["fit", "-k", "2", "--random-state", "0", "-o", str(path), str(npy)]) == 0
    return path


# ---------------------------------------------------------------------- (3) the BOM
@pytest.mark.parametrize("text", [b"1,2\n3,4\n", b"a,b\n1,2\n3,4\n", b"1 2\n3 4\n"])
def test_a_bom_does_not_eat_the_first_row_of_a_file(tmp_path, text):
    path = tmp_path / "bom.csv"
    path.write_bytes(BOM + text)
    np.testing.assert_array_equal(load_matrix([Source(str(path), "csv")]), [[1, 2], [3, 4]])


def test_a_bom_does_not_eat_the_first_row_of_stdin(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO(BOM + b"1,2\n3,4\n"), encoding="utf-8")
    )
    assert load_matrix([Source("-", "csv")]).shape == (2, 2)
    # standard input decoded with surrogate escapes (a non-UTF-8 locale) keeps its rows too
    monkeypatch.setattr(
        sys, "stdin",
        io.TextIOWrapper(io.BytesIO(BOM + b"1,2\n3,4\n"), encoding="ascii",
                         errors="surrogateescape"),
    )
    assert load_matrix([Source("-", "csv")]).shape == (2, 2)
    # and through the command line: two rows in, two labels out
    out = tmp_path / "m.joblib"
    np.save(tmp_path / "X.npy", np.random.default_rng(0).normal(size=(50, 2)))
    assert main(["fit", "-k", "2", "-o", str(out), str(tmp_path / "X.npy")]) == 0
    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO(BOM + b"1,2\n3,4\n"), encoding="utf-8")
    )
    assert main(["predict", str(out), "-"]) == 0
    assert len(capsys.readouterr().out.split()) == 2


# ---------------------------------------------------------------------- (9) sample_weight
@pytest.mark.parametrize("dtype,weight,what", [
    (np.float64, 1e306, "sums to inf"),
    (np.float32, 1e39, "overflows float32"),
])
def test_weights_whose_sum_overflows_are_refused_by_name(dtype, weight, what):
    X = np.random.default_rng(0).normal(size=(400, 2)).astype(dtype)
    model = OnlineGaussianMixture(2, random_state=0)
    with pytest.raises(ValueError, match=f"sample_weight {what}"):
        model.partial_fit(X, sample_weight=np.full(400, weight))
    assert not hasattr(model, "_state")
    model.partial_fit(X, sample_weight=np.full(400, 1e300 if dtype == np.float64 else 1e30))


def test_the_dask_path_refuses_them_too():
    da = pytest.importorskip("dask.array")
    X = da.from_array(np.random.default_rng(0).normal(size=(400, 2)), chunks=100)
    with pytest.raises(ValueError, match="sample_weight sums to inf"):
        OnlineGaussianMixture(2).partial_fit(X, sample_weight=np.full(400, 1e306))


# ---------------------------------------------------------------------- (9) NaN / inf
@pytest.mark.parametrize("text,line,field,value", [
    ("1,2,3\nnan,1,2\n", 2, 1, "nan"),
    ("a,b,c\n# note\n\n1,2,3\n\n4,5,-inf # x\n", 6, 3, "-inf"),
    ("1,2,3\n4,1e999,6\n", 2, 2, "1e999"),
])
def test_nan_in_csv_names_file_and_line(tmp_path, capsys, text, line, field, value):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=rf"bad\.csv: line {line}, field {field}: not a finite"):
        load_matrix([Source(str(path), "csv")])
    assert main(["fit", "-k", "1", "-o", str(tmp_path / "m.joblib"), str(path)]) == 1
    err = capsys.readouterr().err
    if text.startswith("a,b,c"):  # the header's notice first (issue 31, item 8)
        notice, err = err.split("\n", 1)
        assert "line 1 ('a,b,c') is not all numbers: skipped as a header" in notice
    msg = _one_error_line(err)
    assert f"bad.csv: line {line}, field {field}" in msg and repr(value) in msg
    assert "scikit-learn" not in msg and len(msg) < 200


def test_nan_in_a_later_csv_chunk_names_the_right_line(tmp_path):
    rows = np.ones((1000, 2))
    rows[777, 1] = np.nan
    path = tmp_path / "long.csv"
    np.savetxt(path, rows, delimiter=",", header="x,y", comments="")
    with pytest.raises(DataError, match=r"line 779, field 2"):
        list(iter_batches([Source(str(path), "csv")], 64, _opts(block_rows=256)))


def _opts(**kw):
    from online_gmm._io.sources import ReadOptions

    return ReadOptions(**kw)


def test_nan_in_npy_names_file_row_and_column(tmp_path, capsys):
    X = np.ones((300, 3))
    X[257, 2] = np.inf
    path = tmp_path / "inf.npy"
    np.save(path, X)
    with pytest.raises(DataError, match=r"inf\.npy: row 257, column 2 \(0-based\) is inf"):
        list(iter_batches([Source(str(path), "npy")], 64, _opts(block_rows=256)))
    assert main(["fit", "-k", "1", "-o", str(tmp_path / "m.joblib"), str(path)]) == 1
    assert "inf.npy: row 257" in _one_error_line(capsys.readouterr().err)


# ---------------------------------------------------------------------- (9) empty .npy
def test_an_empty_npy_file_is_named(tmp_path, model_path, capsys):
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    assert main(["fit", "-k", "2", "-o", str(tmp_path / "m2.joblib"), str(empty)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "empty.npy" in line and "empty" in line and "EOFError" not in line
    assert main(["predict", str(model_path), str(empty)]) == 1
    assert "empty.npy" in _one_error_line(capsys.readouterr().err)
    assert main(["diagnose", str(model_path), "--weights", str(empty)]) == 1
    assert "empty.npy" in _one_error_line(capsys.readouterr().err)


# ---------------------------------------------------------------------- (9) features
@pytest.mark.parametrize("command", ["predict", "score", "partial-fit"])
def test_a_wrong_feature_count_names_the_file(tmp_path, model_path, npy, capsys, command):
    wrong = tmp_path / "five.npy"
    np.save(wrong, np.zeros((10, 5)))
    stamp = model_path.read_bytes()
    assert main([command, str(model_path), str(wrong)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "five.npy: 5 columns, but the model has 3 features" in line
    assert model_path.read_bytes() == stamp


def test_a_wrong_feature_count_on_stdin_names_stdin(model_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"1,2\n"), encoding="utf-8"))
    assert main(["predict", str(model_path), "-"]) == 1
    assert "<stdin>: 2 columns, but the model has 3" in _one_error_line(capsys.readouterr().err)


# ---------------------------------------------------------------------- (9) -k 10**30
@pytest.mark.parametrize("argv", [
    ["-k", str(10**30)],
    ["-k", str(2**62)],
    ["--batch-size", str(10**30)],
    ["--random-state", str(2**32)],
    ["--random-state", "-1"],
])
def test_integer_options_numpy_cannot_use_are_usage_errors(tmp_path, npy, capsys, argv):
    out = tmp_path / "m.joblib"
    assert main(["fit", *argv, "-o", str(out), str(npy)]) == 2
    err = capsys.readouterr().err
    assert "usage: online-gmm fit" in err and argv[0] in err
    assert not out.exists()


def test_sample_seed_out_of_range_is_a_usage_error(model_path, capsys):
    assert main(["sample", str(model_path), "--random-state", str(2**32)]) == 2
    assert "--random-state" in capsys.readouterr().err


# ---------------------------------------------------------------------- (9) read-only -o
def _deny_writes_in(monkeypatch, directory):
    """Creating a file in ``directory`` fails as in a read-only directory (root can write
    anywhere a chmod forbids, so the refusal is simulated where the files are created)."""
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kw):
        if dir is not None and os.path.realpath(dir) == os.path.realpath(directory):
            name = os.path.join(dir, f"{kw.get('prefix', '')}xyz{kw.get('suffix', '')}")
            raise PermissionError(13, "Permission denied", name)
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("command", ["fit", "partial-fit"])
def test_an_unwritable_output_fails_before_any_work_naming_the_target(
    tmp_path, npy, model_path, monkeypatch, capsys, command
):
    ro = tmp_path / "ro"
    ro.mkdir()
    target = ro / "m.joblib"
    steps = []
    real = OnlineGaussianMixture.partial_fit
    monkeypatch.setattr(OnlineGaussianMixture, "partial_fit",
                        lambda self, *a, **k: steps.append(1) or real(self, *a, **k))
    _deny_writes_in(monkeypatch, ro)
    if command == "fit":
        argv = ["fit", "-k", "2", "-o", str(target), str(npy)]
    else:
        argv = ["partial-fit", str(model_path), str(npy), "-o", str(target)]
    assert main(argv) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert str(target) in line and "permission denied" in line
    assert ".tmp-" not in line
    assert steps == []  # refused before reading or fitting anything
    assert not target.exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only directories")
def test_a_really_read_only_directory(tmp_path, npy, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["fit", "-k", "2", "-o", str(ro / "m.joblib"), str(npy)]) == 1
        line = _one_error_line(capsys.readouterr().err)
        assert str(ro / "m.joblib") in line and ".tmp-" not in line
    finally:
        ro.chmod(0o755)



def test_a_npy_file_read_as_npz_is_a_one_line_error(npy, tmp_path, capsys):
    status = main(["fit", "--format", "npz", str(npy), "-k", "2", "-o", str(tmp_path / "m")])
    assert status == 1
    line = _one_error_line(capsys.readouterr().err)
    assert str(npy) in line and "not an .npz archive" in line


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_key_without_an_npz_file_is_a_usage_error(tmp_path, npy, model_path, capsys, command):
    """``--key`` names an array of an .npz archive: with only .npy (or CSV) DATA it would be
    ignored, so it is refused, naming the formats read; beside an .npz file it applies."""
    out = tmp_path / "out.npy"
    argv = (["fit", "-k", "2", "-o", str(out)] if command == "fit"
            else ["predict", str(model_path), "-o", str(out)])
    assert main([*argv, "--key", "a", str(npy)]) == 2
    err = capsys.readouterr().err
    assert "--key" in err and "npy" in err
    assert not out.exists()
    archive = tmp_path / "X.npz"
    np.savez(archive, a=np.load(npy))
    assert main([*argv, "--key", "a", str(npy), str(archive)]) == 0


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32",
                    reason="POSIX signals")
@pytest.mark.parametrize("command", ["predict", "sample"])
def test_sigterm_mid_output_leaves_no_temporary_file(tmp_path, model_path, command):
    """SIGTERM while ``predict`` (or ``sample``) writes its output: the process dies of the
    signal, as it would have, and neither the output nor its temporary file is left."""
    out = tmp_path / "out" / "result.npy"
    out.parent.mkdir()
    if command == "predict":
        big = tmp_path / "big.npy"
        np.save(big, np.random.default_rng(0).normal(size=(1_000_000, 3)))
        argv = ["predict", str(model_path), str(big), "--batch-size", "100", "-o", str(out)]
    else:
        argv = ["sample", str(model_path), "--n-samples", str(10**9), "-o", str(out)]
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root),
                                                         os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "online_gmm", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    def writing() -> bool:  # the temporary file holds a header: the output is under way
        # (not the empty probe of the directory's writability, created and removed first)
        for p in out.parent.iterdir():
            try:
                if p.stat().st_size > 0:
                    return True
            except FileNotFoundError:  # (the probe, removed meanwhile)
                pass
        return False

    try:
        deadline = time.monotonic() + 300
        while not writing() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert writing(), (proc.poll(), os.listdir(out.parent))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGTERM, err
    assert os.listdir(out.parent) == []


def test_key_applies_to_data_not_to_a_means_init_file(tmp_path, npy):
    """``--key`` picks the array of the .npz DATA; a ``--means-init`` .npy beside it is
    read as it is (the rule is about DATA)."""
    archive = tmp_path / "X.npz"
    np.savez(archive, a=np.load(npy))
    init = tmp_path / "init.npy"
    np.save(init, np.array([[-5.0, -5.0, -5.0], [5.0, 5.0, 5.0]]))
    out = tmp_path / "m.npz"
    assert main(["fit", "-k", "2", "--key", "a", "--means-init", str(init), "-o", str(out),
                 str(archive)]) == 0


def test_a_second_signal_does_not_interrupt_the_clean_up():
    """Once the guard has raised for a signal, a second one (SIGHUP then SIGTERM, say) is
    only recorded: the writer's clean-up runs to its end."""
    from online_gmm._io.signals import SignalGuard, Terminated

    guard = SignalGuard()
    guard.arm()
    with pytest.raises(Terminated):
        guard.handler(signal.SIGHUP, None)
    guard.handler(signal.SIGTERM, None)  # (no exception)
    assert guard.received == [signal.SIGHUP, signal.SIGTERM]
