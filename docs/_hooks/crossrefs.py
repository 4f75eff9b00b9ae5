"""Cross-references in the API reference: Sphinx roles and ``docs/*.md`` mentions as links.

The docstrings are written for ``help()`` and numpydoc, with Sphinx roles
(``:class:`OnlineGaussianMixture```, ``:meth:`partial_fit```, ``:func:`~online_gmm.core.advance```)
and mentions of the documentation's pages (``docs/algorithm.md``). mkdocstrings renders
neither: a role is left as literal text. This file is loaded twice by ``mkdocs.yml``:

- as a griffe extension (``plugins.mkdocstrings.handlers.python.options.extensions``):
  :class:`SphinxRoles` rewrites every role, in every docstring, into an autorefs cross-reference
  to the object the name resolves to in the docstring's scope (a link where that object is
  rendered on the site, plain code where it is not: private modules, scikit-learn, torch),
  and every ``docs/<page>.md`` into a link to that page;
- as a MkDocs hook (``hooks``): :func:`on_page_content` registers each page of the site under
  the identifier ``docs/<page>.md`` with autorefs, so those links resolve (and a mention of a
  page that does not exist fails the strict build).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

#: ``:role:`target```, ``:py:role:`~target```, ``:role:`title <target>```.
ROLE = re.compile(
    r":(?:py:)?(?P<role>class|meth|func|mod|data|attr|obj|exc|const|ref|term):"
    r"`(?P<body>[^`]+)`"
)
#: ``docs/algorithm.md`` as RST or Markdown code, or bare (``docs/gallery/index.md`` too).
PAGE = re.compile(
    r"(?P<q>``|`)?(?<![\w/.])docs/(?P<page>[\w-]+(?:/[\w-]+)*\.md)(?(q)(?P=q))(?![\w/])"
)
#: Roles whose target is not a Python object: shown as text.
_TEXT_ROLES = {"ref", "term"}


def _target(body: str) -> tuple[str, str]:
    """(title, target) of a role's body: ``~a.b`` -> ("b", "a.b"), ``t <a.b>`` -> ("t", "a.b")."""
    body = body.strip()
    explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^<>]+)>", body)
    if explicit:
        return explicit["title"], explicit["target"].lstrip("~!")
    target = body.lstrip("!")
    if target.startswith("~"):
        target = target[1:]
        return target.rsplit(".", 1)[-1], target
    return target, target


def _resolve(obj: griffe.Object, target: str) -> str:
    """The full path of ``target`` in ``obj``'s scope (``target`` itself if unknown)."""
    head, _, rest = target.partition(".")
    try:
        path = obj.resolve(head)
    except (griffe.NameResolutionError, griffe.AliasResolutionError, KeyError):
        return target
    return f"{path}.{rest}" if rest else path


def rewrite(text: str, obj: griffe.Object | None = None) -> str:
    """``text`` with its Sphinx roles and ``docs/*.md`` mentions as autorefs references."""

    def role(match: re.Match) -> str:
        title, target = _target(match["body"])
        if match["role"] in _TEXT_ROLES:
            return f"*{title}*"
        identifier = _resolve(obj, target) if obj is not None else target
        return (
            f'<autoref identifier="{html.escape(identifier)}" optional>'
            f"<code>{html.escape(title)}</code></autoref>"
        )

    def page(match: re.Match) -> str:
        name = f"docs/{match['page']}"
        return f"[`{name}`][{name}]"

    return PAGE.sub(page, ROLE.sub(role, text))


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles and ``docs/*.md`` mentions in every docstring (see the module)."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is None or obj.is_alias:
            return
        new = rewrite(docstring.value, obj)
        if new != docstring.value:
            docstring.value = new
            docstring.__dict__.pop("parsed", None)  # parsed again from the new text

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self.on_object(obj=pkg)  # on_object is fired for the members only


def on_page_content(html: str, page: Any, config: Any, **kwargs: Any) -> str:
    """MkDocs hook: the page is the autorefs identifier ``docs/<its path>`` (its title)."""
    autorefs = config.plugins.get("autorefs")
    if autorefs is not None:
        identifier = f"docs/{page.file.src_uri}"
        if page.toc.items:
            autorefs.register_anchor(page, identifier, page.toc.items[0].id, primary=True)
        else:
            autorefs.register_url(identifier, page.url)
    return html
