"""The benchmark suite of online-gmm (``python -m benchmarks.run``).

Every number the suite reports is a *ratio measured in the same run*: the estimator against a
baseline (scikit-learn, MiniBatchKMeans, river, the bare BLAS products) timed in the same
process, with repetitions interleaved so that machine noise falls on both sides. Each timing
is the median of several repetitions, a warm-up run excluded. See ``docs/benchmarks.md``.
"""
