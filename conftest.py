"""Test configuration shared by tests/ and the doctests of the packages."""

import os

# scikit-learn's array-API estimator checks (array-api-strict, torch on CPU) need SciPy's
# array-API mode, which must be set before SciPy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
