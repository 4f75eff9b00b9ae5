"""Test configuration shared by tests/ and the doctests of the packages."""

import importlib.util
import os

# online_gmm.river needs the river extra: without it, its doctests are not collected (its
# tests skip themselves; tests/river/test_import.py checks the message a user then gets)
collect_ignore_glob = [] if importlib.util.find_spec("river") else ["online_gmm/river/*"]

# scikit-learn's array-API estimator checks (array-api-strict, torch on CPU) need SciPy's
# array-API mode, which must be set before SciPy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest  # noqa: E402


@pytest.fixture
def reference_backend():
    """Run NumPy input through the reference (array-API) backend instead of numba."""
    from online_gmm.core import use_backend

    with use_backend("reference"):
        yield


#: Doctests of modules whose examples need an optional extra: skipped without it.
_DOCTEST_EXTRAS = {"online_gmm._em.dask": "dask"}


def pytest_collection_modifyitems(config, items):
    import importlib.util

    for item in items:
        for module, extra in _DOCTEST_EXTRAS.items():
            if (type(item).__name__ == "DoctestItem" and item.name.startswith(module + ".")
                    and importlib.util.find_spec(extra) is None):
                item.add_marker(pytest.mark.skip(reason=f"the {extra} extra is not installed"))
