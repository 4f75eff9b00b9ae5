"""The estimator options of ``online-gmm fit``: one per scalar parameter of
``OnlineGaussianMixture`` (plus ``--means-init``), added to the parser and turned back into
an estimator.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._cli_files import _read_options, _sources
from ._cli_output import UsageError
from ._readers import load_matrix


def _hyper_parameters() -> list[tuple[tuple[str, ...], str, Any, str]]:
    """(flags, parameter, type or choices, help) of the estimator options of ``fit``."""
    from ._estimator import _FORGETTING
    from ._gaussian import COVARIANCE_TYPES
    from ._schedules import ANNEAL_SCHEDULES
    from ._seeding import INIT_PARAMS

    return [
        (("-k", "--n-components"), "n_components", int, "number of mixture components"),
        (("--covariance-type",), "covariance_type", COVARIANCE_TYPES, "covariance shape"),
        (("--batch-size",), "batch_size", int, "rows per online-EM step (mini-batch)"),
        (("--forgetting",), "forgetting", _FORGETTING, "how old evidence is discounted"),
        (("--forgetting-rate",), "forgetting_rate", float, "eta in [0, 1); 0 never forgets"),
        (("--temperature-init",), "temperature_init", float, "E-step temperature at step 0"),
        (("--temperature-final",), "temperature_final", float, "temperature after annealing"),
        (("--anneal-steps",), "anneal_steps", int, "steps from initial to final temperature"),
        (("--anneal-schedule",), "anneal_schedule", ANNEAL_SCHEDULES, "temperature path"),
        (("--init-params",), "init_params", INIT_PARAMS, "how the first batch seeds components"),
        (("--reg-covar",), "reg_covar", float, "added to every covariance's diagonal"),
        (("--seed-mass",), "seed_mass", float, "evidence a freshly seeded component starts with"),
        (("--dead-threshold",), "dead_threshold", float, "reseed below this weight * K"),
        (("--max-reseed",), "max_reseed", int, "dead components reseeded per step at most"),
        (("--random-state",), "random_state", int, "seed, for reproducible runs"),
        (("--tol",), "tol", float, "--converge: stop when the epoch log-lik changes less"),
        (("--max-iter",), "max_iter", int, "--converge: most epochs"),
        (("--n-init",), "n_init", int, "--converge: restarts, the best is kept"),
        (("--init-size",), "init_size", int, "--converge: rows drawn to seed from"),
    ]


def _add_hyper_options(parser: argparse.ArgumentParser) -> None:
    from . import OnlineGaussianMixture

    defaults = OnlineGaussianMixture().get_params()
    group = parser.add_argument_group("estimator options (OnlineGaussianMixture parameters)")
    for flags, param, kind, text in _hyper_parameters():
        help_text = f"{text} (default: {defaults[param]})"
        if isinstance(kind, tuple):
            group.add_argument(*flags, dest=param, choices=kind, default=None, help=help_text)
        else:
            metavar = "N" if kind is int else "X"
            group.add_argument(
                *flags, dest=param, type=kind, default=None, metavar=metavar, help=help_text
            )
    group.add_argument(
        "--means-init",
        metavar="FILE",
        help="initial means: a (n_components, n_features) matrix file (.npy, .npz, .csv)",
    )


def _estimator_from(args: argparse.Namespace) -> Any:
    from . import OnlineGaussianMixture

    params = {
        param: getattr(args, param)
        for _, param, _, _ in _hyper_parameters()
        if getattr(args, param) is not None
    }
    model = OnlineGaussianMixture(**params)
    try:
        model._validate_hyperparameters()
    except ValueError as exc:
        raise UsageError(" ".join(str(exc).split())) from None
    if args.means_init is not None:
        src = _sources(args, [args.means_init])
        model.set_params(means_init=load_matrix(src, _read_options(args, 65536)))
    return model
