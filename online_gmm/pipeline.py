"""Streaming through a scikit-learn ``Pipeline`` into ``partial_fit``.

scikit-learn's ``Pipeline`` has no ``partial_fit``: :func:`partial_fit_pipeline` is that one
step of a stream: the pipeline's transformers transform the batch (each fitted on the first
batch it sees, if it was not fitted before), and its last step learns from the result with
its own ``partial_fit``. The pipeline itself stays a plain ``Pipeline``: ``predict``,
``score_samples`` and ``score`` work on it as usual.
"""

from __future__ import annotations

from typing import Any

__all__ = ["partial_fit_pipeline"]


def _is_fitted(estimator: Any) -> bool:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def partial_fit_pipeline(
    pipeline: Any, X: Any, y: Any = None, *, update_transformers: bool = False, **params: Any
) -> Any:
    """One step of a stream through ``pipeline``: transform ``X``, then ``partial_fit`` it.

    Each transformer of the pipeline (every step but the last) transforms the batch in turn.
    A transformer that is not fitted yet is fitted on this batch first (with its
    ``partial_fit`` if it has one, else ``fit``): on a stream, the first batch fits the
    preprocessing, and it stays as it is after that, so that the model's statistics are
    all in the same feature space. Fit the transformers on a larger first sample yourself
    (``pipeline[:-1].fit(X_first)``) for better ones. The last step then learns from the
    transformed batch with its ``partial_fit``.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Transformers, then an estimator with ``partial_fit`` (for instance
        :class:`~online_gmm.OnlineGaussianMixture`). Steps that are
        ``"passthrough"`` or None are skipped.
    X : array-like of shape (n_samples, n_features)
        The batch.
    y : array-like of shape (n_samples,), default=None
        Passed to the transformers that are fitted on this batch and to the last step's
        ``partial_fit`` (a mixture ignores it).
    update_transformers : bool, default=False
        Also ``partial_fit`` every already fitted transformer that has a ``partial_fit``
        (``StandardScaler``, ``IncrementalPCA``) on this batch before it transforms it: the
        preprocessing follows the stream, but the features the model has already learned
        from move under it. Transformers without ``partial_fit`` stay as they are.
    **params : dict
        Passed to the last step's ``partial_fit`` (e.g. ``sample_weight``).

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``pipeline``, updated in place.

    Raises
    ------
    TypeError
        If the last step has no ``partial_fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from online_gmm import OnlineGaussianMixture, partial_fit_pipeline
    >>> rng = np.random.default_rng(0)
    >>> stream = [rng.normal(size=(256, 8)) + 5 * rng.integers(0, 2, (256, 1))
    ...           for _ in range(4)]
    >>> pipe = make_pipeline(StandardScaler(), PCA(2), OnlineGaussianMixture(2, random_state=0))
    >>> for batch in stream:          # the first batch fits the scaler and the PCA
    ...     pipe = partial_fit_pipeline(pipe, batch)
    >>> pipe[-1].n_samples_seen_, pipe[-1].means_.shape
    (1024, (2, 2))
    >>> pipe.predict(stream[0][:3]).shape     # a plain Pipeline: predict, score_samples, ...
    (3,)
    """
    steps = list(pipeline.steps)
    if not steps:
        raise ValueError("the pipeline has no steps")
    name, last = steps[-1]
    if last is None or last == "passthrough" or not hasattr(last, "partial_fit"):
        raise TypeError(
            f"the last step of the pipeline, {name!r} ({type(last).__name__}), has no "
            "partial_fit; partial_fit_pipeline needs an estimator that learns online "
            "(e.g. OnlineGaussianMixture) as the last step"
        )
    Xt = X
    for _, step in steps[:-1]:
        if step is None or step == "passthrough":
            continue
        if not _is_fitted(step):
            if hasattr(step, "partial_fit"):
                step.partial_fit(Xt, y)
            else:
                step.fit(Xt, y)
        elif update_transformers and hasattr(step, "partial_fit"):
            step.partial_fit(Xt, y)
        Xt = step.transform(Xt)
    last.partial_fit(Xt, y, **params)
    return pipeline
