"""Start-up: ``import online_gmm`` and ``online-gmm --help`` import no heavy library, and a
Ctrl-C while the command line starts ends as one later in the run does (one line, 130).

Wall times are not asserted (shared machines); what is imported is (``python -X importtime``
in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "scipy", "sklearn", "numba", "joblib", "torch", "dask")


def _python(*args: str, code: str | None = None, timeout: float = 120):
    argv = [sys.executable, *args] + (["-c", code] if code is not None else [])
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _imported(stderr: str) -> set[str]:
    """Top-level packages in a ``-X importtime`` report."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name.split(".")[0])
    return names


@pytest.mark.parametrize(
    "argv, status",
    [
        (["--help"], 0),
        (["--version"], 0),
        (["fit", "--help"], 0),  # the estimator options come from the parameter table
        (["diagnose", "--help"], 0),
        (["fit"], 2),  # a usage error
        (["no-such-command"], 2),
    ],
)
def test_help_version_and_usage_errors_import_no_heavy_library(argv, status):
    proc = _python("-X", "importtime", "-m", "online_gmm", *argv)
    assert proc.returncode == status, proc.stderr[-2000:]
    heavy = _imported(proc.stderr) & set(HEAVY)
    assert not heavy, f"online-gmm {' '.join(argv)} imported {sorted(heavy)}"
    assert "online_gmm._cli.main" in proc.stderr  # the report is of the command line's run


def test_the_console_script_entry_point_imports_no_heavy_library():
    # what the installed `online-gmm` script runs
    code = "from online_gmm.__main__ import main; import sys; sys.exit(main(['--help']))"
    proc = _python("-X", "importtime", code=code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage: online-gmm")
    assert not _imported(proc.stderr) & set(HEAVY)


def test_import_online_gmm_is_lazy_and_its_names_work():
    code = textwrap.dedent(
        """
        import sys
        import online_gmm
        heavy = {m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])
        assert not heavy, heavy
        assert online_gmm.__version__
        assert 'OnlineGaussianMixture' in dir(online_gmm) and 'core' in dir(online_gmm)
        from online_gmm import OnlineGaussianMixture, PowerDecay, diagnostics, load, save
        from online_gmm import OnlineBayesianGaussianMixture, partial_fit_pipeline
        assert OnlineGaussianMixture.__module__ == 'online_gmm._estimators.gaussian'
        assert OnlineBayesianGaussianMixture.__module__ == 'online_gmm._estimators.bayesian'
        assert online_gmm.core.advance and online_gmm.diagnostics is diagnostics
        assert online_gmm.save is save and online_gmm.load is load
        try:
            online_gmm.no_such_name
        except AttributeError as exc:
            assert 'no_such_name' in str(exc)
        else:
            raise AssertionError('no AttributeError')
        print(sorted(online_gmm.__all__))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code, *HEAVY], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == str(sorted([
        "OnlineBayesianGaussianMixture", "OnlineGaussianMixture", "PowerDecay", "diagnostics",
        "load", "partial_fit_pipeline", "save", "__version__",
        # (issue 31: the public names of what users call or catch)
        "ModelFileError", "NotStorableError", "UntrustedFileError", "dask_partial_fit",
        "read_header",
    ]))


def test_the_parameter_table_imports_without_scikit_learn_or_numpy():
    code = textwrap.dedent(
        """
        import sys
        from online_gmm._math import parameters as p
        assert not {m.split('.')[0] for m in sys.modules} & {'sklearn', 'numpy', 'numba'}
        assert p.PARAMETERS['covariance_type'].default == 'diag'
        assert p.defaults()['anneal_schedule'] == 'exponential'
        built = p.constraints(['n_components', 'covariance_type', 'forgetting_rate'])
        assert type(built['n_components'][0]).__name__ == 'Interval'
        assert type(built['covariance_type'][0]).__name__ == 'StrOptions'
        assert built['forgetting_rate'][1] is callable
        assert 'sklearn' in sys.modules  # built on the call
        """
    )
    proc = _python(code=code)
    assert proc.returncode == 0, proc.stderr[-3000:]


# ---------------------------------------------------------------------- Ctrl-C at start-up
_INTERRUPT_ON_IMPORT = textwrap.dedent(
    """
    import sys

    class Interrupt:
        # a Ctrl-C that arrives while module sys.argv[1] is being imported
        def find_spec(self, name, path=None, target=None):
            if name == sys.argv[1]:
                raise KeyboardInterrupt

    sys.meta_path.insert(0, Interrupt())
    from online_gmm.__main__ import main
    sys.exit(main(sys.argv[2:]))
    """
)


@pytest.mark.parametrize(
    "module, argv",
    [
        ("online_gmm._math.parameters", ["fit", "--help"]),  # while the parser is built
        ("online_gmm._cli.commands", ["demo"]),  # while the command's modules load
        ("numpy", ["fit", "-k", "2", "-o", "m.joblib", "x.npy"]),
        ("online_gmm.diagnostics", ["diagnose", "x.npy"]),  # the --eps default
    ],
)
def test_ctrl_c_during_start_up_is_one_line_and_130(module, argv):
    proc = subprocess.run([sys.executable, "-c", _INTERRUPT_ON_IMPORT, module, *argv],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert proc.stderr.strip() == "online-gmm: error: interrupted", proc.stderr[-3000:]
    assert proc.stdout == ""


def test_the_tables_choices_are_the_math_modules():
    # the table keeps its own copies (so that it imports without numpy): they must agree
    from online_gmm._em import seeding as _seeding
    from online_gmm._math import covariance as _covariance
    from online_gmm._math import parameters as _parameters
    from online_gmm._math import schedules as _schedules

    assert _parameters.COVARIANCE_TYPES == _covariance.COVARIANCE_TYPES
    assert _parameters.INIT_PARAMS == _seeding.INIT_PARAMS
    assert _parameters.PARAMETERS["anneal_schedule"].choices == _schedules.ANNEAL_SCHEDULES


def test_ctrl_c_while_the_command_line_module_loads_is_one_line_and_130():
    # before main() runs: the console script's `from online_gmm.__main__ import main`
    proc = subprocess.run([sys.executable, "-c", _INTERRUPT_ON_IMPORT, "online_gmm._cli.main",
                           "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert proc.stderr.strip() == "online-gmm: error: interrupted", proc.stderr[-3000:]


_SIGINT_SWALLOWED_BY_AN_EXTENSION = textwrap.dedent(
    """
    import os, signal, sys, time

    class Swallow:
        # a real SIGINT while module sys.argv[1] is imported, which the module turns into
        # an ImportError (as numpy's C extension does)
        def find_spec(self, name, path=None, target=None):
            if name == sys.argv[1]:
                try:
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(30)
                except KeyboardInterrupt:
                    raise ImportError("extension failed to import") from None

    sys.meta_path.insert(0, Swallow())
    from online_gmm.__main__ import main
    sys.exit(main(sys.argv[2:]))
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_turned_into_an_import_error_is_still_an_interrupt():
    proc = subprocess.run(
        [sys.executable, "-c", _SIGINT_SWALLOWED_BY_AN_EXTENSION, "online_gmm._cli.commands",
         "demo"], cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert proc.stderr.strip() == "online-gmm: error: interrupted", proc.stderr[-3000:]
    # without a Ctrl-C, the same ImportError is a one-line failure (exit 1)
    code = _SIGINT_SWALLOWED_BY_AN_EXTENSION.replace("os.kill(os.getpid(), signal.SIGINT)",
                                                     "raise KeyboardInterrupt")
    proc = subprocess.run([sys.executable, "-c", code, "online_gmm._cli.commands", "demo"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "extension failed to import" in proc.stderr
