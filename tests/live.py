"""Real server processes for browser, multi-process and benchmark runs."""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, urlencode

from websockets.sync.client import connect as ws_connect

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(
    port: int,
    process: subprocess.Popen,
    name: str,
    timeout: float = 30.0,
    log: Callable[[], str] = str,
) -> None:
    """Return once `process` accepts connections on `port`; RuntimeError with its `log()` if it
    exits first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on {port} within {timeout}s:\n{log()}")


def procfile_command(process: str) -> list[str]:
    for line in (ROOT / "deploy" / "Procfile").read_text().splitlines():
        if line.startswith(f"{process}:"):
            return shlex.split(line.partition(":")[2])
    raise RuntimeError(f"deploy/Procfile has no {process!r} process")


def database_url(settings_dict: dict) -> str:
    """The DATABASE_URL that points another process at the same database."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    user = quote(settings_dict.get("USER") or "")
    password = quote(settings_dict.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


class AppServer:
    """A Uvicorn process serving Parley on a free loopback port, as deploy/Procfile runs it."""

    def __init__(self, *, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen | None = None
        self.log_path = ROOT / "var" / f"server-{self.port}.log"

    def command(self) -> list[str]:
        """deploy/Procfile's web process on this port: tests and benches run its options."""
        program, *options = procfile_command("web1")
        if not program.endswith("/uvicorn"):
            raise RuntimeError(f"deploy/Procfile's web1 no longer runs Uvicorn: {program}")
        options[options.index("--port") + 1] = str(self.port)
        return [sys.executable, "-m", "uvicorn", *options]

    def start(self, timeout: float = 30.0) -> AppServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_listening(self.port, self.process, "The server", timeout, self.log)
        except RuntimeError:
            self.stop()
            raise
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class HttpTab:
    """One person's keep-alive HTTP/1.1 connection to one server, keeping their cookies;
    `source` is the loopback address it connects from (127.0.0.2 is another machine to a
    server's rate limits)."""

    def __init__(
        self,
        port: int,
        cookies: dict[str, str],
        timeout: float = 10.0,
        source: str | None = None,
    ) -> None:
        self.connection = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=timeout, source_address=(source, 0) if source else None
        )
        self.cookies = dict(cookies)

    def request(
        self, method: str, path: str, form: dict | None = None, headers: dict | None = None
    ) -> tuple[int, str]:
        headers = {
            **(headers or {}),
            "Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items()),
        }
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


class SocketTab:
    """One person's tab sending its messages over its websocket (message.send), as the
    composer does while its socket is open. `source` as for HttpTab."""

    def __init__(
        self,
        port: int,
        cookies: dict[str, str],
        timeout: float = 10.0,
        source: str | None = None,
    ) -> None:
        self.timeout = timeout
        self.socket = ws_connect(
            f"ws://127.0.0.1:{port}/ws/",
            origin=f"http://127.0.0.1:{port}",
            additional_headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())},
            compression=None,
            proxy=None,
            open_timeout=timeout,
            close_timeout=1,
            # Room frames wait here between sends, however many: never push back on the server.
            max_queue=None,
            legacy=True,  # held across messages, not one `with` block
            **({"source_address": (source, 0)} if source else {}),
        )

    def ask(self, frame: dict) -> dict:
        """Send a frame carrying a client_token and return the server's answer to it; the room's
        other frames arriving meanwhile are passed over. TimeoutError without an answer."""
        self.socket.send(json.dumps(frame))
        deadline = time.monotonic() + self.timeout
        while True:
            reply = json.loads(self.socket.recv(timeout=max(0.0, deadline - time.monotonic())))
            if reply.get("client_token") == frame["client_token"]:
                return reply

    def send_message(self, room_id: int, body: str) -> int:
        """Send a message and return its id once the server has stored it."""
        token = uuid.uuid4().hex
        reply = self.ask(
            {"type": "message.send", "room": room_id, "body": body, "client_token": token}
        )
        if reply["type"] != "message.sent":
            raise RuntimeError(f"message.send refused {reply['status']}: {reply['error']}")
        return reply["id"]

    def close(self) -> None:
        self.socket.close()
