from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.live import ROOT


def check_with(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "env, message",
    [
        ({"DEBUG": "maybe"}, "DEBUG must be true or false"),
        ({"DATABASE_URL": "mysql://x@localhost/db"}, "PostgreSQL or SQLite"),
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL"),
        (
            {"DATABASE_POOL_SIZE": "lots", "DATABASE_URL": "postgres://p@127.0.0.1/x"},
            "whole number",
        ),
    ],
)
def test_bad_setting_stops_start_up_with_a_clear_message(env, message):
    result = check_with(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_embedded_default_passes_checks():
    env = {k: "" for k in ("DATABASE_URL", "REDIS_URL", "DEBUG")}
    result = check_with(**env)
    assert result.returncode == 0, result.stderr
