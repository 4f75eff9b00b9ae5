"""The documentation site builds with warnings as errors, and the gallery page is current."""

from __future__ import annotations

import html
import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import needs_docs

ROOT = Path(__file__).resolve().parents[2]


def test_gallery_page_is_generated_from_the_examples():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen_gallery.py"), "--check"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    for example in sorted((ROOT / "examples").glob("plot_*.py")):
        assert (ROOT / "docs" / "gallery" / f"{example.stem}.png").is_file(), example.stem


@needs_docs
def test_site_builds_strict(site):
    assert (site / "index.html").is_file()
    api = (site / "api" / "online_gmm" / "index.html").read_text()
    assert "OnlineGaussianMixture" in api and "partial_fit" in api
    gallery = (site / "gallery" / "index.html").read_text()
    assert "plot_drift_tracking.png" in gallery


# ---------------------------------------------------------------------- the API reference
API_PAGES = ("online_gmm", "diagnostics", "river", "core", "ssl_bridge")
_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|data|attr|obj|exc|const|ref):")


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def _page(site: Path, name: str) -> str:
    return (site / "api" / name / "index.html").read_text(encoding="utf-8")


def _parameters(page: str, object_id: str) -> dict[str, tuple[str, str]]:
    """``{name: (type, default)}`` of the Parameters table of the object ``object_id``."""
    start = page.index(f'id="{object_id}"')
    title = page.index('<span class="doc-section-title">Parameters:</span>', start)
    next_heading = page.find('class="doc doc-heading"', page.index(">", start))
    assert next_heading == -1 or title < next_heading, f"{object_id} has no Parameters"
    table = page[title : page.index("</table>", title)]
    rows = {}
    for row in re.findall(r'<tr class="doc-section-item">(.*?)</tr>', table, re.S):
        name, kind, _, default = (_text(c) for c in re.findall(r"<td>(.*?)</td>", row, re.S))
        rows[name] = (kind, default)
    return rows


def _same_default(shown: str, actual) -> bool:
    shown = shown.strip("\"'")
    if isinstance(actual, (int, float)) and not isinstance(actual, bool):
        try:
            return float(shown) == float(actual)
        except ValueError:
            return False
    return shown == str(actual)


def _check_parameters(page: str, object_id: str, cls) -> dict[str, tuple[str, str]]:
    rows = _parameters(page, object_id)
    signature = inspect.signature(cls).parameters
    assert set(rows) == set(signature), object_id  # one row per parameter
    for name, p in signature.items():
        if p.default is inspect.Parameter.empty:
            continue
        kind, default = rows[name]
        assert _same_default(default, p.default), (object_id, name, default, p.default)
    return rows


@needs_docs
def test_the_estimators_parameters_show_their_own_types_and_defaults(site):
    from online_gmm import OnlineGaussianMixture

    rows = _check_parameters(_page(site, "online_gmm"), "online_gmm.OnlineGaussianMixture",
                             OnlineGaussianMixture)
    assert rows["covariance_type"][1] == '"diag"'
    assert rows["anneal_schedule"] == ("str or callable", '"exponential"')
    assert rows["init_params"][1] == '"k-means++"'
    assert rows["means_init"][0].startswith("array-like")


@needs_docs
def test_the_variational_estimators_parameters_show_their_own_types_and_defaults(site):
    from online_gmm import OnlineBayesianGaussianMixture

    rows = _check_parameters(_page(site, "online_gmm"),
                             "online_gmm.OnlineBayesianGaussianMixture",
                             OnlineBayesianGaussianMixture)
    assert rows["weight_concentration_prior_type"][1] == '"dirichlet_process"'
    assert rows["mean_prior"][0].startswith("array-like")
    assert rows["covariance_type"][1] == '"diag"'


@needs_docs
def test_the_bridges_parameters_show_their_own_types_and_defaults(site):
    pytest.importorskip("torch", reason="torch is the torch extra")
    from ssl_bridge import GMMPrototypes

    rows = _check_parameters(_page(site, "ssl_bridge"), "ssl_bridge.GMMPrototypes", GMMPrototypes)
    assert rows["anneal_steps"] == ("int", "0")
    assert rows["anneal_schedule"] == ("str or callable", '"exponential"')
    assert rows["dead_threshold"] == ("float", "1e-3")
    assert rows["max_reseed"] == ("int or None", "None")
    assert rows["reg_covar"] == ("float", "1e-6")
    assert "k-means++" in rows["init_params"][0] and rows["init_params"][1] == '"k-means++"'


@needs_docs
@pytest.mark.parametrize("name", ["GaussianMixture", "GaussianMixtureDetector"])
def test_the_river_estimators_parameters_show_their_own_types_and_defaults(site, name):
    river = pytest.importorskip("online_gmm.river", reason="river is the river extra")
    cls = getattr(river, name)
    page = _page(site, "river")
    rows = _check_parameters(page, f"online_gmm.river.{name}", cls)
    assert rows["batch_size"] == ("int", "256")
    assert rows["covariance_type"][1] == '"diag"'
    for method in ("learn_one", "learn_many", "score_one" if "Detector" in name else
                   "predict_one"):
        assert f'id="online_gmm.river.{name}.{method}"' in page, method


@needs_docs
@pytest.mark.parametrize("name", API_PAGES)
def test_no_sphinx_role_is_left_as_text(site, name):
    text = _text(re.sub(r"<(script|style)\b.*?</\1>", "", _page(site, name), flags=re.S))
    left = [text[max(m.start() - 40, 0) : m.end() + 40] for m in _ROLE.finditer(text)]
    assert not left, left


@needs_docs
def test_roles_and_page_mentions_are_links(site):
    page = _page(site, "online_gmm")
    links = dict((_text(t), h) for h, t in re.findall(r'<a [^>]*href="([^"]*)"[^>]*>(.*?)</a>',
                                                         page, re.S))
    assert links["partial_fit"] == "#online_gmm.OnlineGaussianMixture.partial_fit"
    assert links["online_gmm.PowerDecay"] == "#online_gmm.PowerDecay"
    assert links["docs/algorithm.md"].startswith("../../algorithm/#")
    bridge = _page(site, "ssl_bridge")
    assert re.search(r'href="\.\./\.\./ssl/#[^"]*"><code>docs/ssl\.md</code></a>', bridge)


@needs_docs
def test_every_public_name_is_documented(site):
    import online_gmm

    page = _page(site, "online_gmm")
    for name in online_gmm.__all__:
        if name == "diagnostics":
            assert 'href="../diagnostics/"' in page or (site / "api" / "diagnostics").is_dir()
        elif name != "__version__":
            assert f'id="online_gmm.{name}"' in page, name


@needs_docs
def test_the_role_rewriter_on_its_own():
    spec = importlib.util.spec_from_file_location("crossrefs", ROOT / "docs/_hooks/crossrefs.py")
    crossrefs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(crossrefs)
    rewrite = crossrefs.rewrite

    def ref(identifier, title):
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    assert rewrite(":class:`a.B` and :py:meth:`~a.B.fit`") == f"{ref('a.B', 'a.B')} and " + ref(
        "a.B.fit", "fit")
    assert rewrite(":func:`the step <online_gmm.core.advance>`") == ref(
        "online_gmm.core.advance", "the step")
    assert rewrite(":ref:`a label`") == "*a label*"
    assert rewrite("see ``docs/algorithm.md`` and docs/ssl.md.") == (
        "see [`docs/algorithm.md`][docs/algorithm.md] and [`docs/ssl.md`][docs/ssl.md].")
    assert rewrite("https://x.org/docs/a.md and mydocs/a.md") == (
        "https://x.org/docs/a.md and mydocs/a.md")
