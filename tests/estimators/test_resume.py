"""Exact resume across processes: stop a stream at a random step, save the model (pickle,
joblib, ``online_gmm._io.persistence.save`` in its pickle-free default format and with
``format="pickle"``), restore it in a *fresh Python process*, continue
the stream there, and compare with the uninterrupted run done here: bit-identical state,
random generator, counters and answers. All four covariance types, float32 and float64,
with forgetting (constant and ``PowerDecay``), annealing, late seeding and reseeding active.

One child process serves every case (a Python start costs seconds on a small machine);
arrays travel through ``.npz`` / ``.pkl`` files in a temporary folder.
"""

from __future__ import annotations

import functools
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest

from online_gmm import OnlineGaussianMixture, PowerDecay
from online_gmm._io.persistence import save

from .._data import assert_same_state, blobs, state_snapshot
from ..em.test_properties import _one_thread  # noqa: F401  (autouse: BLAS and numba on 1 thread)

ROOT = Path(__file__).resolve().parents[2]
TYPES = ["full", "tied", "diag", "spherical"]
MODES = ["pickle", "joblib", "persistence", "persistence-pickle"]
SEEDS = [0, 1]
N_BATCHES = 10

CHILD = textwrap.dedent(
    """
    import pickle
    import sys

    import joblib
    import numpy as np

    from online_gmm._io.persistence import load

    with open(sys.argv[1], "rb") as fh:
        jobs = pickle.load(fh)
    for job in jobs:
        if job["mode"] == "pickle":
            with open(job["model"], "rb") as fh:
                model = pickle.load(fh)
        elif job["mode"] == "joblib":
            model = joblib.load(job["model"])
        elif job["mode"] == "persistence-pickle":
            model = load(job["model"], trusted=True)
        else:
            model = load(job["model"])  # the pickle-free format: no trust needed
        rest = np.load(job["rest"])
        for i in range(int(rest["n"])):
            sw = rest[f"w{i}"] if f"w{i}" in rest.files else None
            model.partial_fit(rest[f"X{i}"], sample_weight=sw)
        probe = rest["probe"]
        answers = {
            "score_samples": model.score_samples(probe),
            "predict_proba": model.predict_proba(probe),
            "predict": model.predict(probe),
            "pid": __import__("os").getpid(),
        }
        with open(job["out"], "wb") as fh:
            pickle.dump({"state": model.__dict__, "answers": answers}, fh)
    print("child done", len(jobs))
    """
)


def _case(covariance_type: str, seed: int):
    """Parameters, batches, weights and the stop step of one case."""
    rng = np.random.default_rng(1000 * seed + TYPES.index(covariance_type))
    dtype = np.float32 if seed == 1 else np.float64
    X, _, _ = blobs(n=90 * N_BATCHES, K=5, D=4, sep=5.0, seed=seed, dtype=dtype)
    X[::17] = (rng.normal(0, 30, (len(X[::17]), 4))).astype(dtype)  # outliers: reseeding
    cuts = np.sort(rng.choice(np.arange(5, len(X)), N_BATCHES - 1, replace=False))
    batches = np.split(X, cuts)
    # first batches smaller than K: components are still being seeded at step 2
    batches[0], batches[1] = batches[0][:4], batches[1][:2]
    weights = [None if i % 3 else rng.uniform(0, 2, len(b)) * (rng.random(len(b)) > 0.2)
               for i, b in enumerate(batches)]
    weights[0] = None
    params = dict(
        n_components=7,
        covariance_type=covariance_type,
        forgetting_rate=PowerDecay(0.2, t0=3.0) if seed else 0.05,
        temperature_init=2.5,
        temperature_final=1.0,
        anneal_steps=6,
        anneal_schedule="cosine" if seed else "exponential",
        dead_threshold=0.3,
        max_reseed=2,
        random_state=seed,
    )
    # seed 0 stops early (while seeding and annealing), seed 1 anywhere later
    stop = int(rng.integers(1, 3)) if seed == 0 else int(rng.integers(3, N_BATCHES - 1))
    return params, batches, weights, stop


def _probe():
    return np.random.default_rng(99).normal(0, 6, (30, 4))


@pytest.fixture(scope="module")
def child_results(tmp_path_factory):
    """Save every case at its stop step, continue all of them in one fresh process."""
    tmp = tmp_path_factory.mktemp("resume")
    jobs = []
    for ct in TYPES:
        for seed in SEEDS:
            params, batches, weights, stop = _case(ct, seed)
            model = OnlineGaussianMixture(**params)
            for b, w in zip(batches[:stop], weights[:stop], strict=True):
                model.partial_fit(b, sample_weight=w)
            key = f"{ct}-{seed}"
            rest = {"n": np.array(N_BATCHES - stop), "probe": _probe().astype(batches[0].dtype)}
            for i, (b, w) in enumerate(zip(batches[stop:], weights[stop:], strict=True)):
                rest[f"X{i}"] = b
                if w is not None:
                    rest[f"w{i}"] = w
            np.savez(tmp / f"{key}-rest.npz", **rest)
            paths = {m: tmp / f"{key}.{m}" for m in MODES}
            with open(paths["pickle"], "wb") as fh:
                pickle.dump(model, fh)
            joblib.dump(model, paths["joblib"])
            # an exact resume mid-warm-up needs the buffer's rows (not stored by default)
            save(model, paths["persistence"], include_warmup_buffer=True)
            save(model, paths["persistence-pickle"], format="pickle",
                 include_warmup_buffer=True)
            for mode in MODES:
                jobs.append(dict(mode=mode, model=str(paths[mode]),
                                 rest=str(tmp / f"{key}-rest.npz"),
                                 out=str(tmp / f"{key}-{mode}.out.pkl")))
    with open(tmp / "jobs.pkl", "wb") as fh:
        pickle.dump(jobs, fh)
    (tmp / "child.py").write_text(CHILD)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["PYTHONHASHSEED"] = "12345"  # a different hash seed from ours would be fine too
    # one BLAS / numba thread, as this process runs under the _one_thread fixture
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS"):
        env[var] = "1"
    proc = subprocess.run(
        [sys.executable, str(tmp / "child.py"), str(tmp / "jobs.pkl")],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "child done" in proc.stdout
    return tmp


@functools.cache
def _uninterrupted(ct: str, seed: int):
    params, batches, weights, stop = _case(ct, seed)
    model = OnlineGaussianMixture(**params)
    n_reseeded_at_stop = None
    for i, (b, w) in enumerate(zip(batches, weights, strict=True)):
        if i == stop:
            n_reseeded_at_stop = model.n_reseeded_
        model.partial_fit(b, sample_weight=w)
    return model, n_reseeded_at_stop


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("covariance_type", TYPES)
def test_resume_in_a_fresh_process_is_bit_identical(child_results, covariance_type, seed,
                                                    mode):
    straight, _ = _uninterrupted(covariance_type, seed)
    with open(child_results / f"{covariance_type}-{seed}-{mode}.out.pkl", "rb") as fh:
        out = pickle.load(fh)
    assert out["answers"]["pid"] != os.getpid()
    assert_same_state(state_snapshot(straight), out["state"])
    probe = _probe().astype(_case(covariance_type, seed)[1][0].dtype)
    np.testing.assert_array_equal(straight.score_samples(probe), out["answers"]["score_samples"])
    np.testing.assert_array_equal(straight.predict_proba(probe), out["answers"]["predict_proba"])
    np.testing.assert_array_equal(straight.predict(probe), out["answers"]["predict"])


def test_the_resumed_streams_exercise_seeding_reseeding_and_annealing():
    """Guards the cases: after the stop, components are still seeded, dead ones reseeded,
    and the temperature still moves."""
    late_seeding = annealing = 0
    for ct in TYPES:
        for seed in SEEDS:
            params, batches, weights, stop = _case(ct, seed)
            model = OnlineGaussianMixture(**params)
            for b, w in zip(batches[:stop], weights[:stop], strict=True):
                model.partial_fit(b, sample_weight=w)
            late_seeding += not np.all(model._state.seeded)
            annealing += model.n_steps_ < params["anneal_steps"]
            reseeded = model.n_reseeded_
            for b, w in zip(batches[stop:], weights[stop:], strict=True):
                model.partial_fit(b, sample_weight=w)
            assert model.n_reseeded_ > reseeded, (ct, seed)
            assert np.all(model._state.seeded)
            assert model.temperature_ == params["temperature_final"]
    assert late_seeding >= 4 and annealing >= 4
