"""The rate limiter's added latency per request: one `check` for a person and their IP.

    REDIS_URL=redis://127.0.0.1:6379/2 .venv/bin/python bench/ratelimit.py   # Redis cache
    .venv/bin/python bench/ratelimit.py                                      # in-process cache

Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messages_site.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from moderation.ratelimit import check  # noqa: E402

SAMPLES = 5000


def main() -> None:
    settings.RATE_LIMITS["send"] = (10**9, 10)
    for _ in range(200):
        check("send", user_id=1, ip="127.0.0.1")
    samples = []
    for i in range(SAMPLES):
        start = time.perf_counter_ns()
        check("send", user_id=i % 100, ip="127.0.0.1")
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    print(
        json.dumps(
            {
                "bench": "ratelimit",
                "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
                "samples": SAMPLES,
                "p50_us": round(statistics.median(samples), 1),
                "p95_us": round(samples[int(SAMPLES * 0.95)], 1),
                "p99_us": round(samples[int(SAMPLES * 0.99)], 1),
                "cpu_count": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
