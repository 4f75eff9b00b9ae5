"""The redundancy test's product runs on one BLAS thread: BLAS threads woken outside the
step's own setting spin for milliseconds against the step's numba threads (a warm-up step
at K = 4,096, D = 256 took ~92 ms instead of ~74 while the pre-step redundancy test woke
them). And the warm-up's steps, which seed anyway, do not ask the pre-step test at all."""

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from online_gmm import OnlineGaussianMixture
from online_gmm._em import seeding

from .._data import blobs


def _blas_threads() -> int:
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def _spy(monkeypatch, module, name, record):
    real = getattr(module, name)

    def spy(*args, **kwargs):
        record.append(_blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)


@pytest.mark.parametrize("warmup_size", [0, "auto"])
def test_the_pre_step_seeding_test_runs_on_one_blas_thread(monkeypatch, warmup_size):
    import online_gmm._em.online as online

    asked, products = [], []
    _spy(monkeypatch, online, "needs_seeding", asked)
    _spy(monkeypatch, seeding, "_direction_like", products)  # (inside the product's setting)
    X, _, _ = blobs(n=600, K=4, D=8, seed=0)
    with threadpool_limits(limits=2, user_api="blas"):
        assert _blas_threads() == 2  # (what the step must not run its test with)
        model = OnlineGaussianMixture(8, warmup_size=warmup_size, random_state=0)
        for part in np.array_split(X, 6):
            model.partial_fit(part)
        assert _blas_threads() == 2  # restored
    if warmup_size == "auto":  # 600 rows: the warm-up's steps, which seed anyway, ask none
        assert asked == []
    else:
        assert len(asked) == 6
    assert products and set(products) == {1}


def test_the_bridge_asks_the_next_seeding_on_one_blas_thread(monkeypatch):
    from ssl_bridge import GMMPrototypes, _update

    asked, products = [], []
    _spy(monkeypatch, _update.core, "seeding_flag", asked)
    _spy(monkeypatch, seeding, "_direction_like", products)
    torch.manual_seed(0)
    head = GMMPrototypes(8, 16, warmup_size=0)
    with threadpool_limits(limits=2, user_api="blas"):
        for _ in range(4):  # the seeding step (general path), then steady ones
            head.update(torch.randn(64, 16))
    assert len(asked) == 4 and len(products) >= 4 and set(products) == {1}
