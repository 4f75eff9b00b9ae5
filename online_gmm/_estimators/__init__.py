"""The scikit-learn estimators: the ``fit`` loop (``base``), ``OnlineGaussianMixture``
(``gaussian``), ``OnlineBayesianGaussianMixture`` (``bayesian``), their input checks,
the update lock and the conversions to and from scikit-learn."""
