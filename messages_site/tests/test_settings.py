from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection

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


def database_options(**env: str) -> str:
    code = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS'])"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "messages_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_postgres_prepares_statements_unless_told_not_to():
    url = "postgres://p@127.0.0.1/x"
    assert "'prepare_threshold': 5" in database_options(DATABASE_URL=url)
    assert "'server_side_binding': True" in database_options(DATABASE_URL=url)
    off = database_options(DATABASE_URL=url, DATABASE_PREPARED_STATEMENTS="0")
    assert "prepare_threshold" not in off and "server_side_binding" not in off


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL prepares statements")
def test_the_conversation_list_query_is_planned_once_per_connection(alice, bob, carol, room):
    from rooms.queries import room_list

    for _ in range(7):
        room_list(alice, limit=51)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans + custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            ['SELECT "rooms_membership"."id"%COALESCE((SELECT COUNT(%'],
        )
        prepared = cursor.fetchone()
    assert prepared is not None, "the conversation list's query was not prepared"
    assert prepared[0] >= 2  # prepared at the 5th run, then reused
