"""The parameter table is the one definition of the hyper-parameters: the estimator, the
bridge and the command line are built from it."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from online_gmm import OnlineGaussianMixture, core


def test_the_estimator_is_built_from_the_table():
    signature = inspect.signature(OnlineGaussianMixture.__init__).parameters
    params = OnlineGaussianMixture().get_params()
    assert set(params) == set(core.MIXTURE_PARAMETERS)
    assert set(OnlineGaussianMixture._parameter_constraints) == set(core.MIXTURE_PARAMETERS)
    for name in core.MIXTURE_PARAMETERS:
        assert signature[name].default == core.PARAMETERS[name].default, name
    # the rest of the table is the variational mixture's prior (tests/estimators/test_bayesian.py)
    assert set(core.PARAMETERS) - set(params) == set(core.VARIATIONAL_PARAMETERS)


def test_every_covariance_type_and_choice_is_in_the_table():
    assert set(core.PARAMETERS["covariance_type"].choices) == set(core.COVARIANCE_TYPES)
    assert core.PARAMETERS["init_params"].choices == core.INIT_PARAMS


def test_the_bridge_checks_the_parameters_it_shares():
    pytest.importorskip("torch", reason="torch is the torch extra")
    from ssl_bridge import GMMPrototypes

    bad = dict(covariance_type="x", forgetting="x", forgetting_rate=1.0, temperature_init=0.0,
               temperature_final=np.inf, anneal_steps=-1, anneal_schedule="x", seed_mass=-1.0,
               dead_threshold=2.0, max_reseed=-1, reg_covar=-1.0, init_params="x",
               warmup_size=-1, warmup_restarts=0)
    assert set(bad) == set(core.SHARED_WITH_BRIDGE)
    for name, value in bad.items():
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of GMMPrototypes"):
            GMMPrototypes(4, 3, **{name: value})
    for name, value in dict(n_prototypes=0, dim=0, normalize="yes", nonfinite="x",
                            distributed="x", random_state=-1).items():
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
            GMMPrototypes(**{"n_prototypes": 4, "dim": 3, name: value})


def test_the_command_line_options_are_the_tables():
    from online_gmm._cli.options import _hyper_parameters

    options = {name: (flags, kind) for flags, name, kind, _ in _hyper_parameters()}
    flagged = {name for name, p in core.PARAMETERS.items() if p.flags}
    assert set(options) == flagged
    assert options["covariance_type"][1] == core.COVARIANCE_TYPES
    assert options["n_components"] == (("-k", "--n-components"), int)


def test_a_subclass_with_a_parameter_of_its_own_is_checked_for_the_tables():
    class WithExtra(OnlineGaussianMixture):
        def __init__(self, n_components=1, *, extra=3, covariance_type="diag"):
            super().__init__(n_components, covariance_type=covariance_type)
            self.extra = extra

    X = np.random.default_rng(0).normal(size=(40, 2))
    WithExtra(2).partial_fit(X)
    with pytest.raises(InvalidParameterError, match="covariance_type"):
        WithExtra(2, covariance_type="x").partial_fit(X)


def test_parameters_outside_the_cache_key_are_checked_after_a_change():
    X = np.random.default_rng(0).normal(size=(40, 2))
    model = OnlineGaussianMixture(2).partial_fit(X)
    for name, value in dict(warm_start=1, random_state="x", means_init=object()).items():
        good = getattr(model, name)
        setattr(model, name, value)
        with pytest.raises(InvalidParameterError, match=name):
            model.partial_fit(X)
        setattr(model, name, good)
    model.partial_fit(X)


def test_messages_list_the_choices_in_their_documented_order():
    with pytest.raises(InvalidParameterError,
                       match=r"among \{'full', 'tied', 'diag', 'spherical'\}"):
        OnlineGaussianMixture(covariance_type="x").fit(np.ones((4, 2)))


def test_the_bridge_reads_its_forgetting_rate_at_every_step():
    torch = pytest.importorskip("torch", reason="torch is the torch extra")
    from ssl_bridge import GMMPrototypes

    head = GMMPrototypes(4, 3, forgetting_rate=0.01)
    assert head.update(torch.randn(16, 3))["forgetting_rate"] == 0.01
    head.forgetting_rate = 0.2
    assert head.update(torch.randn(16, 3))["forgetting_rate"] == 0.2
