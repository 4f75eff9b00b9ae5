"""The small products around a step run on one BLAS thread: BLAS threads woken outside the
step's own setting spin for milliseconds against the step's numba threads (a warm-up step
at K = 4,096, D = 256 took ~92 ms instead of ~74 while the pre-step redundancy test woke
them)."""

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from online_gmm import OnlineGaussianMixture

from .._data import blobs


def _blas_threads() -> int:
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


@pytest.mark.parametrize("warmup_size", [0, "auto"])
def test_the_pre_step_seeding_test_runs_on_one_blas_thread(monkeypatch, warmup_size):
    import online_gmm._em.online as online

    seen = []
    real = online.needs_seeding

    def spy(*args, **kwargs):
        seen.append(_blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(online, "needs_seeding", spy)
    X, _, _ = blobs(n=600, K=4, D=8, seed=0)
    with threadpool_limits(limits=2, user_api="blas"):
        assert _blas_threads() == 2  # (what the step must not run its test with)
        model = OnlineGaussianMixture(8, warmup_size=warmup_size, random_state=0)
        for part in np.array_split(X, 6):
            model.partial_fit(part)
        assert _blas_threads() == 2  # restored
    if warmup_size == "auto":  # 600 rows: the warm-up's steps, which seed anyway, ask none
        assert seen == []
    else:
        assert len(seen) == 6 and set(seen) == {1}


def test_the_bridge_asks_the_next_seeding_on_one_blas_thread(monkeypatch):
    from online_gmm import core
    from ssl_bridge import GMMPrototypes, _update

    seen = []
    real = core.seeding_flag

    def spy(*args, **kwargs):
        seen.append(_blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(_update.core, "seeding_flag", spy)
    torch.manual_seed(0)
    head = GMMPrototypes(8, 16, warmup_size=0)
    with threadpool_limits(limits=2, user_api="blas"):
        for _ in range(4):  # the seeding step (general path), then steady ones
            head.update(torch.randn(64, 16))
    assert len(seen) == 4 and set(seen) == {1}
