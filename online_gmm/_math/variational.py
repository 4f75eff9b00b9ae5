"""The variational mixture's math that no covariance type changes: the prior, the posterior of
the state's statistics, and the E-step's expected log-weights (``docs/algorithm.md``,
"Variational mixture").

The state of a variational mixture is the plain mixture's
(:class:`~online_gmm._math.state.MixtureState`): forgotten sufficient statistics, folded by the
same forgetting M-step. Its posterior is the prior plus those statistics, as scikit-learn's
``BayesianGaussianMixture`` computes it from one batch's (``_estimate_weights``,
``_estimate_means``, ``_estimate_precisions``): a Dirichlet (or stick-breaking Beta)
posterior over the weights from the weight masses ``nu_k``, a Normal-Wishart posterior over
each component from ``n_k``, ``xbar_k`` and ``M_k``. Its E-step is the plain one (the same
:func:`online_gmm._math.estep.prepare` and backends) with the posterior's expected precision
factors and, in place of ``log pi_k``, the expected log-weight and Wishart terms:

    E[log pi_k] + 1/2 (E[log |Lambda_k|] - D log nu_k) - D / (2 beta_k)

(``E[log |Lambda_k|] = D log 2 + sum_i digamma((nu_k - i) / 2) + 2 log |U_k|``, the last term
added by ``prepare``). The per-type formulas (degrees of freedom, the posterior's covariance,
the checks of a user's ``covariance_prior``) live in the covariance types' modules
(:mod:`online_gmm._math.covariance`); the (K,)-vector digamma terms are computed on the host
(SciPy), the rest in the data's namespace.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betaln, digamma, gammaln

from .array_api import asarray_like, device, to_numpy
from .covariance import covariance
from .state import MixtureState

WEIGHT_CONCENTRATION_PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


@dataclass(frozen=True, eq=False)
class Prior:
    """The prior of a variational mixture, resolved against the data (float64 arrays in the
    data's namespace): scikit-learn's ``weight_concentration_prior_``,
    ``mean_precision_prior_``, ``mean_prior_``, ``degrees_of_freedom_prior_`` and
    ``covariance_prior_`` (the last in the covariance type's layout of one component:
    (D, D) for ``full`` and ``tied``, (D,) for ``diag``, a 0-d array for ``spherical``)."""

    weight_concentration_prior_type: str
    weight_concentration: float
    mean_precision: float
    mean: Any
    degrees_of_freedom: float
    covariance: Any


@dataclass(frozen=True, eq=False)
class Posterior:
    """The variational posterior of a state under a :class:`Prior` (scikit-learn's fitted
    attributes), with what the E-step adds to each component's log-density."""

    weight_concentration: Any  # (K,), or the Beta parameters (a, b) of the stick-breaking
    weights: Any  # (K,) the weights' posterior means (0 for unseeded components)
    log_weights: Any  # (K,) the E-step's constants but log|U_k| (-inf: unseeded)
    mean_precision: Any  # (K,) beta_k
    means: Any  # (K, D) m_k
    degrees_of_freedom: Any  # (K,) nu_k; a 0-d array for ``tied``
    covariances: Any  # W_k^-1 / nu_k, in the type's layout
    precisions_cholesky: Any  # the precision factors of ``covariances``


# ---------------------------------------------------------------------- the prior
def resolve_prior(X: Any, w: Any = None, *, covariance_type: str, n_components: int,
                  reg_covar: float, weight_concentration_prior_type: str = "dirichlet_process",
                  weight_concentration_prior: float | None = None,
                  mean_precision_prior: float | None = None, mean_prior: Any = None,
                  degrees_of_freedom_prior: float | None = None,
                  covariance_prior: Any = None, xp: Any) -> Prior:
    """The prior of ``X`` (n, D) with sample weights ``w`` (None: ones): the given values,
    checked as scikit-learn checks them, and the defaults scikit-learn takes from its data
    (``1 / n_components``, 1, the mean of ``X``, D, and the covariance of ``X`` with
    ``ddof=1`` in the type's layout), weighted as frequencies (unweighted if every weight is
    zero). A default covariance that is not positive definite (a constant feature, one row)
    gets ``reg_covar`` on its diagonal, as every covariance does."""
    n, d = X.shape
    cov = covariance(covariance_type)
    X64 = xp.astype(X, xp.float64)
    w64 = None if w is None else xp.astype(w, xp.float64)
    if w64 is None or not float(xp.sum(w64)) > 0:
        w64 = xp.ones(n, dtype=xp.float64, device=device(X64))
    total = xp.sum(w64)
    data_mean = (w64 @ X64) / total
    if mean_prior is None:
        mean = data_mean
    else:
        m = np.asarray(mean_prior, dtype=np.float64)
        if not np.isfinite(m).all():
            raise ValueError("The parameter 'mean_prior' must be finite (no NaN or infinity).")
        if m.shape != (d,):
            raise ValueError(
                f"The parameter 'means' should have the shape of {(d,)}, but got {m.shape}"
            )
        mean = asarray_like(m, X, xp, dtype=xp.float64)
    if degrees_of_freedom_prior is None:
        dof = float(d)
    elif degrees_of_freedom_prior > d - 1.0:
        dof = float(degrees_of_freedom_prior)
    else:
        raise ValueError(
            "The parameter 'degrees_of_freedom_prior' should be greater than "
            f"{d - 1}, but got {degrees_of_freedom_prior:.3f}."
        )
    if covariance_prior is None:
        prior_cov = _data_covariance(X64 - data_mean, w64, cov, reg_covar, xp)
    else:
        p = np.asarray(covariance_prior, dtype=np.float64)
        if not np.isfinite(p).all():
            raise ValueError(
                "The parameter 'covariance_prior' must be finite (no NaN or infinity)."
            )
        cov.check_covariance_prior(p, d)
        prior_cov = asarray_like(p, X, xp, dtype=xp.float64)
    return Prior(
        weight_concentration_prior_type=weight_concentration_prior_type,
        weight_concentration=(1.0 / n_components if weight_concentration_prior is None
                              else float(weight_concentration_prior)),
        mean_precision=1.0 if mean_precision_prior is None else float(mean_precision_prior),
        mean=mean,
        degrees_of_freedom=dof,
        covariance=prior_cov,
    )


def changed_prior(prior: Prior, n_components: int, n_features: int,
                  params: dict) -> str | None:
    """The prior parameter of ``params`` (the estimator's) that differs from what
    ``prior`` was resolved from, or None. A parameter left None stands for its default:
    ``1 / n_components``, 1 and ``n_features``; the data's mean and covariance (not
    checked)."""
    defaults = {"weight_concentration_prior": 1.0 / n_components, "mean_precision_prior": 1.0,
                "degrees_of_freedom_prior": float(n_features)}
    resolved = {"weight_concentration_prior": prior.weight_concentration,
                "mean_precision_prior": prior.mean_precision,
                "degrees_of_freedom_prior": prior.degrees_of_freedom}
    if params["weight_concentration_prior_type"] != prior.weight_concentration_prior_type:
        return "weight_concentration_prior_type"
    for name, value in resolved.items():
        given = params[name]
        if float(defaults[name] if given is None else given) != value:
            return name
    for name, value in (("mean_prior", prior.mean), ("covariance_prior", prior.covariance)):
        given = params[name]
        if given is None:
            continue
        try:
            same = np.array_equal(np.asarray(given, dtype=np.float64), to_numpy(value))
        except (TypeError, ValueError):
            same = False
        if not same:
            return name
    return None


def _data_covariance(R: Any, w64: Any, cov: Any, reg_covar: float, xp: Any) -> Any:
    """The covariance of the centred rows ``R`` (weights ``w64``) in the type's layout,
    ``ddof=1`` (``ddof=0`` for a total weight up to one), regularised only if it is not
    positive definite."""
    d = R.shape[1]
    total = float(xp.sum(w64))
    var = cov.weighted_variance(R, w64, xp.sum(w64), xp)
    var = var * (total / (total - 1.0) if total > 1 else 1.0)
    try:
        cov.check_covariance_prior(np.asarray(to_numpy(var), dtype=np.float64), d)
    except ValueError:
        var = cov.regularised(var, reg_covar, xp)
        try:
            cov.check_covariance_prior(np.asarray(to_numpy(var), dtype=np.float64), d)
        except ValueError:
            raise ValueError(
                "The data's covariance, the default covariance_prior, is not positive "
                "definite (a constant feature or a single row) and reg_covar is 0: give "
                "covariance_prior, or reg_covar > 0."
            ) from None
    return var


# ---------------------------------------------------------------------- the weights
def weight_concentration(nu: np.ndarray, prior: Prior) -> Any:
    """The weights' posterior from the weight masses ``nu`` (host, float64): Dirichlet
    ``alpha_0 + nu_k``, or the stick-breaking Betas ``(1 + nu_k, gamma + sum_{j>k} nu_j)``."""
    if prior.weight_concentration_prior_type == "dirichlet_process":
        tail = np.concatenate([np.cumsum(nu[::-1])[-2::-1], [0.0]])
        return (1.0 + nu, prior.weight_concentration + tail)
    return prior.weight_concentration + nu


def expected_log_weights(concentration: Any, prior_type: str) -> np.ndarray:
    """``E[log pi_k]`` under the weights' posterior (scikit-learn's
    ``_estimate_log_weights``)."""
    if prior_type == "dirichlet_process":
        a, b = concentration
        digamma_sum = digamma(a + b)
        log_v, log_1mv = digamma(a) - digamma_sum, digamma(b) - digamma_sum
        return log_v + np.concatenate([[0.0], np.cumsum(log_1mv)[:-1]])
    return digamma(concentration) - digamma(np.sum(concentration))


def mean_weights(concentration: Any, prior_type: str) -> np.ndarray:
    """The weights' posterior means, normalised (scikit-learn's ``weights_``)."""
    if prior_type == "dirichlet_process":
        a, b = concentration
        total = a + b
        w = a / total * np.concatenate([[1.0], np.cumprod(b / total)[:-1]])
    else:
        w = np.asarray(concentration, dtype=np.float64)
    return w / np.sum(w)


def wishart_terms(dof: np.ndarray, mean_precision: np.ndarray, n_features: int) -> np.ndarray:
    """``1/2 (D log 2 + sum_i digamma((nu_k - i) / 2) - D log nu_k - D / beta_k)``: what the
    E-step adds to ``log|U_k|`` of the normalised precision factors (scikit-learn's
    ``_estimate_log_prob``; its ``log_lambda`` for every covariance type)."""
    i = np.arange(n_features)[:, None]
    log_lambda = n_features * math.log(2.0) + np.sum(digamma(0.5 * (dof[None, :] - i)), axis=0)
    return 0.5 * (log_lambda - n_features * np.log(dof) - n_features / mean_precision)


# ---------------------------------------------------------------------- the posterior
#: The last posterior computed, by the identity of its state: a step's E-step asks for the
#: posterior that the previous step published (``(weakref, key, posterior)``).
_last: list = [None]


def posterior(state: MixtureState, prior: Prior, *, covariance_type: str, reg_covar: float,
              backend: Any) -> Posterior:
    """The variational posterior of ``state``'s statistics under ``prior``.

    A pure function of its arguments; the last result is kept (by the state's identity), so
    that a step's E-step and the publishing of the state before it share one factorisation.
    """
    key = (prior, covariance_type, float(reg_covar), type(backend))
    last = _last[0]
    if last is not None and last[0]() is state and last[1] == key:
        return last[2]
    post = _posterior(state, prior, covariance_type, float(reg_covar), backend)
    _last[0] = (weakref.ref(state), key, post)
    return post


def _posterior(state: MixtureState, prior: Prior, covariance_type: str, reg_covar: float,
               backend: Any) -> Posterior:
    xp = backend.xp
    cov = covariance(covariance_type)
    K, D = state.means.shape
    n = state.mass
    beta = prior.mean_precision + n
    means = (prior.mean_precision * prior.mean + n[:, None] * state.means) / beta[:, None]
    d = state.means - prior.mean
    outer = cov.outer_term(d, prior.mean_precision * n / beta, xp)
    dof = cov.degrees_of_freedom(prior.degrees_of_freedom, n, state.tied_mass, K, xp)
    covariances = cov.posterior_covariances(prior.covariance, state.moment, n,
                                            state.tied_mass, outer, dof, reg_covar, xp)
    prec_chol = backend.precision_cholesky(covariances, covariance_type)
    # the (K,)-vectors on the host: digamma is not in the array API
    kind = prior.weight_concentration_prior_type
    seeded = np.asarray(to_numpy(state.seeded), dtype=bool)
    conc = weight_concentration(np.asarray(to_numpy(state.nu), dtype=np.float64), prior)
    dof_host = np.broadcast_to(np.asarray(to_numpy(dof), dtype=np.float64), (K,))
    beta_host = np.asarray(to_numpy(beta), dtype=np.float64)
    log_w = expected_log_weights(conc, kind) + wishart_terms(dof_host, beta_host, D)
    weights = mean_weights(conc, kind)
    if not seeded.all():  # unseeded components take no part (as in the plain mixture)
        log_w = np.where(seeded, log_w, -np.inf)
        weights = np.where(seeded, weights, 0.0)
        total = weights.sum()
        weights = weights / total if total > 0 else weights
    as_xp = lambda a: asarray_like(a, state.means, xp, dtype=xp.float64)  # noqa: E731
    return Posterior(
        weight_concentration=(tuple(as_xp(c) for c in conc) if isinstance(conc, tuple)
                              else as_xp(conc)),
        weights=as_xp(weights),
        log_weights=as_xp(log_w),
        mean_precision=beta,
        means=means,
        degrees_of_freedom=dof,
        covariances=covariances,
        precisions_cholesky=prec_chol,
    )


# ---------------------------------------------------------------------- the lower bound
def lower_bound(post: Posterior, prior: Prior, entropy: float, *, covariance_type: str,
                xp: Any) -> float:
    """The evidence lower bound of a posterior ``post`` that is the M-step of
    responsibilities of weighted entropy ``entropy`` (``-sum_n w_n sum_k r_nk log r_nk``),
    up to the terms that only the prior and ``K`` fix: scikit-learn's
    ``BayesianGaussianMixture._compute_lower_bound`` (its ``lower_bound_``), term by term,

        entropy - sum_k log B(W_k, nu_k) - log C(weights) - D/2 sum_k log beta_k

    (``log B`` the Wishart normaliser without its ``log pi`` term, of the normalised
    precision factors; ``log C`` the Dirichlet's, or the Betas' ``-sum log Beta(a_k,
    b_k)``). Valid only at such a pair: it compares the optima of one buffer, or the
    iterations of one fit."""
    K, D = post.means.shape
    log_det = to_numpy(covariance(covariance_type).log_det_cholesky(
        post.precisions_cholesky, D, xp))
    dof = np.broadcast_to(np.asarray(to_numpy(post.degrees_of_freedom), dtype=np.float64), (K,))
    # (``tied``: one matrix, its terms K times, as scikit-learn's)
    log_det = np.broadcast_to(np.asarray(log_det, dtype=np.float64), (K,)) - 0.5 * D * np.log(dof)
    i = np.arange(D)[:, None]
    log_wishart = -np.sum(dof * log_det + dof * D * 0.5 * math.log(2.0)
                          + np.sum(gammaln(0.5 * (dof[None, :] - i)), axis=0))
    if prior.weight_concentration_prior_type == "dirichlet_process":
        a, b = (np.asarray(to_numpy(c), dtype=np.float64) for c in post.weight_concentration)
        log_norm_weight = -np.sum(betaln(a, b))
    else:
        c = np.asarray(to_numpy(post.weight_concentration), dtype=np.float64)
        log_norm_weight = gammaln(np.sum(c)) - np.sum(gammaln(c))
    beta = np.asarray(to_numpy(post.mean_precision), dtype=np.float64)
    return float(entropy - log_wishart - log_norm_weight - 0.5 * D * np.sum(np.log(beta)))
