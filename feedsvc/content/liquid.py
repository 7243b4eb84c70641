"""Jekyll's Liquid in post bodies, for feeds (pure: strings and plain values in, text out).

What a feed reader needs of it is resolved; what only a site generator can run is taken
out, with a warning — Liquid source is never shown to readers:

- ``{{ site.X }}`` (``site.vars`` in config.yaml, the site's own ``_config.yml``, and
  site.url, site.baseurl and site.title from config.yaml), ``{{ page.X }}`` (the post's
  front matter, its title, date and URL), each with ``| relative_url`` or
  ``| absolute_url`` (both absolute: a feed has no page to be relative to);
- ``{% link _posts/… %}`` and ``{% post_url 2013-05-06-name %}``: the post's absolute URL
  (:func:`link_table` maps file names to URLs once the build knows them);
- ``{% raw %}`` (its text as written), ``{% highlight lang %}`` (a code block),
  ``{% comment %}`` (removed silently);
- any other tag: removed, a block tag (``{% for %}``, ``{% if %}``, ``{% capture %}`` … or
  a plugin's with a matching ``{% endX %}``) with everything up to its end tag.

Code is never touched: Markdown code spans, fenced and indented code blocks (found as
cmark-gfm finds them, markdown_code) and ``<pre>``/``<code>`` elements keep any
Liquid-looking text byte for byte. Whether Liquid runs at all is ``content.liquid``
(config.LiquidOptions): off, a body is left exactly as written.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from feedsvc.config import LiquidOptions
from feedsvc.content.links import LinkRef, link_key, short
from feedsvc.content.markdown_code import code_regions
from feedsvc.content.posts import ParsedSource
from feedsvc.content.urls import absolute_url
from feedsvc.models import Message, Problem, Severity

# A tag's arguments or an output's expression: bounded, so that a '{%' never closed
# costs a bounded look-ahead, not a scan of the rest of the body for each one.
_TOKEN = re.compile(
    r"\{%-?[ \t\r\n]*(?P<tag>[A-Za-z_]\w*)(?P<args>(?s:.){0,2000}?)-?%\}"
    r"|\{\{-?(?P<expr>(?s:.){0,2000}?)-?\}\}"
)
_HTML_CODE = re.compile(r"<(pre|code)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BACKTICKS = re.compile(r"`+")
_VARIABLE = re.compile(r"(site|page)((?:\.[\w-]+)+)")
_QUOTED = re.compile(r"""\s*("[^"]*"|'[^']*')\s*""")
_FILTER_NAME = re.compile(r"\s*([\w-]+)")
# Liquid's own block tags; a plugin's block is known by its end tag.
_BLOCKS = frozenset(("for", "if", "unless", "case", "capture", "tablerow"))
_VERBATIM = frozenset(("raw", "highlight", "comment"))
_BRANCHES = frozenset(("else", "elsif", "when", "break", "continue"))


@dataclass(slots=True)
class Expanded:
    """A body after Liquid: its text, what the author should know, the links it holds."""

    text: str
    problems: list[Problem] = field(default_factory=list)
    links: list[LinkRef] = field(default_factory=list)


def has_liquid(body: str) -> bool:
    """The cheap test every body takes: no '{%' and no '{{', nothing to do."""
    return "{%" in body or "{{" in body


def expand(
    body: str,
    *,
    path: str,
    first_line: int,
    markdown: bool,
    options: LiquidOptions,
    page: Mapping[str, Any],
    links: Mapping[str, str] | None,
) -> Expanded:
    """``body`` with its Liquid resolved or removed (see the module docstring).

    ``links``: :func:`link_table`'s mapping; None where the URLs are not known yet (a
    file's parse: links are collected, not resolved or warned about). ``page``: the
    post's variables. With ``options.enabled`` false, the body as it is."""
    if not options.enabled or not has_liquid(body):
        return Expanded(body)
    return _Expander(body, path, first_line, markdown, options, page, links).run()


def check_body(parsed: ParsedSource, options: LiquidOptions) -> Expanded:
    """What a body's Liquid holds that its author should know (tags not run, unknown
    variables), and the links it makes, checked when the file is read: every file is read
    by ``build`` and ``check`` alike, while only some posts are rendered."""
    body = parsed.body
    if not options.enabled or not has_liquid(body):
        return Expanded(body)
    return expand(
        body,
        path=parsed.path,
        first_line=parsed.body_line,
        markdown=parsed.body_format == "markdown",
        options=options,
        page=page_variables(parsed, ""),
        links=None,
    )


def page_variables(parsed: ParsedSource, url: str) -> dict[str, Any]:
    """``{{ page.X }}``: the front matter's values, with the post's title, date and URL."""
    page: dict[str, Any] = dict(parsed.page or {})
    page.update(title=parsed.title, url=url, categories=list(parsed.categories))
    page["tags"] = list(parsed.tags)
    if parsed.date is not None:
        page["date"] = parsed.date
    return page


class _Expander:
    """One body's pass: tokens left to right, code regions skipped."""

    def __init__(
        self,
        body: str,
        path: str,
        first_line: int,
        markdown: bool,
        options: LiquidOptions,
        page: Mapping[str, Any],
        links: Mapping[str, str] | None,
    ) -> None:
        self.body, self.path, self.first_line, self.markdown = body, path, first_line, markdown
        self.options, self.page, self.links = options, page, links
        self.out = Expanded("")
        regions = code_regions(body) if markdown else []
        if "<pre" in body or "<code" in body or "<PRE" in body or "<CODE" in body:
            regions = _merged(regions + [m.span() for m in _HTML_CODE.finditer(body)])
        self.code_starts = [start for start, _ in regions]
        self.code_ends = [end for _, end in regions]
        # Made on first need: line starts, verbatim end tags, block pairs.
        self.newlines: list[int] | None = None
        self.verbatim_ends: dict[str, list[tuple[int, int]]] = {}
        self.pairs: dict[int, re.Match[str]] | None = None

    def run(self) -> Expanded:
        body, parts, position = self.body, [], 0
        while (match := _TOKEN.search(body, position)) is not None:
            code_end = self._code_end(match.start())
            if code_end is not None:  # in code: copied as it is
                parts.append(body[position:code_end])
                position = code_end
                continue
            parts.append(body[position : match.start()])
            text, position = self._token(match)
            parts.append(text)
        parts.append(body[position:])
        text = "".join(parts)
        if _NOWHERE in text:  # a link to no post: its text stays, not a link to nowhere
            text = _NOWHERE_LINK.sub(_link_text, text).replace(_NOWHERE, "")
        self.out.text = text
        return self.out

    def _code_end(self, position: int) -> int | None:
        """The end of the code region ``position`` is in, or None."""
        index = bisect_right(self.code_starts, position) - 1
        if index >= 0 and position < self.code_ends[index]:
            return self.code_ends[index]
        return None

    def _line(self, position: int) -> int:
        if self.newlines is None:
            self.newlines = [m.start() for m in re.finditer("\n", self.body)]
        return self.first_line + bisect_left(self.newlines, position)

    def _warn(self, position: int, reason: Message) -> None:
        line = self._line(position)
        self.out.problems.append(Problem.of(self.path, reason, line, Severity.WARNING))

    def _token(self, match: re.Match[str]) -> tuple[str, int]:
        """What replaces the token at ``match``, and where the pass goes on."""
        if match["expr"] is not None:
            return self._output(match), match.end()
        name, args = match["tag"], match["args"]
        if name in _VERBATIM:
            return self._verbatim(match, name, args)
        if name in ("link", "post_url"):
            return self._link(match, name, args.strip()), match.end()
        if name.startswith("end") or name in _BRANCHES:
            orphan = Message.of(
                "liquid.orphan",
                "Liquid '%(tag)s' belongs to no open block: removed",
                tag=short(match.group()),
            )
            self._warn(match.start(), orphan)
            return "", match.end()
        end = self._block_end(name, match.end())
        if end is not None:
            removed = Message.of(
                "liquid.block_removed",
                "Liquid '%(tag)s' is not run here: removed with everything up to its "
                "'{%% end%(name)s %%}' (line %(line)s); write what it would produce into "
                "the post",
                tag=short(match.group()),
                name=name,
                line=self._line(end.start()),
            )
            self._warn(match.start(), removed)
            return "", end.end()
        if name in _BLOCKS:
            reason = Message.of(
                "liquid.unclosed_block",
                "Liquid '%(tag)s' has no '{%% end%(name)s %%}' and is not run here: the tag "
                "is removed; close it, or write what it would produce",
                tag=short(match.group()),
                name=name,
            )
        else:
            reason = Message.of(
                "liquid.tag_removed",
                "Liquid '%(tag)s' is not run here: removed; write what it would produce "
                "into the post",
                tag=short(match.group()),
            )
        self._warn(match.start(), reason)
        return "", match.end()

    def _verbatim(self, match: re.Match[str], name: str, args: str) -> tuple[str, int]:
        """raw, highlight and comment: their text up to the end tag, found as Liquid finds
        it (the first one, code or not)."""
        end = self._verbatim_end(name, match.end())
        if end is None:
            unclosed = Message.of(
                "liquid.unclosed_verbatim",
                "'%(tag)s' has no matching '{%% end%(name)s %%}': the tag is removed and "
                "the text after it kept; add the end tag",
                tag=short(match.group()),
                name=name,
            )
            self._warn(match.start(), unclosed)
            return "", match.end()
        inner = self.body[match.end() : end[0]]
        if name == "comment":
            return "", end[1]
        if name == "raw":
            return inner, end[1]
        language = args.split()[0] if args.split() else ""
        return _highlight(language, inner, self.markdown), end[1]

    def _verbatim_end(self, name: str, position: int) -> tuple[int, int] | None:
        """The span of the first ``{% end<name> %}`` at or after ``position`` (each kind
        found once per body, then looked up: linear however many tags are unclosed)."""
        ends = self.verbatim_ends.get(name)
        if ends is None:
            pattern = re.compile(r"\{%-?\s*end" + name + r"\s*-?%\}")
            ends = self.verbatim_ends[name] = [m.span() for m in pattern.finditer(self.body)]
        index = bisect_left(ends, (position, -1))
        return ends[index] if index < len(ends) else None

    def _block_end(self, name: str, position: int) -> re.Match[str] | None:
        """The end tag matching the ``name`` block whose opening tag ends at ``position``
        (nested blocks counted, code skipped); None when there is none."""
        if self.pairs is None:
            self.pairs = self._pair_blocks()
        return self.pairs.get(position)

    def _pair_blocks(self) -> dict[int, re.Match[str]]:
        """Every opening tag (by where it ends) paired with its end tag, in one pass over
        the tags outside code and verbatim blocks, a stack per name."""
        pairs: dict[int, re.Match[str]] = {}
        open_tags: dict[str, list[int]] = {}
        position = 0
        while (match := _TOKEN.search(self.body, position)) is not None:
            code_end = self._code_end(match.start())
            if code_end is not None:
                position = code_end
                continue
            position = match.end()
            tag = match["tag"]
            if tag is None or tag in ("link", "post_url") or tag in _BRANCHES:
                continue
            if tag in _VERBATIM:
                end = self._verbatim_end(tag, position)
                position = end[1] if end is not None else position
            elif tag.startswith("end") and open_tags.get(tag[3:]):
                pairs[open_tags[tag[3:]].pop()] = match
            elif not tag.startswith("end"):
                open_tags.setdefault(tag, []).append(match.end())
        return pairs

    def _link(self, match: re.Match[str], kind: str, target: str) -> str:
        ref = LinkRef("link" if kind == "link" else "post_url", target, self._line(match.start()))
        self.out.links.append(ref)
        if self.links is None:
            return ""
        return self.links.get(link_key(ref), _NOWHERE)

    def _output(self, match: re.Match[str]) -> str:
        """``{{ value | filter … }}``: the value as text, or nothing with a warning."""
        expr = match["expr"].strip()
        value, rest = self._value(expr)
        if isinstance(rest, Message):  # nothing to fill in: what to tell the author
            self._warn(match.start(), rest)
            return ""
        for name in _filters(rest):
            if name not in ("relative_url", "absolute_url"):
                not_run = Message.of(
                    "liquid.filter",
                    "Liquid filter '%(filter)s' in '%(tag)s' is not run here: the output is "
                    "removed; write the value into the post",
                    filter=name,
                    tag=short(match.group()),
                )
                self._warn(match.start(), not_run)
                return ""
            value = self._absolute(_text(value))
        return _text(value)

    def _value(self, expr: str) -> tuple[Any, str | Message]:
        """The value ``expr`` starts with and the text after it (its filters); or
        _MISSING and what to tell the author."""
        quoted = _QUOTED.match(expr)
        if quoted is not None:
            return quoted.group(1)[1:-1], expr[quoted.end() :]
        variable = _VARIABLE.match(expr)
        if variable is None or expr[variable.end() :].strip()[:1] not in ("", "|"):
            return _MISSING, Message.of(
                "liquid.expression",
                "Liquid '{{ %(expr)s }}' is not run here: removed; only site.*, page.* and "
                "quoted strings are filled in",
                expr=short(expr),
            )
        scope, keys = variable.group(1), variable.group(2)[1:].split(".")
        value: Any = self.options.site_vars if scope == "site" else self.page
        for key in keys:
            if not isinstance(value, Mapping) or key not in value:
                if scope == "site":
                    return _MISSING, Message.of(
                        "liquid.unknown_site_variable",
                        "unknown Liquid variable '%(name)s': removed; set it under site.vars "
                        "in config.yaml (or in the site's _config.yml)",
                        name=variable.group(),
                    )
                return _MISSING, Message.of(
                    "liquid.unknown_page_variable",
                    "unknown Liquid variable '%(name)s': removed; set it in the post's front "
                    "matter",
                    name=variable.group(),
                )
            value = value[key]
        return value, expr[variable.end() :]

    def _absolute(self, ref: str) -> str:
        """``relative_url`` / ``absolute_url``: an absolute URL below the site's, as the
        post's other root-relative URLs are made (urls.absolute_url)."""
        site_url = self.options.site_url  # ends in "/": origin + baseurl + "/"
        return absolute_url(ref, site_url, site_url) if ref.strip() else site_url


_MISSING: Any = object()
# What a link to no post leaves, until the link around it is taken out: NUL never reaches
# here (bodies are XML-clean first).
_NOWHERE = "\x00"
_NOWHERE_LINK = re.compile(
    r"(?<!!)\[(?P<md>[^\]\n]*)\]\([ \t]*\x00[ \t]*\)"
    r"|<a\s[^>]*?href=[\"']?\x00[\"']?[^>]*>(?P<html>.*?)</a\s*>",
    re.IGNORECASE | re.DOTALL,
)


def _link_text(match: re.Match[str]) -> str:
    return match["md"] if match["md"] is not None else match["html"]


def _filters(rest: str) -> list[str]:
    """The filter names of ``| a | b: "x"`` (arguments ignored: neither kept filter has any)."""
    names = []
    for part in rest.split("|")[1:]:
        found = _FILTER_NAME.match(part)
        names.append(found.group(1) if found else part.strip())
    return names


def _text(value: Any) -> str:
    """A value as Liquid prints it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "".join(_text(item) for item in value)
    return str(value)


def _highlight(language: str, code: str, markdown: bool) -> str:
    code = code.strip("\n")
    if not markdown:
        escaped = html.escape(code, quote=False)
        return f'<pre><code class="language-{language}">{escaped}</code></pre>'
    longest = max((len(run) for run in _BACKTICKS.findall(code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"\n{fence}{language}\n{code}\n{fence}\n"


def _merged(regions: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted regions, overlapping ones joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(regions):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
