"""Quoted history and signatures come off real-world reply layouts (files in replies/).

The same samples chose the library: mail-parser-reply gets all of them right (see the
module docstring of notifications/inbound.py and the closing note of issue 6).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from notifications.inbound import strip_quoted

SAMPLES = Path(__file__).parent / "replies"
EXPECTED = {
    "gmail.txt": "Sounds good, I'll send the contract tomorrow.",
    "gmail_wrapped_header.txt": "Yes, Thursday works for me.",
    "outlook.txt": "Approved, go ahead.\n\nRegards\nCarol Chen\nHead of Design",
    "outlook_from_block.txt": "Thanks — I'll take a look this afternoon.",
    "iphone.txt": "On my way, 10 minutes.",
    "signature_dashes.txt": "The budget is fine.",
    "german.txt": "Passt, danke!",
    "no_quote.txt": "Just a plain answer with no history at all.\n\nIt has two paragraphs.",
    # A quote the person answers inline is part of what they wrote.
    "inline_quote_kept.txt": "> Can you do Friday?\nYes, Friday is fine.",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reply_sample_keeps_only_the_new_text(name):
    text = (SAMPLES / name).read_text()
    assert strip_quoted(text) == EXPECTED[name]


def test_every_sample_has_an_expectation():
    assert {p.name for p in SAMPLES.glob("*.txt")} == set(EXPECTED)
