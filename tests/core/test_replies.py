"""A model's reply drawn as inert HTML: hostile markup is text, Markdown still works."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ollama_nb.presentation import replies
from ollama_nb.presentation.replies import LINK_SCHEMES, allowed_link, markdown_html, reply_html

#: What a model that read a hostile page may say (each is also in the browser test).
HOSTILE = {
    "img_onerror": "<img src=x onerror=\"window.__pwned='img'\">",
    "script": "<script>window.__pwned='script'</script>",
    "iframe": '<iframe src="https://evil.example/frame"></iframe>',
    "javascript_link": "[click me](javascript:window.__pwned='link')",
    "javascript_autolink": "<javascript:window.__pwned='autolink'>",
    "svg_onload": "<svg onload=\"window.__pwned='svg'\"><circle r=5 /></svg>",
    "remote_image": "![tracking pixel](https://evil.example/pixel.png)",
    "data_link": "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "html_in_table": "| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | ok |",
    "style_tag": "<style>body{background:url(https://evil.example/bg.png)}</style>",
    "event_in_code_lang": "```python onload=alert(1)\nprint(1)\n```",
    "object_embed": "<object data='https://evil.example/x.swf'></object><embed src=x>",
    "form": "<form action='https://evil.example'><input name=q autofocus onfocus=alert(1)></form>",
    "math_escape": "$x</span><img src=x onerror=alert(1)>$",
    "link_title": '[t](https://ok.example "x\\" onmouseover=\\"alert(1)")',
}


class _Tags(HTMLParser):
    """Every tag and attribute the browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(fragment: str) -> _Tags:
    parser = _Tags()
    parser.feed(fragment)
    parser.close()
    return parser


def assert_inert(fragment: str) -> None:
    """Only allowed tags; no event handler, no src, links only http/https/mailto."""
    for tag, attrs in parse(fragment).tags:
        assert tag in replies._TAGS, f"tag {tag!r} in {fragment!r}"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"{name} on <{tag}> in {fragment!r}"
            assert name in replies._ATTRIBUTES.get(tag, set()) | {"rel"}, (tag, name)
            if name == "href":
                assert value is not None and allowed_link(value), value
            if name == "style":
                assert value is not None and "url(" not in value and "expression" not in value


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_reply_is_inert_and_still_readable(name: str) -> None:
    fragment = markdown_html(HOSTILE[name])
    assert_inert(fragment)
    assert "<script" not in fragment and "<img" not in fragment and "<iframe" not in fragment
    assert "<svg" not in fragment and "<style" not in fragment and "<object" not in fragment
    assert parse(fragment).text, "the reply must still show as text"


def test_raw_html_is_shown_as_written() -> None:
    text = "".join(parse(markdown_html(HOSTILE["img_onerror"])).text)
    assert text.strip() == HOSTILE["img_onerror"]
    text = "".join(parse(markdown_html(HOSTILE["script"])).text)
    assert "<script>window.__pwned='script'</script>" in text


def test_links_only_http_https_mailto() -> None:
    assert {"http", "https", "mailto"} == LINK_SCHEMES
    html = markdown_html(
        "[a](https://a.example) [b](http://b.example) [c](mailto:c@example.org) "
        "[d](javascript:alert(1)) [e](vbscript:x) [f](file:///etc/passwd) [g](/lab/tree)"
    )
    hrefs = [attrs["href"] for tag, attrs in parse(html).tags if tag == "a"]
    assert hrefs == ["https://a.example", "http://b.example", "mailto:c@example.org"]
    assert "[d](javascript:alert(1))" in html  # refused links stay visible as text


def test_remote_image_becomes_a_link_and_loads_nothing() -> None:
    html = markdown_html(HOSTILE["remote_image"])
    tags = parse(html).tags
    assert (
        "a",
        {"href": "https://evil.example/pixel.png", "rel": "noopener noreferrer nofollow"},
    ) in tags
    assert all(tag != "img" and "src" not in attrs for tag, attrs in tags)
    assert ">image: tracking pixel</a>" in html


def test_markdown_still_renders() -> None:
    text = (
        "# Title\n\n- one\n- two\n\n1. first\n\n**bold** and *it* and ~~gone~~\n\n"
        "| x | y |\n|:--|--:|\n| 1 | 2 |\n\n> quoted\n\n"
        "```python\ndef f(x):\n    return x < 1\n```\n\nInline $a_1 * b_2$ and\n\n$$\\frac{a}{b}$$\n"
    )
    html = markdown_html(text)
    tags = [tag for tag, _ in parse(html).tags]
    for wanted in ("h1", "ul", "ol", "li", "strong", "em", "s", "table", "th", "td",
                   "blockquote", "pre", "code", "span"):  # fmt: skip
        assert wanted in tags, wanted
    # Highlighted: the keyword carries an inline colour; the comparison is escaped text.
    assert '<span style="color:#008000;font-weight:bold">def</span>' in html
    assert '<span style="color:#666">&lt;</span>' in html
    # Math is left for MathJax, not mangled into emphasis.
    assert "$a_1 * b_2$" in html and "$$\\frac{a}{b}$$" in html
    assert '<td style="text-align:right">2</td>' in html


def test_thinking_heading_and_notes_are_text() -> None:
    html = reply_html(
        "fine",
        thinking="<img src=x onerror=alert(1)>",
        heading="<b>model</b>",
        notes=["🔧 f(x='<script>') → ok"],
        footer="<i>footer</i>",
    )
    assert_inert(html)
    assert "&lt;b&gt;model&lt;/b&gt;" in html and "&lt;script&gt;" in html


def test_one_line_strips_control_codes_and_bounds_length() -> None:
    line = replies.one_line("server said \x1b[31mred\x1b[0m\nnext\x07" + "x" * 1000, 80)
    assert "\x1b" not in line and "\n" not in line and "\x07" not in line
    assert len(line) == 80 and line.startswith("server said  red")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<",
                ">",
                "img",
                "script",
                " onerror=",
                "javascript:",
                "](",
                "[x",
                "![",
                ")",
                "`",
                "```",
                "$",
                "\n",
                '"',
                "'",
                "&",
                "#",
                "|",
                "-",
                "*",
                "_",
                "svg",
                "on",
                "load",
                "=",
                "http://e.x/",
                "<a href=",
                "\\",
                " ",
                "data:",
            ]
        ),
        max_size=40,
    ).map("".join)
)
def test_any_reply_is_inert(text: str) -> None:
    assert_inert(markdown_html(text))


@pytest.mark.parametrize("text", ["[x]()", "[x](<>)", "[x](#top)", "[x](/files/secret)"])
def test_a_link_without_an_absolute_allowed_target_is_its_text(text: str) -> None:
    fragment = markdown_html(text)
    assert_inert(fragment)
    assert "<a" not in fragment and "x" in "".join(parse(fragment).text)


def test_tables_of_replies_are_escaped() -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {"answer": [HOSTILE["img_onerror"], HOSTILE["script"]], "score": [1.23456, None]},
        index=["<b>model</b>", "x"],
    )
    html = replies.frame_html(frame)
    assert_inert(html)
    assert "&lt;img src=x onerror=" in html and "&lt;b&gt;model&lt;/b&gt;" in html
    assert "1.23" in html and "<td>-</td>" in html


def test_streaming_updates_slow_down_when_drawing_is_slow() -> None:
    from itertools import count

    from ollama_nb.presentation.display import RENDER_SHARE, StreamView

    class Counting(StreamView):
        def update(self, bundle: dict[str, str]) -> None:
            assert "text/markdown" not in bundle
            self.updates += 1

    ticks = count()
    # Every clock reading is 10 ms later, so each render "costs" 10 ms.
    view = Counting(interval_s=0.0, now=lambda: next(ticks) * 0.01)
    for _ in range(100):
        view.feed("word ")
    # Unthrottled (interval 0) it would update on all 100 tokens; a render costing
    # 10 ms holds the next one back RENDER_SHARE x 10 ms.
    assert RENDER_SHARE == 4
    assert 100 // (RENDER_SHARE + 1) - 2 <= view.updates <= 100 // RENDER_SHARE + 1
