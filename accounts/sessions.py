"""Sessions in the database (Django's db backend), written once when someone signs in.

Django's `cycle_key`, which `login()` calls so that a session fixed before sign-in is not the
one signed in, saves an empty session under a new key at once (after a query that the key is
free), and the response then saves it again with the person in it: a SELECT and two
transactions where one INSERT does. Here the old session is deleted and the new key is made
when the response saves the session, as Django's own `flush()` leaves it. A new key is not
looked up first either: the INSERT's primary key refuses a taken one and `create()` tries
another (`CreateError`).

A loaded session also knows when it ends (`expires_at`, as stored): an open websocket closes then.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils.crypto import get_random_string


class SessionStore(DatabaseSessionStore):
    # When the stored session ends; None until it is loaded, and for no session.
    expires_at: datetime | None = None

    def _get_session_from_db(self):
        stored = super()._get_session_from_db()
        self.expires_at = stored.expire_date if stored else None
        return stored

    def cycle_key(self) -> None:
        data, old_key = self._session, self.session_key
        self._session_key = None  # made by save(), which then INSERTs
        self._session_cache = data
        self.modified = True
        if old_key:
            self.delete(old_key)

    def _get_new_session_key(self) -> str:
        return get_random_string(32, VALID_KEY_CHARS)


def session_expiry(session_key: str) -> datetime | None:
    """When the session ends as stored now (saving a session moves it), or None: it ended."""
    store = SessionStore(session_key)
    store.load()
    return store.expires_at
