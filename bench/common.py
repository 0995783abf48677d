"""Helpers shared by the benchmarks in bench/: Django setup, people with sessions, a keep-alive
HTTP client that speaks Parley's CSRF, server processes and figures.

Import after putting the repository root on sys.path (each script does it first).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST_HASHERS = "django.contrib.auth.hashers.MD5PasswordHasher"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def setup_django() -> None:
    """Configure Django in this process from the environment, with a fast password hasher."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messages_site.settings")
    os.environ.setdefault("PASSWORD_HASHERS", FAST_HASHERS)
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def session_keys(users: Iterable) -> dict[int, str]:
    """A fresh logged-in session for each user, as `force_login` makes: {user id: session key}."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    backend = settings.AUTHENTICATION_BACKENDS[0]
    keys = {}
    for user in users:
        store = store_class()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = backend
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        keys[user.pk] = store.session_key
    return keys


class StatementCounter:
    """Counts the SQL statements run inside `with`, and keeps their text.

    Unlike CaptureQueriesContext it does not turn on Django's debug cursor, which formats
    every statement with its parameters: timings taken inside stay those of a production
    request.
    """

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.statements.append(sql)
        return execute(sql, params, many, context)

    def __len__(self) -> int:
        return len(self.statements)

    def __enter__(self) -> StatementCounter:
        from django.db import connection

        self._wrapped = connection.execute_wrapper(self)
        self._wrapped.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._wrapped.__exit__(*exc)


def session_cookie_name() -> str:
    from django.conf import settings

    return settings.SESSION_COOKIE_NAME


@contextmanager
def app_servers(count: int, env: dict[str, str]) -> Iterator[list]:
    """`count` server processes with `env`, stopped on exit whatever happens."""
    from tests.live import AppServer

    with ExitStack() as stack:
        yield [stack.enter_context(AppServer(env=env)) for _ in range(count)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pids_named(name: str) -> list[int]:
    """Processes whose command name is `name` (such as redis-server), for CPU figures."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds so far of each process that is still there."""
    found = {}
    for pid in pids:
        try:
            found[pid] = cpu_seconds(pid)
        except OSError:
            continue  # it exited
    return found


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two `cpu_by_pid` readings.

    A process that started in between counts whole; one that exited in between is missed.
    """
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def summary_ms(seconds: list[float]) -> dict[str, float | None]:
    """p50, p99 and max of durations given in seconds, in milliseconds."""
    if not seconds:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(seconds)
    p99 = ordered[math.ceil(0.99 * len(ordered)) - 1]  # nearest rank
    return {
        "p50": round(statistics.median(ordered) * 1000, 2),
        "p99": round(p99 * 1000, 2),
        "max": round(ordered[-1] * 1000, 2),
    }


def calibration_ms() -> float:
    """Milliseconds for sum(range(10**6)), best of 5: how fast Python runs on this machine
    just now (this VM's speed drifts by up to 2x over a day), to compare runs."""
    best = math.inf
    for _ in range(5):
        started = time.perf_counter()
        sum(range(10**6))
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
