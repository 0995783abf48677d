"""Time rooms.formatting.render_message on chat-like texts of about 200 B, 2 KB and 10 KB.

Run from the repository root: `.venv/bin/python bench/render.py`. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

# Runs as a plain script: make the project importable without Django settings.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from markdown_it import MarkdownIt  # noqa: E402

from rooms.formatting import MAX_MESSAGE_LENGTH, render_message  # noqa: E402

STOCK_MARKDOWN = MarkdownIt("commonmark")

MEMBERS = {name: name.title() for name in ("alice", "bob", "carol", "dan.smith", "erin")}

PROSE = (
    "the deploy is done and I think we should check the logs before lunch because "
    "yesterday something odd happened with the queue so maybe ask ops about it later "
    "also the new design looks great but the button colour needs another pass"
)
WORDS = PROSE.split()

# Chance per word of each decoration: about one word in nine carries some markup.
DECORATIONS = [
    (0.020, lambda rng: f"**{rng.choice(WORDS)}**"),
    (0.020, lambda rng: f"_{rng.choice(WORDS)}_"),
    (0.005, lambda rng: f"~~{rng.choice(WORDS)}~~"),
    (0.015, lambda rng: f"`{rng.choice(WORDS)}.{rng.choice(WORDS)}()`"),
    (0.010, lambda rng: f"https://example.com/{rng.choice(WORDS)}/{rng.randrange(1000)}?ref=chat"),
    (0.020, lambda rng: rng.choice([":smile:", ":thumbsup:", ":tada:", ":eyes:", "🎉", "👍"])),
    (0.020, lambda rng: f"@{rng.choice(list(MEMBERS))}"),
    (0.005, lambda rng: "@someone"),
]


def chat_text(target_bytes: int, seed: int) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < target_bytes:
        roll = rng.random()
        piece = rng.choice(WORDS)
        for chance, decorate in DECORATIONS:
            if roll < chance:
                piece = decorate(rng)
                break
            roll -= chance
        if rng.random() < 0.02:
            piece += rng.choice(["\n", "\n\n"])
        elif rng.random() < 0.06:
            piece += rng.choice([".", ",", "?", "!"])
        parts.append(piece)
        size += len(piece.encode()) + 1
    text = " ".join(parts)
    if target_bytes >= 2000:
        text += "\n\n> quoted from earlier: the queue is " + rng.choice(WORDS)
        text += "\n\n```\nfor job in queue:\n    job.run(**opts)  # @bob :smile:\n```\n"
    return text


def time_calls(render: Callable[[], object], samples: int) -> list[float]:
    for _ in range(max(10, samples // 10)):
        render()
    timings = []
    for _ in range(samples):
        start = time.perf_counter_ns()
        render()
        timings.append((time.perf_counter_ns() - start) / 1000)
    return timings


def main() -> None:
    result: dict[str, object] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    for label, target, samples in (("200B", 200, 3000), ("2KB", 2000, 800), ("10KB", 9800, 200)):
        text = chat_text(target, seed=target)
        assert len(text) <= MAX_MESSAGE_LENGTH
        timings = time_calls(partial(render_message, text, mentions=MEMBERS), samples)
        # Stock markdown-it (commonmark preset, no autolinks, emoji, mentions or nh3) on the
        # same text: what this machine makes of markdown-it-py itself, to read the rest against.
        stock = time_calls(partial(STOCK_MARKDOWN.render, text), samples)
        result[label] = {
            "input_bytes": len(text.encode()),
            "samples": samples,
            "median_us": round(statistics.median(timings), 1),
            "p95_us": round(statistics.quantiles(timings, n=20)[-1], 1),
            "stock_markdown_it_median_us": round(statistics.median(stock), 1),
        }
    # The common chat line with no markup at all takes the parser-free path.
    plain = "Sounds good, I will send the updated draft of the proposal to the client by Friday "
    plain += "afternoon so we can go through it together on Monday morning before the call, ok?"
    timings = time_calls(partial(render_message, plain, mentions=MEMBERS), 3000)
    result["200B_plain"] = {
        "input_bytes": len(plain.encode()),
        "samples": 3000,
        "median_us": round(statistics.median(timings), 1),
        "p95_us": round(statistics.quantiles(timings, n=20)[-1], 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
