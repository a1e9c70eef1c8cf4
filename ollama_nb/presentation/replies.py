"""Untrusted text to inert display data: the one place a model's words become HTML.

A reply is written by a model that may have read a hostile page, so it is data,
never markup we trust. Publishing it as ``text/markdown`` is not safe: JupyterLab
renders an executed cell's output as *trusted*, and for trusted output neither its
Markdown renderer nor its HTML renderer sanitises (the HTML renderer even runs
``<script>`` tags). So we render the Markdown ourselves and publish ``text/html``
that is inert by construction, checked twice:

1. markdown-it-py (the CommonMark reference parser's Python port) with raw HTML
   *disabled*: a ``<img onerror>`` or ``<script>`` in a reply is text, shown as
   written. Links pass only for http, https and mailto; anything else
   (``javascript:``, ``data:``, relative paths) stays literal text. Images become
   a link with the alt text, so showing a reply never loads a remote URL. Code
   fences are highlighted by Pygments with inline colours (the front end has no
   Pygments stylesheet), and ``$…$`` / ``$$…$$`` math is kept as text for the
   front end's MathJax, which typesets rendered HTML output.
2. nh3 (bindings to the Rust sanitiser ammonia) cleans the result against an
   allow-list of tags, attributes, style properties and URL schemes. If a future
   markdown-it rule ever emitted something unexpected, it is removed here.

The value a user gets back (``_``, the history, a DataFrame cell) is the reply
unchanged; only what is drawn is made inert. Every surface (``%%chat``, the chat
panel, ``compare``, batch and report reprs, error lines) renders a reply through
this module; ``tests/structure/test_reply_rendering.py`` fails if one does not.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

#: The only link schemes a reply may carry.
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
#: Longest code block highlighted; longer ones are shown plain (Pygments is linear,
#: but a streamed answer is re-rendered several times a second).
MAX_HIGHLIGHT_CHARS = 20_000
#: Longest single line an error or notice shows of text a server or model sent.
MAX_LINE_CHARS = 500

if TYPE_CHECKING:
    import pandas as pd

_TAGS = frozenset(
    {
        "a", "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li",
        "blockquote", "pre", "code", "span", "div", "em", "strong", "s", "del",
        "table", "thead", "tbody", "tr", "th", "td", "details", "summary", "sub", "sup",
    }
)  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "table": {"class"},
    "tr": {"style"},
    "th": {"style"},
    "td": {"style"},
    "span": {"style", "class"},
    "div": {"style", "class"},
    "code": {"class"},
    "details": {"open"},
}
_STYLE_PROPERTIES = frozenset(
    {"color", "background-color", "font-weight", "font-style", "text-align", "font-size"}
)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x09\x0b-\x1f\x7f]")
_FORMATTER = HtmlFormatter(nowrap=True, noclasses=True)


def allowed_link(url: str) -> bool:
    """True for an absolute http, https or mailto URL (what a reply's link may point to)."""
    match = _SCHEME.match(url.strip())
    return match is not None and match.group(1).lower() in LINK_SCHEMES


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """Pygments spans for a fenced block whose language Pygments knows; else "" (escaped)."""
    if not lang or len(code) > MAX_HIGHLIGHT_CHARS:
        return ""
    return _highlighted(code, lang.strip().lower())


@functools.lru_cache(maxsize=256)
def _highlighted(code: str, lang: str) -> str:
    # Cached: a streamed answer is re-rendered several times a second, and every
    # finished block in it is the same text each time; only the growing one is new.
    try:
        lexer = get_lexer_by_name(lang)
    except ClassNotFound:
        return ""
    return str(pygments_highlight(code, lexer, _FORMATTER))


def _image_as_link(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """A Markdown image is drawn as a link to it: showing a reply loads nothing remote."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = renderer.renderInlineAsText(token.children or [], options, env) or src
    label = f"image: {html.escape(alt)}"
    if not allowed_link(src):
        return label
    return f'<a href="{html.escape(src, quote=True)}">{label}</a>'


def _link_open(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """Drop a link whose target is not an allowed absolute URL; its text stays.

    markdown-it validates a destination only when there is one, so ``[x]()`` would
    otherwise become ``<a href="">``, a link to the notebook page itself.
    """
    if allowed_link(str(tokens[idx].attrGet("href") or "")):
        return str(renderer.renderToken(tokens, idx, options, env))
    env["dropped_link"] = True
    return ""


def _link_close(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # CommonMark links do not nest, so one flag pairs an opening with its closing.
    if env.pop("dropped_link", False):
        return ""
    return str(renderer.renderToken(tokens, idx, options, env))


def _math(display: bool) -> Any:
    def render(
        renderer: RendererHTML,
        tokens: Sequence[Token],
        idx: int,
        options: OptionsDict,
        env: EnvType,
    ) -> str:
        content = html.escape(tokens[idx].content)
        if display:
            return f'<div class="math">$${content}$$</div>\n'
        return f'<span class="math">${content}$</span>'

    return render


def _parser() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        {"html": False, "linkify": False, "typographer": False, "highlight": _highlight},
    )
    md.enable(["table", "strikethrough"])
    md.validateLink = allowed_link  # type: ignore[method-assign]
    dollarmath_plugin(md, allow_digits=False, double_inline=True)
    md.add_render_rule("image", _image_as_link)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    md.add_render_rule("math_inline", _math(display=False))
    md.add_render_rule("math_inline_double", _math(display=True))
    md.add_render_rule("math_block", _math(display=True))
    return md


_MARKDOWN = _parser()


def clean_html(fragment: str) -> str:
    """The allow-list pass: tags, attributes, style properties and link schemes we emit."""
    return nh3.clean(
        fragment,
        tags=set(_TAGS),
        attributes={tag: set(names) for tag, names in _ATTRIBUTES.items()},
        url_schemes=set(LINK_SCHEMES),
        filter_style_properties=set(_STYLE_PROPERTIES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def markdown_html(text: str) -> str:
    """A reply's Markdown as inert HTML (raw HTML in it shown as text)."""
    return clean_html(_MARKDOWN.render(text))


def text_html(text: str) -> str:
    """Text shown exactly as written, wrapped, nothing interpreted."""
    return f"<pre style='white-space:pre-wrap'>{html.escape(text)}</pre>"


def frame_html(frame: pd.DataFrame) -> str:
    """A table of replies or of what servers said (batch, compare, reports), cells escaped."""
    return clean_html(frame.to_html(escape=True, float_format=_short, na_rep="-", border=0))


def _short(value: float) -> str:
    return f"{value:.3g}"


def one_line(text: str, limit: int = MAX_LINE_CHARS, *, keep_newlines: bool = False) -> str:
    """Text a server or model sent, fit for a notice: no control or ANSI codes, bounded.

    ``keep_newlines`` keeps line breaks (an error and its hint); the length bound holds.
    """
    flat = _CONTROL.sub(" ", text).strip()
    if not keep_newlines:
        flat = flat.replace("\n", " ")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def inline_html(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """Text a server sent (a status, a digest, an error) inside our own HTML: one escaped line."""
    return html.escape(one_line(text, limit))


def note_html(text: str) -> str:
    """A grey footnote line (our own words, or a model's, escaped either way)."""
    return f"<div style='color:#666;font-size:0.85em'>{html.escape(text)}</div>"


def json_html(value: object, *, open_levels: int = 1) -> str:
    """Collapsible JSON from a model (``-f json``): every key and value escaped."""

    def render(node: object, depth: int) -> str:
        if isinstance(node, dict | list):
            items = node.items() if isinstance(node, dict) else enumerate(node)
            opening = " open" if depth < open_levels else ""
            brackets = "{…}" if isinstance(node, dict) else "[…]"
            rows = "".join(
                f"<div style='margin-left:1.2em'><b>{html.escape(str(k))}</b>: "
                f"{render(v, depth + 1)}</div>"
                for k, v in items
            )
            return f"<details{opening}><summary>{brackets} {len(node)}</summary>{rows}</details>"
        return f"<code>{html.escape(json.dumps(node, ensure_ascii=False))}</code>"

    return f"<div style='font-family:monospace'>{render(value, 0)}</div>"


def reply_html(
    text: str,
    *,
    thinking: str = "",
    thinking_open: bool = False,
    heading: str = "",
    quoted: bool = False,
    notes: Sequence[str] = (),
    footer: str = "",
    placeholder: str = "",
) -> str:
    """One message as inert HTML: heading, folded thinking, the Markdown body, notes, footer.

    ``heading``, ``notes`` and ``footer`` are shown as plain text (tool lines carry a
    model's arguments); ``placeholder`` (ours, e.g. "waiting for the model") is shown
    in italics when there is no text yet.
    """
    parts = [f"<div><strong>{html.escape(heading)}</strong></div>"] if heading else []
    if thinking:
        opening = " open" if thinking_open else ""
        parts.append(
            f"<details{opening}><summary>Thinking</summary>"
            f"<div style='color:#666'>{markdown_html(thinking)}</div></details>"
        )
    if text:
        body = markdown_html(text)
        parts.append(f"<blockquote>{body}</blockquote>" if quoted else body)
    elif placeholder:
        parts.append(f"<p><em>{html.escape(placeholder)}</em></p>")
    parts.extend(f"<div><code>{html.escape(line)}</code></div>" for line in notes)
    if footer:
        parts.append(note_html(footer))
    return "\n".join(parts)


def reply_bundle(text: str, *, plain: str | None = None, **parts: Any) -> dict[str, str]:
    """``reply_html`` as a display bundle; ``text/plain`` is the reply as written."""
    return {"text/html": reply_html(text, **parts), "text/plain": text if plain is None else plain}
