"""The API reference lists every public method of every public class, with its docstring;
every public method has a numpydoc docstring with examples; the pages render cleanly
(issue 31, items 1 and 5).

The site is built once (``mkdocs build --strict``, ``conftest.site``) and its HTML parsed.
"Public" means: the classes in ``__all__`` of ``online_gmm`` and ``ssl_bridge`` (and of the
modules they export), and their methods (functions, class and static methods) whose names
do not start with ``_``, defined in the class or in a base class of this project
(``BaseOnlineMixture``'s ``fit``): scikit-learn's and torch's own methods are theirs to
document. ``extra_repr`` (torch's hook for ``repr()``) is left off the site on purpose.
"""

from __future__ import annotations

import html
import importlib
import inspect
import re
from pathlib import Path

import pytest

from .conftest import needs_docs

PACKAGES = ("online_gmm", "ssl_bridge")
#: torch's hook for ``repr()`` (``mkdocs.yml`` filters it out of the site).
FRAMEWORK_HOOKS = {"extra_repr"}


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def public_classes() -> list[type]:
    """The classes exported by ``__all__`` of the packages and of the modules they export."""
    found: dict[str, type] = {}
    for package in PACKAGES:
        if not _importable(package):
            continue
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            objects = [obj]
            if inspect.ismodule(obj):
                objects = [getattr(obj, n) for n in getattr(obj, "__all__", [])]
            for o in objects:
                if inspect.isclass(o):
                    found[o.__qualname__] = o
    return [found[k] for k in sorted(found)]


def public_methods(cls: type) -> list[str]:
    names = []
    for klass in cls.__mro__:
        if klass.__module__.partition(".")[0] not in PACKAGES:
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in FRAMEWORK_HOOKS or name in names:
                continue
            if inspect.isfunction(value) or isinstance(value, classmethod | staticmethod):
                names.append(name)
    return names


CLASSES = public_classes()
METHODS = [(cls, m) for cls in CLASSES for m in public_methods(cls)]


def _id(item) -> str:
    cls, method = item
    return f"{cls.__name__}.{method}"


def test_the_public_classes_are_those_expected():
    names = {c.__name__ for c in CLASSES}
    assert {"OnlineGaussianMixture", "OnlineBayesianGaussianMixture", "PowerDecay",
            "ModelFileError", "UntrustedFileError", "NotStorableError"} <= names
    if _importable("ssl_bridge"):
        assert {"GMMPrototypes", "JointPrototypes"} <= names
    methods = {_id(m) for m in METHODS}
    assert {"OnlineGaussianMixture.fit", "OnlineGaussianMixture.partial_fit",
            "OnlineBayesianGaussianMixture.predict"} <= methods
    if _importable("ssl_bridge"):
        assert {"GMMPrototypes.update", "GMMPrototypes.targets", "JointPrototypes.forward"} <= (
            methods)


# ---------------------------------------------------------------------- the docstrings
@pytest.mark.parametrize("item", METHODS, ids=_id)
def test_every_public_method_has_a_numpydoc_docstring_with_examples(item):
    cls, method = item
    doc = inspect.getdoc(getattr(cls, method)) or ""
    assert doc.strip(), f"{_id(item)} has no docstring"
    assert re.search(r"^Examples\n-{8,}\n\s*>>> ", doc, re.M), f"{_id(item)}: no Examples"


def _public_docstrings():
    for cls in CLASSES:
        yield cls.__qualname__, inspect.getdoc(cls) or ""
        for method in public_methods(cls):
            yield f"{cls.__qualname__}.{method}", inspect.getdoc(getattr(cls, method)) or ""
    import online_gmm

    for name in online_gmm.__all__:
        obj = getattr(online_gmm, name)
        if inspect.isfunction(obj):
            yield name, inspect.getdoc(obj) or ""


def test_help_shows_no_markdown_links_and_no_rst_directives():
    """``help()`` prints the docstrings as they are: no ``[text][target]`` or ``[text](url)``
    (site-only syntax) and no ``.. directive::`` (a ``Warnings`` section instead)."""
    bad = {}
    for name, doc in _public_docstrings():
        found = re.findall(r"\]\[[\w.]+\]|\]\((?:https?:|\.)[^)]*\)|^\s*\.\. \w+::", doc, re.M)
        if found:
            bad[name] = found
    assert not bad, bad


# ---------------------------------------------------------------------- the rendered pages
def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def _summary(doc: str) -> str:
    """The docstring's first paragraph as the site shows it (roles by their title)."""
    first = doc.strip().split("\n\n", 1)[0]
    first = re.sub(r":(?:py:)?\w+:`~?([^`<]*?)(?:\s*<[^>]+>)?`",
                   lambda m: m[1].rsplit(".", 1)[-1] if "~" in m[0] else m[1], first)
    return " ".join(_words(first.replace("``", "")))


def _api_pages(site: Path) -> dict[str, str]:
    return {p.parent.name: p.read_text(encoding="utf-8")
            for p in (site / "api").glob("*/index.html")}


def _object_block(pages: dict[str, str], candidates: list[str]) -> tuple[str, str]:
    """(the identifier found, the HTML of that object's block: its heading to the next
    heading of an object that is not inside it)."""
    for ident in candidates:
        for page in pages.values():
            start = page.find(f'id="{ident}"')
            if start == -1:
                continue
            ends = [m.start() for m in re.finditer(r'<h\d id="([^"]+)" class="doc doc-heading"',
                                                   page[start + 1:])
                    if not m[1].startswith(ident + ".")]
            end = start + 1 + ends[0] if ends else len(page)
            return ident, page[start:end]
    raise AssertionError(f"none of {candidates} is on an API page")


def _class_candidates(cls: type) -> list[str]:
    package = cls.__module__.partition(".")[0]
    return [f"{package}.{cls.__name__}", f"{cls.__module__}.{cls.__name__}"]


@needs_docs
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_public_class_is_on_its_api_page_with_its_docstring(site, cls):
    _, block = _object_block(_api_pages(site), _class_candidates(cls))
    assert _summary(inspect.getdoc(cls)) in " ".join(_words(_text(block)))


@needs_docs
@pytest.mark.parametrize("item", METHODS, ids=_id)
def test_every_public_method_is_on_its_api_page_with_its_docstring(site, item):
    cls, method = item
    pages = _api_pages(site)
    class_id, _ = _object_block(pages, _class_candidates(cls))
    _, block = _object_block(pages, [f"{class_id}.{method}"])
    doc = inspect.getdoc(getattr(cls, method))
    shown = " ".join(_words(_text(block)))
    assert _summary(doc) in shown, (_id(item), _summary(doc), shown[:400])
    if re.search(r"^Examples\n-+", doc, re.M):
        assert "doc-section-title\">Examples" in block or ">Examples:<" in block, _id(item)
    # and in the page's table of contents
    page = next(p for p in pages.values() if f'id="{class_id}.{method}"' in p)
    assert f'href="#{class_id}.{method}"' in page


@needs_docs
def test_class_signatures_are_laid_out_one_parameter_a_line(site):
    """With ruff (the docs extra), mkdocstrings breaks a long signature into lines; without
    it a class's signature is one line of 800 characters."""
    pages = _api_pages(site)
    for ident in ("online_gmm.OnlineGaussianMixture", "online_gmm.OnlineBayesianGaussianMixture",
                  "ssl_bridge.GMMPrototypes"):
        if ident.startswith("ssl_bridge") and not _importable("ssl_bridge"):
            continue
        _, block = _object_block(pages, [ident])
        signature = re.search(r'<div class="doc-signature highlight"><pre>(.*?)</pre>', block,
                              re.S)
        assert signature, ident
        lines = _text(signature[1]).splitlines()
        assert len(lines) > 10 and max(map(len, lines)) < 100, (ident, lines[:3])


@needs_docs
def test_types_and_warnings_render_as_meant(site):
    pages = _api_pages(site)
    text = _text(pages["online_gmm"])
    assert "path - like" not in text and "path-like" not in text  # "str or os.PathLike"
    assert ".. warning::" not in text
    _, load = _object_block(pages, ["online_gmm.load"])
    assert re.search(r'<details class="warning"|<div class="admonition warning"', load), (
        "load's pickle warning is not an admonition")
    assert "arbitrary code" in _text(load)


@needs_docs
def test_the_api_pages_have_room_for_the_descriptions(site):
    """The extra stylesheet (docs/css/api.css) is on every page: wider content, and a
    parameter table whose description column is not squeezed."""
    css = (site / "css" / "api.css").read_text(encoding="utf-8")
    assert "doc-md-description" in css and "gallery-figure" in css
    for name, page in _api_pages(site).items():
        assert 'href="../../css/api.css"' in page, name
    gallery = (site / "gallery" / "index.html").read_text(encoding="utf-8")
    figures = re.findall(r'<a href="([^"]+\.png)"[^>]*><img [^>]*class="gallery-figure"', gallery)
    assert len(figures) >= 4, "the gallery's figures: as wide as the page, a click full size"
