"""Regressions of issue 28 (reliability, third round) in the command line: outputs that are
inputs (9), saving through a symbolic link (10), a read-once DATA read by several epochs
(11), unclear errors for a huge ``-k`` and a ``.npy`` on a pipe (12)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from online_gmm import OnlineGaussianMixture, load, save
from online_gmm.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def files(tmp_path):
    X = np.random.default_rng(0).normal(size=(200, 3))
    np.save(tmp_path / "X.npy", X)
    model = OnlineGaussianMixture(2, random_state=0).partial_fit(X)
    save(model, tmp_path / "m.npz")
    return tmp_path, X


def _usage_error(capsys, argv, *words) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for w in words:
        assert w in err, err
    return err


# ---------------------------------------------------------------------- (9) outputs
def test_an_output_that_is_an_input_is_a_usage_error_before_any_work(files, capsys):
    d, X = files
    before = {p: p.read_bytes() for p in (d / "X.npy", d / "m.npz")}
    alias = d / "sub" / ".." / "X.npy"
    (d / "sub").mkdir()
    os.symlink(d / "X.npy", d / "link.npy")
    os.link(d / "m.npz", d / "hard.npz")
    cases = [
        ["fit", d / "X.npy", "-k", "2", "-o", d / "X.npy"],
        ["fit", d / "X.npy", "-k", "2", "-o", alias],
        ["fit", d / "link.npy", "-k", "2", "-o", d / "X.npy"],
        ["fit", d, "-k", "2", "-o", d / "X.npy"],  # a directory of shards
        ["partial-fit", d / "m.npz", d / "X.npy", "-o", d / "X.npy"],
        ["predict", d / "m.npz", d / "X.npy", "-o", d / "m.npz"],
        ["predict", d / "m.npz", d / "X.npy", "-o", d / "hard.npz"],
        ["predict", d / "m.npz", d / "X.npy", "-o", d / "X.npy"],
        ["score", d / "m.npz", d / "X.npy", "-o", d / "link.npy"],
        ["sample", d / "m.npz", "-o", d / "m.npz"],
    ]
    for argv in cases:
        _usage_error(capsys, argv, "an output must not be one of the inputs")
    _usage_error(capsys, ["sample", d / "m.npz", "-o", d / "s.npy", "--labels", d / "s.npy"],
                 "are the same file")
    assert {p: p.read_bytes() for p in before} == before
    assert not (d / "s.npy").exists()
    # distinct files still work, and partial-fit in place is not an output that is DATA
    assert main(["partial-fit", str(d / "m.npz"), str(d / "X.npy")]) == 0
    assert main(["predict", str(d / "m.npz"), str(d / "X.npy"), "-o", str(d / "y.npy")]) == 0


# ---------------------------------------------------------------------- (10) links
def test_saving_through_a_symlink_keeps_the_link_and_writes_its_target(files, capsys):
    d, X = files
    (d / "runs").mkdir()
    target = d / "runs" / "v3.npz"
    save(load(d / "m.npz"), target)
    link = d / "latest.npz"
    os.symlink(os.path.join("runs", "v3.npz"), link)  # a relative link
    assert main(["partial-fit", str(link), str(d / "X.npy")]) == 0
    assert link.is_symlink() and os.readlink(link) == os.path.join("runs", "v3.npz")
    assert load(target).n_samples_seen_ == 400
    # the library's save too, and the array writers
    model = load(link)
    model.partial_fit(X)
    save(model, link)
    assert link.is_symlink() and load(target).n_samples_seen_ == 600
    out = d / "runs" / "labels.npy"
    os.symlink(out, d / "labels.npy")
    assert main(["predict", str(link), str(d / "X.npy"), "-o", str(d / "labels.npy")]) == 0
    assert (d / "labels.npy").is_symlink() and np.load(out).shape == (200,)
    assert not [p for p in os.listdir(d) + os.listdir(d / "runs") if p.startswith(".tmp")]


# ---------------------------------------------------------------------- (11) read once
def test_a_fifo_with_several_epochs_is_refused_without_opening_it(files, capsys):
    d, _ = files
    fifo = d / "rows.npy"
    os.mkfifo(fifo)
    # a FIFO with no writer: opening it would block; the check must not open it
    done = []
    t = threading.Thread(daemon=True, target=lambda: done.append(main(
        ["fit", str(fifo), "-k", "2", "--epochs", "3", "-o", str(d / "out.npz")])))
    t.start()
    t.join(60)
    assert not t.is_alive(), "the command blocked on the FIFO"
    assert done == [2]
    err = capsys.readouterr().err
    assert "rows.npy (not a regular file) can be read only once" in err
    assert "--epochs must be 1" in err
    assert main(["partial-fit", str(d / "m.npz"), str(fifo), "--epochs", "2"]) == 2


def _cli(*argv, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "online_gmm", *map(str, argv)], input=stdin,
                          capture_output=True, cwd=ROOT, timeout=300)


def test_dev_stdin_with_several_epochs_is_refused(files):
    d, X = files
    csv = "\n".join(",".join(map(str, r)) for r in X).encode()
    res = _cli("fit", "/dev/stdin", "--format", "csv", "-k", "2", "--epochs", "3", "-o",
               d / "out.npz", stdin=csv)
    assert res.returncode == 2, res.stderr
    assert b"can be read only once" in res.stderr
    assert not (d / "out.npz").exists()


# ---------------------------------------------------------------------- (12) messages
@pytest.mark.parametrize("k", [10**18, 10**15])
def test_a_huge_k_is_a_usage_error_naming_it(files, capsys, k):
    d, _ = files
    _usage_error(capsys, ["fit", d / "X.npy", "-k", k, "-o", d / "out.npz"],
                 "-k/--n-components is too large")
    assert not (d / "out.npz").exists()


def test_predict_reads_an_npy_on_a_pipe_as_a_stream(files):
    d, X = files
    res = _cli("predict", d / "m.npz", "/dev/stdin", "--format", "npy", "-o", d / "y.npy",
               stdin=(d / "X.npy").read_bytes())
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(np.load(d / "y.npy"), load(d / "m.npz").predict(X))


# ---------------------------------------------------------------------- issue 31, item 8
def test_a_skipped_csv_header_is_said_on_stderr_once(tmp_path, capsys):
    from online_gmm.__main__ import main

    bad = tmp_path / "bad.csv"  # a first data row with a bad field: not dropped silently
    bad.write_text("1,2,oops\n" + "\n".join(f"{i},{i % 3},{i % 5}" for i in range(60)) + "\n")
    assert main(["fit", "-k", "2", "--random-state", "0", "-o", str(tmp_path / "m.npz"),
                 str(bad)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # once, though EM reads the file at every pass
    assert err[0].startswith("online-gmm: warning: ")
    assert "bad.csv: line 1 ('1,2,oops')" in err[0] and "skipped as a header" in err[0]
    assert "field 3 is not a number" in err[0]
    header = tmp_path / "h.csv"
    header.write_text("a,b,c\n" + "\n".join(f"{i},{i % 3},{i % 5}" for i in range(60)) + "\n")
    for before, after, expected in (([], [], 1), ([], ["--skip-header"], 0), (["-q"], [], 0)):
        assert main([*before, "fit", *after, "-k", "2", "-o", str(tmp_path / "m.npz"),
                     str(header)]) == 0
        err = capsys.readouterr().err
        assert err.count("skipped as a header") == expected, (before, after, err)
        assert "field" not in err  # a header of names is not "a data row with a bad field"


def test_a_missing_file_is_said_in_one_casing(tmp_path, capsys):
    from online_gmm.__main__ import main

    missing = str(tmp_path / "missing.npy")
    for argv in (["fit", "-k", "2", "-o", str(tmp_path / "m.npz"), missing],
                 ["predict", missing, missing], ["diagnose", str(tmp_path / "missing")]):
        assert main(argv) != 0
        err = capsys.readouterr().err
        assert "no such file or directory" in err and "No such" not in err, (argv, err)


def test_warmup_size_takes_auto_as_its_help_says(tmp_path, capsys):
    # (issue 31, item 4: "(default: auto)", and "auto" was refused as "invalid int value")
    from online_gmm._io.persistence import load

    data = tmp_path / "X.npy"
    np.save(data, np.random.default_rng(0).normal(size=(200, 3)))
    assert main(["fit", "--help"]) == 0
    assert "--warmup-size N|auto" in capsys.readouterr().out
    for value, expected in (("auto", "auto"), ("AUTO", "auto"), ("0", 0), ("96", 96)):
        out = tmp_path / f"m{value}.npz"
        assert main(["fit", "-k", "2", "--warmup-size", value, "-o", str(out), str(data)]) == 0
        assert load(out).warmup_size == expected
    for bad in ("x", "-1", "1.5"):
        assert main(["fit", "-k", "2", "--warmup-size", bad, "-o", str(tmp_path / "m.npz"),
                     str(data)]) == 2
        err = capsys.readouterr().err
        assert "warmup" in err and "invalid int value" not in err, err
