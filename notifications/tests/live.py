"""Real mail and worker processes for the end-to-end test and bench/notify.py.

- `SmtpSink`: an aiosmtpd server in this process that keeps every mail it is given.
- `CeleryWorker`: `celery -A messages_site worker` as a subprocess.
- `InboundSmtp`: `manage.py run_inbound_smtp` as a subprocess.
"""

from __future__ import annotations

import email
import email.policy
import os
import socket
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]


class SmtpSink:
    """An SMTP server on a loopback port that stores what it receives, for tests and benches."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.mails: list[tuple[float, list[str], bytes]] = []
        self.changed = threading.Condition()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.changed:
            self.mails.append((time.time(), list(envelope.rcpt_tos), envelope.original_content))
            self.changed.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.mails) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.changed.wait(remaining)
        return True

    def parsed(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(raw, policy=email.policy.default) for _, _, raw in self.mails
        ]

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class _Process:
    name = "process"

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.log_path = ROOT / "var" / f"{self.name}-{os.getpid()}-{free_port()}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def start_and_wait_for(self, marker: str, timeout: float) -> None:
        """Start, and return once `marker` appears in the log."""
        self.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            if marker in self.log():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __exit__(self, *exc) -> None:
        self.stop()


class CeleryWorker(_Process):
    name = "celery"

    def __init__(self, env: dict[str, str], *, concurrency: int = 1, pool: str = "solo") -> None:
        super().__init__(
            [
                sys.executable, "-m", "celery", "-A", "messages_site", "worker",
                "--loglevel=INFO", f"--pool={pool}", f"--concurrency={concurrency}",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                f"--hostname=parley-test-{free_port()}@%h",
            ],
            env,
        )  # fmt: skip

    def __enter__(self, timeout: float = 60.0) -> CeleryWorker:
        self.start_and_wait_for(" ready.", timeout)
        return self


class InboundSmtp(_Process):
    name = "inbound-smtp"

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        super().__init__(
            [sys.executable, "manage.py", "run_inbound_smtp", "--port", str(self.port)], env
        )

    def __enter__(self, timeout: float = 30.0) -> InboundSmtp:
        self.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"run_inbound_smtp exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"run_inbound_smtp did not listen within {timeout}s:\n{self.log()}")


class CeleryBeat(_Process):
    """`celery -A messages_site beat` with a schedule file of its own under var/."""

    name = "celery-beat"

    def __init__(self, env: dict[str, str]) -> None:
        self.schedule = ROOT / "var" / f"celerybeat-{os.getpid()}-{free_port()}"
        super().__init__(
            [
                sys.executable, "-m", "celery", "-A", "messages_site", "beat",
                "--loglevel=INFO", "-s", str(self.schedule),
            ],
            env,
        )  # fmt: skip

    def __enter__(self, timeout: float = 60.0) -> CeleryBeat:
        self.start_and_wait_for("beat: Starting", timeout)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        for leftover in self.schedule.parent.glob(self.schedule.name + "*"):
            leftover.unlink(missing_ok=True)
