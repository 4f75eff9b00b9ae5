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
    assert set(params) == set(core.PARAMETERS)
    assert set(OnlineGaussianMixture._parameter_constraints) == set(core.PARAMETERS)
    for name, p in core.PARAMETERS.items():
        assert signature[name].default == p.default, name


def test_every_covariance_type_and_choice_is_in_the_table():
    assert set(core.PARAMETERS["covariance_type"].choices) == set(core.COVARIANCE_TYPES)
    assert core.PARAMETERS["init_params"].choices == core.INIT_PARAMS


def test_the_bridge_checks_the_parameters_it_shares():
    pytest.importorskip("torch", reason="torch is the torch extra")
    from ssl_bridge import GMMPrototypes

    bad = dict(covariance_type="x", forgetting="x", forgetting_rate=1.0, temperature_init=0.0,
               temperature_final=np.inf, anneal_steps=-1, anneal_schedule="x", seed_mass=-1.0,
               dead_threshold=2.0, max_reseed=-1, reg_covar=-1.0, init_params="x")
    assert set(bad) == set(core.SHARED_WITH_BRIDGE)
    for name, value in bad.items():
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of GMMPrototypes"):
            GMMPrototypes(4, 3, **{name: value})
    for name, value in dict(n_prototypes=0, dim=0, normalize="yes", nonfinite="x",
                            distributed="x", random_state=-1).items():
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
            GMMPrototypes(**{"n_prototypes": 4, "dim": 3, name: value})


def test_the_command_line_options_are_the_tables():
    from online_gmm._cli_options import _hyper_parameters

    options = {name: (flags, kind) for flags, name, kind, _ in _hyper_parameters()}
    flagged = {name for name, p in core.PARAMETERS.items() if p.flags}
    assert set(options) == flagged
    assert options["covariance_type"][1] == core.COVARIANCE_TYPES
    assert options["n_components"] == (("-k", "--n-components"), int)
