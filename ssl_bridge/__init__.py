"""ssl_bridge: decoupled GMM prototypes for PyTorch self-supervised training.

:class:`GMMPrototypes` fits the prototypes as the means of an online Gaussian mixture over
teacher embeddings, outside the encoder's gradient, and returns soft assignment targets;
:class:`JointPrototypes` is the learnable DINO-style head it replaces (the baseline that
collapses); :mod:`ssl_bridge.losses` holds the SSL losses as small pure functions, and
:func:`~ssl_bridge.balance.sinkhorn_knopp` balances targets over a batch.
"""

from . import balance, losses
from ._update import steady_step
from .balance import sinkhorn_knopp
from .gmm_prototypes import GMMPrototypes
from .heads import JointPrototypes
from .losses import (
    alignment_loss,
    correlation_loss,
    cross_view_cross_entropy,
    koleo_loss,
    proto_nce_loss,
    swapped_prediction_loss,
    uniformity_loss,
)

__all__ = [
    "GMMPrototypes",
    "JointPrototypes",
    "steady_step",
    "balance",
    "losses",
    "sinkhorn_knopp",
    "cross_view_cross_entropy",
    "swapped_prediction_loss",
    "proto_nce_loss",
    "alignment_loss",
    "uniformity_loss",
    "correlation_loss",
    "koleo_loss",
]
