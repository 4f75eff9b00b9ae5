"""The demo's report ends with what its numbers mean and a one-line verdict."""

from __future__ import annotations

import numpy as np
import pytest

from online_gmm._cli.demo import report, verdict


def _digits(online_ll, batch_ll=-50.0):
    return {"data": "digits", "online_ll": online_ll, "batch_ll": batch_ll, "online_s": 0.3,
            "batch_s": 0.6, "online_ari": 0.5, "batch_ari": 0.3, "sizes": np.ones(10, int)}


def _drift(keep, forget):
    return {"n": 40000, "results": {0.0: (keep, 1.0), 0.005: (forget, 1.0)}}


@pytest.mark.parametrize(
    "online_ll, expected",
    [
        (-50.1, "comes within 0.20% of scikit-learn's converged batch EM in 0.50x its time"),
        (-49.0, "matches scikit-learn's converged batch EM (+2.00%)"),
        (-55.0, "falls 10.00% short of scikit-learn's converged batch EM"),
    ],
)
def test_the_verdict_says_how_close_the_stream_comes(online_ll, expected):
    line = verdict(_digits(online_ll), _drift(-17.7, -12.8))
    assert line.startswith("verdict: ") and "\n" not in line
    assert expected in line
    assert "forgetting follows the drift (+4.90 nats per sample)" in line


def test_the_verdict_says_when_forgetting_did_not_help():
    line = verdict(_digits(-50.1), _drift(-12.0, -13.0))
    assert "forgetting did not help on this drift (-1.00 nats per sample)" in line


def test_the_report_explains_its_numbers_and_ends_with_the_verdict():
    d, r = _digits(-50.1), _drift(-17.7, -12.8)
    lines = report(d, r)
    text = "\n".join(lines)
    assert "higher is better" in text
    assert "0.20% below the batch" in text
    assert "remembers about the last 200 samples" in text
    assert lines[-1] == verdict(d, r)
