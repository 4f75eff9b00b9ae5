"""What users are told to call or catch has a public name (issue 31, items 4 and 6); the
private names of earlier versions still work."""

from __future__ import annotations

import re

import numpy as np
import pytest

import online_gmm
from online_gmm import (
    ModelFileError,
    NotStorableError,
    OnlineBayesianGaussianMixture,
    OnlineGaussianMixture,
    UntrustedFileError,
    load,
    read_header,
    save,
)


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(80, 3))


def test_the_public_names_are_exported_and_the_private_ones_kept():
    from online_gmm._em import dask as _dask
    from online_gmm._io import model_file, npz_format, persistence

    for name in ("ModelFileError", "NotStorableError", "UntrustedFileError", "read_header",
                 "dask_partial_fit"):
        assert name in online_gmm.__all__
        assert name in dir(online_gmm)
    assert persistence.UntrustedFileError is UntrustedFileError
    assert persistence.read_header is read_header
    assert online_gmm.dask_partial_fit is _dask.partial_fit
    assert model_file._FileRefused is ModelFileError  # the private names of before
    assert npz_format._NotStorable is model_file._NotStorable is NotStorableError
    assert issubclass(UntrustedFileError, ModelFileError)
    assert issubclass(ModelFileError, ValueError) and issubclass(NotStorableError, TypeError)


def test_saving_a_variational_mixture_is_a_public_documented_error(tmp_path, X):
    model = OnlineBayesianGaussianMixture(3, random_state=0).fit(X)
    path = tmp_path / "m.npz"
    with pytest.raises(NotStorableError, match='format="pickle"') as err:
        save(model, path)
    assert err.value.what == "an OnlineBayesianGaussianMixture"
    assert "Cannot save an OnlineBayesianGaussianMixture" in str(err.value)
    assert not path.exists()
    assert "NotStorableError" in (save.__doc__ or "")
    # the way out the message gives works
    back = load(save(model, tmp_path / "m.joblib", format="pickle"), trusted=True)
    np.testing.assert_array_equal(back.weights_, model.weights_)


def test_a_callable_parameter_is_the_same_public_error(tmp_path, X):
    model = OnlineGaussianMixture(2, forgetting_rate=lambda step: 0.0).partial_fit(X)
    with pytest.raises(NotStorableError, match="forgetting_rate"):
        save(model, tmp_path / "m.npz")


def test_refusals_are_model_file_errors_without_a_made_up_version(tmp_path, X):
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    for call in (load, read_header):
        with pytest.raises(ModelFileError) as err:
            call(text)
        message = str(err.value)
        assert "unknown" not in message, message  # not "saved by online-gmm unknown"
        assert "saved by" not in message
        assert re.search(r"this is online-gmm \S+, which reads model file formats 1, 2\)\.$",
                         message), message
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(ModelFileError, match="damaged zip archive") as err:
        load(damaged)
    assert "saved by" not in str(err.value)


def test_a_file_that_names_its_version_still_says_it(tmp_path, X):
    path = save(OnlineGaussianMixture(2, random_state=0).fit(X), tmp_path / "m.joblib",
                format="pickle")
    with pytest.raises(UntrustedFileError) as err:
        load(path)
    assert f"saved by online-gmm {online_gmm.__version__}" in str(err.value)
