"""A stream through a scikit-learn ``Pipeline`` into ``partial_fit``: the documented recipe
and :func:`online_gmm.partial_fit_pipeline`, which must give the same model."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA, IncrementalPCA
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import online_gmm
from online_gmm import OnlineGaussianMixture, partial_fit_pipeline


def _stream(n_batches=5, n=300, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, (3, 6))
    return [centres[rng.integers(0, 3, n)] + rng.standard_normal((n, 6)) * [1, 2, 3, 1, 1, 4]
            for _ in range(n_batches)]


def _gmm():
    return OnlineGaussianMixture(3, random_state=0)


def test_it_is_public():
    assert "partial_fit_pipeline" in online_gmm.__all__
    assert online_gmm.partial_fit_pipeline is partial_fit_pipeline


def test_the_helper_is_the_documented_recipe():
    stream = _stream()
    # the recipe of docs/user-guide.md
    pre = make_pipeline(StandardScaler(), PCA(3)).fit(stream[0])
    gmm = _gmm()
    for batch in stream:
        gmm.partial_fit(pre.transform(batch))
    # the helper, with the transformers fitted the same way
    pipe = make_pipeline(StandardScaler(), PCA(3), _gmm())
    pipe[:-1].fit(stream[0])
    for batch in stream:
        assert partial_fit_pipeline(pipe, batch) is pipe
    np.testing.assert_array_equal(pipe[-1].means_, gmm.means_)
    np.testing.assert_array_equal(pipe[-1].covariances_, gmm.covariances_)
    assert pipe[-1].n_samples_seen_ == sum(len(b) for b in stream)
    X_new = _stream(1, 50, seed=1)[0]
    np.testing.assert_array_equal(pipe.predict(X_new), gmm.predict(pre.transform(X_new)))
    np.testing.assert_allclose(pipe.score_samples(X_new), gmm.score_samples(pre.transform(X_new)))


def test_unfitted_transformers_are_fitted_on_the_first_batch_then_kept():
    stream = _stream()
    pipe = make_pipeline(StandardScaler(), PCA(3), _gmm())
    for batch in stream:
        partial_fit_pipeline(pipe, batch)
    scaler, pca = pipe[0], pipe[1]
    assert scaler.n_samples_seen_ == len(stream[0])  # partial_fit, on the first batch only
    np.testing.assert_allclose(scaler.mean_, stream[0].mean(axis=0))
    reference = PCA(3).fit(StandardScaler().fit_transform(stream[0]))  # fit, first batch
    np.testing.assert_allclose(np.abs(pca.components_), np.abs(reference.components_),
                               atol=1e-10)


def test_update_transformers_follows_the_stream_where_it_can():
    stream = _stream()
    pipe = make_pipeline(StandardScaler(), IncrementalPCA(3), _gmm())
    pipe[:-1].fit(stream[0])
    for batch in stream[1:]:
        partial_fit_pipeline(pipe, batch, update_transformers=True)
    assert pipe[0].n_samples_seen_ == sum(len(b) for b in stream)
    assert pipe[1].n_samples_seen_ == sum(len(b) for b in stream)
    assert pipe[-1].n_samples_seen_ == sum(len(b) for b in stream[1:])
    # a transformer without partial_fit stays as fitted
    pipe = make_pipeline(StandardScaler(), PCA(3), _gmm())
    pipe[:-1].fit(stream[0])
    before = pipe[1].components_.copy()
    partial_fit_pipeline(pipe, stream[1], update_transformers=True)
    np.testing.assert_array_equal(pipe[1].components_, before)
    assert pipe[0].n_samples_seen_ == 2 * len(stream[0])


def test_passthrough_steps_and_partial_fit_params():
    X = _stream(1)[0]
    w = np.linspace(0.0, 2.0, len(X))
    pipe = Pipeline([("nothing", "passthrough"), ("none", None), ("gmm", _gmm())])
    partial_fit_pipeline(pipe, X, sample_weight=w)
    direct = _gmm().partial_fit(X, sample_weight=w)
    np.testing.assert_array_equal(pipe[-1].means_, direct.means_)


def test_a_last_step_without_partial_fit_is_a_type_error():
    X = _stream(1)[0]
    message = r"'gaussianmixture' \(GaussianMixture\), has no partial_fit"
    with pytest.raises(TypeError, match=message):
        partial_fit_pipeline(make_pipeline(StandardScaler(), GaussianMixture(2)), X)
    with pytest.raises(TypeError, match="has no partial_fit"):
        partial_fit_pipeline(Pipeline([("scale", StandardScaler()), ("end", "passthrough")]), X)
