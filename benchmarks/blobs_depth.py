"""How much of batch EM's NMI on the quality benchmark's blobs is depth, not the stream.

After one ``partial_fit`` pass (the default warm-up), ``--iterations`` batch-EM iterations
over *all* training rows, from the pass's final parameters (each M-step from no evidence,
as the warm-up's refinement does), then the held-out gap and NMI against the same seed's
``GaussianMixture(n_init=3)``. No longer one pass: an upper bound on what a better start
of the stream could give.

    python -m benchmarks.blobs_depth                   # seeds 0-2, 20 iterations (~2 min)
    python -m benchmarks.blobs_depth --iterations 0    # the pass alone
"""

from __future__ import annotations

import argparse

import numpy as np

from ._common import batches
from ._quality_data import blobs, split
from .quality import _nmi


def main(argv: list[str] | None = None) -> int:
    from sklearn.mixture import GaussianMixture

    from online_gmm import OnlineGaussianMixture
    from online_gmm._em import warmup as _warmup
    from online_gmm.core import select_backend

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args(argv)
    ds = blobs(False)
    for s in args.seeds:
        sp = split(ds, s)
        ref = GaussianMixture(ds.n_components, covariance_type=ds.covariance_type, n_init=3,
                              random_state=s).fit(sp.X_train)
        r_ll, r_nmi = ref.score(sp.X_test), _nmi(sp.y_test, ref.predict(sp.X_test))
        X = sp.X_train[np.random.default_rng([s, 0]).permutation(len(sp.y_train))]
        model = OnlineGaussianMixture(ds.n_components, covariance_type=ds.covariance_type,
                                      random_state=s)
        for b in batches(X, ds.batch):
            model.partial_fit(b)
        if args.iterations:
            state = _warmup.refined_state(model._state, X, np.ones(len(X)),
                                          config=model._config(), backend=select_backend(X),
                                          n_iter=args.iterations)
            model._state = state
            model._publish()
        ll = model.score(sp.X_test)
        print(f"seed {s}: gap {100 * (r_ll - ll) / abs(r_ll):+.2f} %, NMI "
              f"{_nmi(sp.y_test, model.predict(sp.X_test)):.3f} (batch EM {r_nmi:.3f})",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
