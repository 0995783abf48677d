from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rooms import formatting
from rooms.formatting import find_mentions, render_message, render_notepad

MEMBERS = {"bob": "Bob", "carol": "Carol", "dan.smith": "Dan Smith"}
LINK_REL = 'rel="noopener noreferrer nofollow"'


class _Page(HTMLParser):
    """What a browser would build from the output: elements, attributes and visible text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""
        self.feed(html)
        self.close()
        # Block elements end in a newline; the reader does not see it.
        self.text = self.text.strip("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text += data

    def tag_names(self) -> set[str]:
        return {tag for tag, _ in self.tags}


def message(text: str) -> str:
    return render_message(text, mentions=MEMBERS)


# Messages: inline syntax


@pytest.mark.parametrize("text", ["**bold**", "__bold__"])
def test_bold_renders_strong(text: str) -> None:
    assert message(text) == "<p><strong>bold</strong></p>\n"


@pytest.mark.parametrize("text", ["*slanted*", "_slanted_"])
def test_italic_renders_em(text: str) -> None:
    assert message(text) == "<p><em>slanted</em></p>\n"


def test_strikethrough_renders_s() -> None:
    assert message("~~gone~~") == "<p><s>gone</s></p>\n"


def test_inline_code_renders_code() -> None:
    assert message("run `make test` now") == "<p>run <code>make test</code> now</p>\n"


def test_underscores_inside_words_stay_literal() -> None:
    assert message("snake_case_name") == "<p>snake_case_name</p>\n"


def test_single_newline_becomes_line_break() -> None:
    assert message("first\nsecond") == "<p>first<br>\nsecond</p>\n"


def test_blank_line_starts_new_paragraph() -> None:
    assert message("first\n\nsecond") == "<p>first</p>\n<p>second</p>\n"


def test_block_quote_renders_blockquote() -> None:
    assert message("> quoted\n> still quoted\n\nreply") == (
        "<blockquote>\n<p>quoted<br>\nstill quoted</p>\n</blockquote>\n<p>reply</p>\n"
    )


# Messages: code is verbatim


def test_fenced_code_is_kept_verbatim() -> None:
    text = "```\n**not bold** :smile: <b>hi</b> https://example.com @bob\n```"
    assert message(text) == (
        "<pre><code>**not bold** :smile: &lt;b&gt;hi&lt;/b&gt; https://example.com @bob\n"
        "</code></pre>\n"
    )


def test_fenced_code_drops_language_class() -> None:
    assert message("```python\nx = 1\n```") == "<pre><code>x = 1\n</code></pre>\n"


@pytest.mark.parametrize(
    "code",
    ["**not bold**", ":smile:", "<b>hi</b>", "https://example.com", "www.example.com", "@bob"],
)
def test_inline_code_is_not_formatted(code: str) -> None:
    page = _Page(message(f"`{code}`"))
    assert page.tag_names() == {"p", "code"}
    assert page.text == code


# Messages: emoji


@pytest.mark.parametrize(
    ("text", "expected"),
    [(":smile:", "😄"), (":thumbsup:", "👍"), (":thumbs_up:", "👍"), (":+1:", "👍")],
)
def test_emoji_shortcode_becomes_emoji(text: str, expected: str) -> None:
    assert message(f"nice {text}") == f"<p>nice {expected}</p>\n"


def test_consecutive_emoji_shortcodes_all_convert() -> None:
    assert message(":smile::tada:") == "<p>😄🎉</p>\n"


def test_unknown_shortcode_stays_text() -> None:
    assert message(":definitely_not_an_emoji:") == "<p>:definitely_not_an_emoji:</p>\n"


def test_shortcode_glued_to_a_word_stays_text() -> None:
    assert message("a:b:c at 12:30:45") == "<p>a:b:c at 12:30:45</p>\n"


def test_unicode_emoji_passes_through() -> None:
    assert message("party 🎉👩‍💻") == "<p>party 🎉👩‍💻</p>\n"


# Messages: links


def test_url_is_linked_with_rel_and_new_tab() -> None:
    assert message("see https://example.com/a?b=1") == (
        '<p>see <a href="https://example.com/a?b=1" target="_blank" '
        f"{LINK_REL}>https://example.com/a?b=1</a></p>\n"
    )


def test_trailing_punctuation_is_not_part_of_link() -> None:
    page = _Page(message("look (https://example.com/path)."))
    assert page.tags[1] == (
        "a",
        {"href": "https://example.com/path", "target": "_blank", "rel": LINK_REL[5:-1]},
    )
    assert page.text == "look (https://example.com/path)."


def test_www_address_is_linked_over_http() -> None:
    assert 'href="http://www.example.com"' in message("www.example.com")


def test_email_address_is_linked_as_mailto() -> None:
    assert 'href="mailto:bob@example.com"' in message("mail bob@example.com")


def test_angle_bracket_autolink_is_linked() -> None:
    assert 'href="https://example.com"' in message("<https://example.com>")


def test_bare_domain_without_www_or_scheme_is_not_linked() -> None:
    assert message("edit settings.py on example.com") == (
        "<p>edit settings.py on example.com</p>\n"
    )


def test_non_ascii_url_is_percent_encoded_in_href() -> None:
    page = _Page(message("https://example.com/café"))
    assert page.tags[1][1]["href"] == "https://example.com/caf%C3%A9"
    assert page.text == "https://example.com/café"


def test_unsupported_scheme_stays_text() -> None:
    assert message("xmpp:bob@example.com") == "<p>xmpp:bob@example.com</p>\n"


@pytest.mark.parametrize("text", ["`https://example.com`", "```\nhttps://example.com\n```"])
def test_url_in_code_is_not_linked(text: str) -> None:
    assert "<a" not in message(text)


# Messages: mentions


def test_member_mention_renders_span() -> None:
    assert message("hi @bob") == (
        '<p>hi <span class="mention" data-username="bob">@bob</span></p>\n'
    )


def test_mention_matches_case_insensitively_and_keeps_typed_text() -> None:
    assert '<span class="mention" data-username="bob">@BoB</span>' in message("hi @BoB")


def test_mention_excludes_trailing_dot() -> None:
    assert message("thanks @dan.smith.") == (
        '<p>thanks <span class="mention" data-username="dan.smith">@dan.smith</span>.</p>\n'
    )


def test_non_member_mention_stays_text() -> None:
    assert message("hi @mallory") == "<p>hi @mallory</p>\n"


def test_longer_name_starting_with_member_name_is_not_a_mention() -> None:
    assert message("hi @bobby") == "<p>hi @bobby</p>\n"


def test_mention_without_member_list_stays_text() -> None:
    assert render_message("hi @bob") == "<p>hi @bob</p>\n"


@pytest.mark.parametrize("text", ["`@bob`", "```\n@bob\n```"])
def test_mention_in_code_stays_text(text: str) -> None:
    assert "mention" not in message(text)


@pytest.mark.parametrize("text", ["https://example.com/@bob", "carol@bob.example"])
def test_mention_inside_link_or_email_is_not_a_mention(text: str) -> None:
    assert "mention" not in message(text)


def test_find_mentions_returns_lowercased_members_outside_code() -> None:
    text = "@Bob and @CAROL, not `@dan.smith` nor @mallory"
    assert find_mentions(text, ["bob", "Carol", "dan.smith"]) == {"bob", "carol"}


def test_find_mentions_of_message_without_mentions_is_empty() -> None:
    assert find_mentions("hello all", ["bob"]) == set()


# Messages: notepad-only syntax stays text


@pytest.mark.parametrize(
    ("text", "absent_tag"),
    [
        ("- milk\n- eggs", "ul"),
        ("* milk", "ul"),
        ("1. first\n2. second", "ol"),
        ("# Title", "h1"),
        ("Title\n=====", "h1"),
        ("![cat](https://example.com/cat.png)", "img"),
        ("above\n\n---\n\nbelow", "hr"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "table"),
    ],
)
def test_message_does_not_render_notepad_syntax(text: str, absent_tag: str) -> None:
    page = _Page(message(text))
    assert absent_tag not in page.tag_names()
    assert page.text.replace("\n", "") == text.replace("\n", "")


def test_message_does_not_render_text_links_but_links_the_url() -> None:
    assert message("[click](https://example.com)") == (
        f'<p>[click](<a href="https://example.com" target="_blank" {LINK_REL}>'
        "https://example.com</a>)</p>\n"
    )


def test_indented_line_in_message_is_not_code() -> None:
    assert message("    four spaces") == "<p>four spaces</p>\n"


def test_typed_html_in_message_is_shown_as_text() -> None:
    assert message("<b>hi</b>") == "<p>&lt;b&gt;hi&lt;/b&gt;</p>\n"


# Notepad


@pytest.mark.parametrize("marker", ["-", "*"])
def test_notepad_bullet_list(marker: str) -> None:
    assert render_notepad(f"{marker} milk\n{marker} eggs") == (
        "<ul>\n<li>milk</li>\n<li>eggs</li>\n</ul>\n"
    )


def test_notepad_nested_list_with_two_spaces() -> None:
    assert render_notepad("- fruit\n  - apple\n  - pear\n- bread") == (
        "<ul>\n<li>fruit\n<ul>\n<li>apple</li>\n<li>pear</li>\n</ul>\n</li>\n"
        "<li>bread</li>\n</ul>\n"
    )


def test_notepad_numbered_list() -> None:
    assert render_notepad("1. one\n2. two") == "<ol>\n<li>one</li>\n<li>two</li>\n</ol>\n"


def test_notepad_numbered_list_keeps_starting_number() -> None:
    assert render_notepad("4. four\n5. five").startswith('<ol start="4">\n<li>four</li>')


@pytest.mark.parametrize("level", range(1, 7))
def test_notepad_heading_levels(level: int) -> None:
    assert render_notepad("#" * level + " Plan") == f"<h{level}>Plan</h{level}>\n"


def test_notepad_link_with_text() -> None:
    assert render_notepad("[the docs](https://example.com/docs)") == (
        f'<p><a href="https://example.com/docs" target="_blank" {LINK_REL}>the docs</a></p>\n'
    )


@pytest.mark.parametrize(
    "text",
    ["[x](javascript:alert(1))", "[x](JavaScript:alert(1))", "[x](data:text/html,hi)"],
)
def test_notepad_link_with_unsafe_scheme_is_text(text: str) -> None:
    page = _Page(render_notepad(text))
    assert "a" not in page.tag_names()
    assert page.text == text


def test_notepad_relative_link_is_text() -> None:
    assert "<a" not in render_notepad("[home](/rooms/1)")


def test_notepad_has_message_formatting() -> None:
    html = render_notepad("**bold** _it_ ~~old~~ `code` :smile: https://example.com\nnext")
    assert html.startswith("<p><strong>bold</strong> <em>it</em> <s>old</s> <code>code</code> 😄")
    assert '<a href="https://example.com"' in html
    assert "<br>\nnext" in html


def test_notepad_fenced_code_is_verbatim() -> None:
    assert render_notepad("```\n# not a heading\n- not a list\n```") == (
        "<pre><code># not a heading\n- not a list\n</code></pre>\n"
    )


def test_notepad_does_not_render_mentions() -> None:
    assert render_notepad("ask @bob") == "<p>ask @bob</p>\n"


# Hostile input

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "<div><b>unclosed",
    "<style>body { display: none }</style>",
    "<svg onload=alert(1)>",
    "<iframe src=https://evil.example></iframe>",
    "[x](javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "data:text/html,<script>alert(1)</script>",
    "<javascript:alert(1)>",
    '<https://example.com" onmouseover="alert(1)>',
    '![x](https://example.com/x.png" onerror="alert(1))',
    "```\n</code></pre><script>alert(1)</script>\n```",
    "`</code><script>alert(1)</script>`",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
]
# What the reader sees when it is not exactly what they typed.
VISIBLE = {
    "```\n</code></pre><script>alert(1)</script>\n```": "</code></pre><script>alert(1)</script>",
    "`</code><script>alert(1)</script>`": "</code><script>alert(1)</script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;": "<script>alert(1)</script>",
}
SAFE_TAGS = {"p", "br", "pre", "code", "a", "strong", "em", "s"}


@pytest.mark.parametrize("render", [message, render_notepad], ids=["message", "notepad"])
@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_is_defused_but_visible(render: Callable[[str], str], text: str) -> None:
    html = render(text)
    page = _Page(html)
    assert "<script" not in html
    assert page.tag_names() <= SAFE_TAGS
    for _tag, attrs in page.tags:
        assert not [name for name in attrs if name.startswith("on") or name == "style"]
        assert attrs.get("href", "https:").startswith(("https:", "http:", "mailto:"))
    assert page.text == VISIBLE.get(text, text)


SAMPLES = [
    "**bold** _it_ ~~s~~ `code` :smile: @bob https://example.com\nline two",
    "> quote\n\n```\n<b>raw</b>\n```",
    "- a\n  - b\n\n3. c\n\n## Head\n\n[docs](https://example.com/d) bob@example.com",
    *HOSTILE,
]


@pytest.mark.parametrize("text", SAMPLES)
def test_message_output_is_stable_under_sanitizer(text: str) -> None:
    html = message(text)
    assert formatting._MESSAGE_CLEANER.clean(html) == html


@pytest.mark.parametrize("text", SAMPLES)
def test_notepad_output_is_stable_under_sanitizer(text: str) -> None:
    html = render_notepad(text)
    assert formatting._NOTEPAD_CLEANER.clean(html) == html


def test_empty_text_renders_nothing() -> None:
    assert message("") == ""
    assert render_notepad("") == ""


def test_formatting_imports_without_django() -> None:
    repo = Path(__file__).resolve().parents[2]
    check = "import sys, rooms.formatting; sys.exit('django' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], cwd=repo).returncode == 0


def test_plain_text_fast_path_matches_the_parser():
    import random

    from rooms import formatting

    alphabet = "abcXYZ 019.,;?'\"-+=()/%$^{}\té漢😀" + "\u00a0"
    rng = random.Random(20261127)
    samples = ["", " ", "hello", "  padded  ", "- not a list", "1. not a list", "a -- b", "x = y"]
    samples += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80))) for _ in range(3000)
    ]
    checked = 0
    for text in samples:
        if not formatting._PLAIN_LINE.fullmatch(text):
            continue  # tabs and other spacing go through the parser
        checked += 1
        env = {"mentions": None, "mentioned": set()}
        slow = formatting._MESSAGE_CLEANER.clean(formatting._MESSAGE_MD.render(text, env))
        assert formatting.render_message(text) == slow, repr(text)
    assert checked > 500
