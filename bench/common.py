"""Helpers shared by the benchmarks in bench/: Django setup, people with sessions, a keep-alive
HTTP client that speaks Parley's CSRF, server processes and figures.

Import after putting the repository root on sys.path (each script does it first).
"""

from __future__ import annotations

import http.client
import math
import os
import platform
import re
import statistics
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

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


def session_cookie_name() -> str:
    from django.conf import settings

    return settings.SESSION_COOKIE_NAME


class HttpTab:
    """One person's keep-alive HTTP/1.1 connection to one server, keeping their cookies."""

    def __init__(self, port: int, cookies: dict[str, str], timeout: float = 10.0) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.cookies = dict(cookies)

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["X-CSRFToken"] = self.cookies.get("csrftoken", "")
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        text = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response.status, text

    def fetch_csrf_token(self, page: str) -> None:
        status, text = self.request("GET", page)
        if status != 200 or "csrftoken" not in self.cookies:
            raise RuntimeError(f"GET {page} gave {status} and no CSRF cookie: {text[:300]}")

    def send_message(self, room_id: int, body: str) -> int:
        """POST a message through the page endpoint and return its id."""
        status, html = self.request("POST", f"/rooms/{room_id}/messages/", {"body": body})
        if status != 201:
            raise RuntimeError(f"POST gave {status}: {' '.join(html.split())[:160]}")
        return int(re.search(r'id="msg-(\d+)"', html).group(1))

    def close(self) -> None:
        self.connection.close()


@contextmanager
def daphne_servers(count: int, env: dict[str, str]) -> Iterator[list]:
    """`count` Daphne processes with `env`, stopped on exit whatever happens."""
    from tests.live import DaphneServer

    with ExitStack() as stack:
        yield [stack.enter_context(DaphneServer(env=env)) for _ in range(count)]


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


def machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
