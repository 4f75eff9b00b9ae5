"""The estimator options of ``online-gmm fit``: one per entry of the parameter table that
has flags (plus ``--means-init``), added to the parser and turned back into an estimator.
"""

from __future__ import annotations

import argparse
from typing import Any

from .output import UsageError


def _hyper_parameters() -> list[tuple[tuple[str, ...], str, Any, str]]:
    """(flags, parameter, type or choices, help) of the estimator options of ``fit``: the
    parameter table's entries that have flags (:data:`online_gmm._math.parameters.PARAMETERS`)."""
    from .._math.parameters import PARAMETERS

    return [
        (p.flags, name, p.choices or p.cli_type, p.help)
        for name, p in PARAMETERS.items()
        if p.flags
    ]


def _add_hyper_options(parser: argparse.ArgumentParser) -> None:
    from .._math.parameters import defaults as table_defaults

    defaults = table_defaults()
    group = parser.add_argument_group("estimator options (OnlineGaussianMixture parameters)")
    for flags, param, kind, text in _hyper_parameters():
        help_text = f"{text} (default: {defaults[param]})"
        if isinstance(kind, tuple):
            group.add_argument(*flags, dest=param, choices=kind, default=None, help=help_text)
        else:
            metavar = getattr(kind, "metavar", "N" if kind is int else "X")
            group.add_argument(
                *flags, dest=param, type=kind, default=None, metavar=metavar, help=help_text
            )
    group.add_argument(
        "--means-init",
        metavar="FILE",
        help="initial means: a (n_components, n_features) matrix file (.npy, .npz, .csv)",
    )


def _estimator_from(args: argparse.Namespace) -> Any:
    from .. import OnlineGaussianMixture
    from .._io.readers import load_matrix
    from .files import _read_options, _sources

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
        src = _sources(args, [args.means_init], data=False)
        model.set_params(means_init=load_matrix(src, _read_options(args, 65536)))
    return model
