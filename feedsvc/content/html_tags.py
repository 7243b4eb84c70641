"""Which ``<…>`` in a post is HTML and which is text (pure: strings in, strings out).

Authors write ``Promise<T>``, ``List<Object>``, ``Connection<open/closed>`` or
``Bash의 <<EOF`` in prose and headings; an HTML parser takes each for a tag, drops it and
invents a closing tag (``<h2>Promise<t>의 T는…</t></h2>``). The rule, for Markdown and
HTML bodies alike:

- comments, ``<!DOCTYPE …>``, ``<![CDATA[…]]>`` and ``<?…?>`` are HTML;
- a tag is HTML when its name contains a hyphen (a custom element, ``<my-card>``) or a
  colon (a namespaced one, Word's ``<o:p>``), or is an HTML, SVG or MathML element
  written all in lower case, all in capitals (``<B>``, ``<BR>``) or in SVG's own
  camelCase (``<foreignObject>``);
- anything else is text, escaped (``&lt;T&gt;``): unknown names (``<T>``, ``<String>``,
  ``<EOF``), and known names written Capitalised (``<Object>``, ``<Data>``,
  ``<Option>``), which is how type names are written, not tags.

Inside ``<script>``, ``<style>``, ``<textarea>``, ``<title>`` and the like nothing is
touched (their text is not HTML), nor inside comments or attribute values.
"""

from __future__ import annotations

import re

_HTML = """
a abbr acronym address applet area article aside audio b base basefont bdi bdo bgsound big
blink blockquote body br button canvas caption center cite code col colgroup data datalist
dd del details dfn dialog dir div dl dt em embed fieldset figcaption figure font footer form
frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe image img input ins
isindex kbd keygen label legend li link listing main map mark marquee menu menuitem meta
meter multicol nav nextid nobr noembed noframes noscript object ol optgroup option output p
param picture plaintext pre progress q rb rp rt rtc ruby s samp script search section select
slot small source spacer span strike strong style sub summary sup table tbody td template
textarea tfoot th thead time title tr track tt u ul var video wbr xmp
"""
_SVG = """
a altGlyph altGlyphDef altGlyphItem animate animateColor animateMotion animateTransform
circle clipPath cursor defs desc discard ellipse feBlend feColorMatrix feComponentTransfer
feComposite feConvolveMatrix feDiffuseLighting feDisplacementMap feDistantLight
feDropShadow feFlood feFuncA feFuncB feFuncG feFuncR feGaussianBlur feImage feMerge
feMergeNode feMorphology feOffset fePointLight feSpecularLighting feSpotLight feTile
feTurbulence filter font foreignObject g glyph glyphRef hatch hatchpath hkern image line
linearGradient marker mask mesh meshgradient meshpatch meshrow metadata mpath path pattern
polygon polyline radialGradient rect script set solidcolor stop style svg switch symbol
text textPath title tref tspan unknown use view vkern
"""
_MATHML = """
math maction annotation menclose merror mfenced mfrac mglyph mi mlabeledtr mlongdiv
mmultiscripts mn mo mover mpadded mphantom mprescripts mroot mrow ms mscarries mscarry
msgroup msline mspace msqrt msrow mstack mstyle msub msubsup msup mtable mtd mtext mtr
munder munderover none semantics
"""
_CAMEL = frozenset(name for name in _SVG.split() if not name.islower())
KNOWN_ELEMENTS = frozenset(name.lower() for name in (_HTML + _SVG + _MATHML).split())
# Elements whose content is raw text: '<' inside is not a tag.
RAW_TEXT = frozenset(
    {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
     "noscript", "plaintext"}
)  # fmt: skip

# An HTML parser's view: '<' then a letter opens a tag whose name runs to a space, '/'
# or '>'; its end is the next '>' outside quoted attribute values.
_TAG_START = re.compile(r"<(/?)([A-Za-z][^\s/>]*)")
_TAG_REST = re.compile(r"""(?:[^>"']|"[^"]*"|'[^']*')*+>?""")
_NAMES = re.compile(r"</?([A-Za-z][^\s/>]*)")
_BARE_LT = re.compile(r"<(?![A-Za-z/!?])|</(?![A-Za-z])")
# A whole tag, name then attributes: '<p>', '<a href="…">', '</em>', '<br/>'.
_WHOLE_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)(?:\s[^<>]*)?/?>")


def is_html_name(name: str) -> bool:
    """Whether ``<name …>`` is markup (see the module's rule), not text."""
    if "-" in name or ":" in name:
        return True
    lower = name.lower()
    if lower not in KNOWN_ELEMENTS:
        return False
    return name == lower or name.isupper() or name in _CAMEL


def is_clearly_html(text: str) -> bool:
    """Whether a front-matter value (a description, an excerpt) is HTML rather than text:
    it holds a whole tag of a known element as markup writes it (``<p>``, ``<a href=…>``,
    ``<em>``, ``<br>``, ``</strong>``). ``Promise<T>의 의미``, ``Connection<open/closed>``
    and ``Bash의 <<< Here String, <<EOF`` are text."""
    return "<" in text and any(is_html_name(name) for name in _WHOLE_TAG.findall(text))


def has_text_tags(text: str) -> bool:
    """Whether ``text`` may hold a ``<name`` that is text (a cheap first look)."""
    return "<" in text and not all(is_html_name(name) for name in set(_NAMES.findall(text)))


def has_text_lt(html: str) -> bool:
    """Whether ``html`` may hold a '<' that is text: a tag that is text, or a '<' that
    opens nothing (``a < b``, ``<<<``)."""
    return "<" in html and (_BARE_LT.search(html) is not None or has_text_tags(html))


def escape_text_tags(html: str) -> str:
    """``html`` with every tag that is text escaped (``<T>`` → ``&lt;T&gt;``); markup,
    comments, raw-text elements' content and attribute values unchanged; a '<' that opens
    nothing is escaped too."""
    if not has_text_lt(html):
        return html
    out: list[str] = []
    position = 0
    length = len(html)
    while (start := html.find("<", position)) >= 0:
        out.append(html[position:start])
        position = start
        if html.startswith("<!--", start):
            end = html.find("-->", start + 4)
            position = length if end < 0 else end + 3
            out.append(html[start:position])
            continue
        tag = _TAG_START.match(html, start)
        if tag is None:
            # '<!…' and '<?…' are markup; '< ', '<<', '<3' open nothing: text, escaped
            out.append("<" if html.startswith(("<!", "<?"), start) else "&lt;")
            position = start + 1
            continue
        rest = _TAG_REST.match(html, tag.end())
        end = rest.end() if rest is not None else tag.end()
        name = tag.group(2)
        if is_html_name(name):
            out.append(html[start:end])
            position = end
            if not tag.group(1) and name.lower() in RAW_TEXT:
                position = _after_raw_text(html, name, end, out)
            continue
        inner = html[tag.end() : end]
        if inner.endswith(">") and "<" not in inner:
            out.append(f"&lt;{html[start + 1 : end - 1]}&gt;")
            position = end
        else:
            out.append("&lt;")
            position = start + 1
    out.append(html[position:])
    return "".join(out)


def _after_raw_text(html: str, name: str, position: int, out: list[str]) -> int:
    """Copy a raw-text element's content as is; the position after its closing tag's '<'."""
    closing = re.compile(rf"</{re.escape(name)}(?=[\s/>])", re.IGNORECASE)
    found = closing.search(html, position)
    end = len(html) if found is None else found.start()
    out.append(html[position:end])
    return end
