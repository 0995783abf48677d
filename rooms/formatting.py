"""Markdown for chat messages and room notepads, rendered once at write time.

Messages get a chat-sized subset of CommonMark; the notepad also gets lists, headings and
`[text](url)` links. Both outputs go through nh3, so the allow-lists below are the real
boundary and markdown-it's escaping is the first of two walls.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import emoji
import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

# GFM autolinks (http(s)://, www., bare e-mail) without the plugin's md.use(): that registers
# three rules plus "w" as a text terminator, which together cost more than the rest of a chat
# message's parse. Private names, so the tests pin the behaviour we rely on.
from mdit_py_plugins.gfm_autolink.index import _email_rule as _gfm_email
from mdit_py_plugins.gfm_autolink.index import _protocol_rule as _gfm_protocol
from mdit_py_plugins.gfm_autolink.index import _www_inline_rule as _gfm_www

MAX_MESSAGE_LENGTH = 10_000

_SAFE_URL_RE = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
_LINKED_SCHEMES = ("http", "https", "mailto")

# URLs that markdown-it's normalizers (mdurl parse, punycode, percent-coding: ~50 µs per link)
# would hand back unchanged; checked against them on a few hundred thousand generated URLs.
_PLAIN_URL_RE = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:[/?#][A-Za-z0-9;/?:@&=+$,\-_.!~*'()#]*)?"
    r"|(?:mailto:)?[A-Za-z0-9._+-]+@[A-Za-z0-9.-]+"
)

# Names can hold non-ASCII letters and punctuation (":piñata:", ":keycap_#:"); the dict lookup
# decides, the pattern only has to stop at whitespace and bound the work per colon.
_SHORTCODE_RE = re.compile(r":([^\s:]{1,80}):")

# A trailing dot ends the sentence, not the username ("thanks @bob.").
_USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]*[A-Za-z0-9_-]")


def _shortcode_table() -> dict[str, str]:
    # emoji.emojize looks names up by scanning all of EMOJI_DATA on a cache miss, so a message
    # full of made-up :names: would cost milliseconds each; one dict built at import avoids it.
    # Same precedence as emojize(language="alias"): aliases first, then the English CLDR name.
    fully_qualified = emoji.STATUS["fully_qualified"]
    english: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for char, data in emoji.EMOJI_DATA.items():
        if data["status"] > fully_qualified:
            continue
        english.setdefault(data["en"][1:-1], char)
        for alias in data.get("alias", ()):
            aliases.setdefault(alias[1:-1], char)
    return english | aliases


_SHORTCODES = _shortcode_table()


@functools.cache
def emoji_names() -> list[tuple[str, str]]:
    """(shortcode name, emoji) for the emoticon panel: one name per emoji, shortest first."""
    best: dict[str, str] = {}
    for name, char in _SHORTCODES.items():
        if "skin_tone" in name:
            continue
        if char not in best or len(name) < len(best[char]):
            best[char] = name
    return sorted(((name, char) for char, name in best.items()), key=lambda pair: pair[0])


class _ChatMarkdown(MarkdownIt):
    # Refusing other schemes here, not only in nh3, keeps `[x](javascript:...)` readable as
    # text instead of becoming an <a> that nh3 would strip down to a bare, dead anchor.
    def validateLink(self, url: str) -> bool:
        return _SAFE_URL_RE.match(url) is not None

    def normalizeLink(self, url: str) -> str:
        if _is_plain_url(url):
            return url
        return super().normalizeLink(url)

    def normalizeLinkText(self, link: str) -> str:
        if _is_plain_url(link):
            return link
        return super().normalizeLinkText(link)


def _is_plain_url(url: str) -> bool:
    # Punycode hosts are displayed decoded, so they take the slow path.
    return _PLAIN_URL_RE.fullmatch(url) is not None and "xn--" not in url.lower()


def _chat_inline(state: StateInline, silent: bool) -> bool:
    # One rule for every character only our extensions react to. Nothing else in markdown-it
    # starts at ":", "@" or "w", so when none of ours match, the character is taken as text
    # here instead of being offered to each remaining inline rule in turn.
    char = state.src[state.pos]
    if char == ":":
        matched = _scheme_autolink(state, silent) or _emoji_shortcode(state, silent)
    elif char == "@":
        matched = _gfm_email(state, silent) or _mention(state, silent)
    elif char == "w":
        matched = state.src.startswith("www.", state.pos) and _gfm_www(state, silent)
    else:
        return False
    if not matched:
        if not silent:
            state.append_pending(char)
        state.pos += 1
    return True


def _scheme_autolink(state: StateInline, silent: bool) -> bool:
    # The plugin trims the scheme off the pending text before validateLink gets its say, so
    # an "xmpp:" we refuse would lose its "xmpp". Checking first also spares the plugin's
    # scan of the whole pending text at every other colon.
    if not state.pending.endswith(_LINKED_SCHEMES):
        return False
    return _gfm_protocol(state, silent)


def _emoji_shortcode(state: StateInline, silent: bool) -> bool:
    src = state.src
    pos = state.pos
    # "a:b:c" and "12:30:" are not emoji; a shortcode starts a word (":smile::tada:" does).
    if pos > 0 and src[pos - 1].isalnum():
        return False
    match = _SHORTCODE_RE.match(src, pos, state.posMax)
    if match is None:
        return False
    name = match.group(1)
    if not name.isascii():
        name = unicodedata.normalize("NFKC", name)
    char = _SHORTCODES.get(name)
    if char is None:
        return False
    if not silent:
        state.append_pending(char)
    state.pos = match.end()
    return True


def _mention(state: StateInline, silent: bool) -> bool:
    mentionable = state.env.get("mentions")
    if not mentionable or silent or state.linkLevel > 0:
        return False
    src = state.src
    pos = state.pos
    if pos > 0 and (src[pos - 1].isalnum() or src[pos - 1] == "_"):
        return False
    match = _USERNAME_RE.match(src, pos + 1, state.posMax)
    if match is None:
        return False
    username = match.group().lower()
    if username not in mentionable:
        return False
    state.env["mentioned"].add(username)
    token = state.push("mention", "span", 0)
    token.content = match.group()
    token.meta = {"username": username}
    state.pos = match.end()
    return True


def _render_mention(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    return (
        f'<span class="mention" data-username="{escapeHtml(token.meta["username"])}">'
        f"@{escapeHtml(token.content)}</span>"
    )


def _build_markdown(*, notepad: bool) -> MarkdownIt:
    md = _ChatMarkdown("commonmark", {"html": False, "breaks": True, "xhtmlOut": False})
    md.enable("strikethrough")
    # html_* do nothing with html=False but still cost a call per line and per "<".
    # Images are off in both: <img> is not allowed, and nh3 would drop the alt text with it.
    # Without hr, a "---" line would turn the paragraph above into a setext heading, so
    # lheading goes too.
    off = ["html_block", "html_inline", "hr", "lheading", "image"]
    if not notepad:
        # Indented code is off as well: in chat, a line starting with spaces is just a line.
        off += ["list", "heading", "link", "reference", "code"]
    md.disable(off)
    # The text rule only stops at terminators; stopping at every "w" (as the GFM plugin asks)
    # cost more than any other single thing in English text, so stop only where "www." starts.
    md.inline.terminator_re = re.compile(md.inline.terminator_re.pattern + r"|www\.")
    md.inline.ruler.after("text", "chat_inline", _chat_inline)
    md.add_render_rule("mention", _render_mention)
    return md


_MESSAGE_MD = _build_markdown(notepad=False)
_NOTEPAD_MD = _build_markdown(notepad=True)

_MESSAGE_TAGS = {"p", "br", "strong", "em", "del", "s", "code", "pre", "blockquote", "a", "span"}
_NOTEPAD_TAGS = _MESSAGE_TAGS | {"ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6"}


def _cleaner(tags: set[str]) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=tags,
        attributes={"a": {"href"}, "span": {"data-username"}, "ol": {"start"}},
        allowed_classes={"span": {"mention"}},
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes={"http", "https", "mailto"},
        url_relative="deny",
    )


_MESSAGE_CLEANER = _cleaner(_MESSAGE_TAGS)
_NOTEPAD_CLEANER = _cleaner(_NOTEPAD_TAGS)


# Most chat lines hold no character any message syntax starts with: for them CommonMark's
# output is one escaped paragraph, and the parser can be skipped (the tests check both agree).
_PLAIN_LINE = re.compile(r"(?:[^*_~`>\[\]<&:@\\!|#\s]| )*")
_LINK_START = re.compile(r"https?|www\.", re.IGNORECASE)


def render_message(text: str, *, mentions: Mapping[str, str] | None = None) -> str:
    if _PLAIN_LINE.fullmatch(text) and not _LINK_START.search(text):
        stripped = text.strip(" ")
        return _MESSAGE_CLEANER.clean(f"<p>{escapeHtml(stripped)}</p>\n") if stripped else ""
    env = {"mentions": mentions, "mentioned": set()}
    return _MESSAGE_CLEANER.clean(_MESSAGE_MD.render(text, env))


def find_mentions(text: str, usernames: Iterable[str]) -> set[str]:
    mentioned: set[str] = set()
    env = {"mentions": {name.lower() for name in usernames}, "mentioned": mentioned}
    _MESSAGE_MD.parse(text, env)
    return mentioned


def render_notepad(text: str) -> str:
    return _NOTEPAD_CLEANER.clean(_NOTEPAD_MD.render(text))
