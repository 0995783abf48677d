"""Signing in writes the session once, under a key the session did not have before."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.sessions import SessionStore
from conftest import PASSWORD

TRANSACTION = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")


def statements(captured) -> list[tuple[str, str]]:
    """Each statement's verb and first table, transactions left out."""
    return sorted(
        (q["sql"].split()[0], re.search(r'"(\w+)"', q["sql"]).group(1))
        for q in captured.captured_queries
        if not q["sql"].startswith(TRANSACTION)
    )


def session_of(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_signing_in_writes_the_session_once(alice):
    client = Client()
    with CaptureQueriesContext(connection) as captured:
        response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    # The person, their last login, and the session: no empty session saved first, no
    # query whether its key is free.
    assert statements(captured) == [
        ("INSERT", "django_session"),
        ("SELECT", "accounts_user"),
        ("UPDATE", "accounts_user"),
    ]
    stored = Session.objects.get(session_key=session_of(client)).get_decoded()
    assert stored[SESSION_KEY] == str(alice.pk)
    assert client.get(reverse("home")).status_code == 200


def test_signing_in_replaces_the_session_the_browser_had(alice):
    before = SessionStore()
    before["theme"] = "dark"  # something kept from before signing in
    before.create()
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = before.session_key

    client.post(reverse("login"), {"username": "alice", "password": PASSWORD})

    after = session_of(client)
    assert after != before.session_key  # a key fixed before sign-in is not the one signed in
    assert not Session.objects.filter(session_key=before.session_key).exists()
    stored = Session.objects.get(session_key=after).get_decoded()
    assert (stored["theme"], stored[SESSION_KEY]) == ("dark", str(alice.pk))


def test_a_new_key_that_is_taken_is_not_reused(db, monkeypatch):
    taken = SessionStore()
    taken["owner"] = "someone else"
    taken.create()
    keys = iter([taken.session_key, "a" * 32])
    store = SessionStore()
    # Two random keys that collide cannot be drawn for a test: the first one offered is taken.
    monkeypatch.setattr(store, "_get_new_session_key", lambda: next(keys))
    store["owner"] = "me"
    store.create()
    assert store.session_key == "a" * 32
    assert SessionStore(taken.session_key).load() == {"owner": "someone else"}
