"""Shared fixtures: named people, their rooms, logged-in clients, live servers and a browser.

alice owns the room, bob is a member, carol an admin, mallory an outsider.
"""

from __future__ import annotations

import os

import pytest
from django.test import Client

from accounts.actions import do_add_contact, do_create_user
from accounts.models import User
from rooms.actions import do_create_room, do_set_role
from rooms.models import Role, Room, RoomKind

FAST_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PASSWORD = "correct-horse-battery"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # On CI every layer must run: a skip there hides a missing service or install step.
    if ON_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped on CI, which counts as a failure: {report.longrepr}"


# Tests send far faster than people; rate-limit tests lower these again for themselves.
GENEROUS_RATE_LIMITS = {
    "RATE_LIMIT_SEND": "100000",
    "RATE_LIMIT_CREATE_ROOM": "100000",
    "RATE_LIMIT_INVITE": "100000",
    "RATE_LIMIT_REPORT": "100000",
    "RATE_LIMIT_LOGIN_FAILURES": "100000",
    "RATE_LIMIT_UPLOAD": "100000",
    "RATE_LIMIT_UPLOAD_CHUNKS": "100000",
}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = FAST_HASHERS


@pytest.fixture(autouse=True)
def generous_rate_limits(settings):
    settings.RATE_LIMITS = {
        scope: (100_000, period) for scope, (_, period) in settings.RATE_LIMITS.items()
    }


def make_person(username: str, name: str) -> User:
    return do_create_user(
        username=username,
        password=PASSWORD,
        email=f"{username}@example.com",
        display_name=name,
    )


@pytest.fixture
def alice(db) -> User:
    return make_person("alice", "Alice Adams")


@pytest.fixture
def bob(db) -> User:
    return make_person("bob", "Bob Jones")


@pytest.fixture
def carol(db) -> User:
    return make_person("carol", "Carol Chen")


@pytest.fixture
def dave(db) -> User:
    return make_person("dave", "Dave Diaz")


@pytest.fixture
def mallory(db) -> User:
    return make_person("mallory", "Mallory Moss")


def befriend(owner: User, *people: User) -> None:
    for person in people:
        do_add_contact(owner, person=person)


@pytest.fixture
def room(alice, bob, carol) -> Room:
    """A group room: alice owns it, carol is an admin, bob a member."""
    befriend(alice, bob, carol)
    room = do_create_room(alice, kind=RoomKind.GROUP, title="Design", members=[bob, carol])
    do_set_role(alice, room=room, user=carol, role=Role.ADMIN)
    return room


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(scope="session")
def test_database_url(django_db_setup, django_db_blocker) -> str:
    from django.db import connection

    from tests.live import database_url

    with django_db_blocker.unblock():
        return database_url(connection.settings_dict)


@pytest.fixture(scope="session")
def app_server(test_database_url):
    """One server process on the test database, shared by the browser tests."""
    from tests.live import AppServer

    env = {
        "DATABASE_URL": test_database_url,
        "PASSWORD_HASHERS": ",".join(FAST_HASHERS),
        **GENEROUS_RATE_LIMITS,
    }
    with AppServer(env=env) as server:
        yield server


class Inbox:
    """A channel listening to one person's group and their rooms' groups, as a tab would.

    It keeps one event loop of its own: a pub/sub channel layer serves a channel only on the
    loop that created it. It does not follow joins and leaves made after it starts listening.
    """

    def __init__(self, user: User) -> None:
        import asyncio

        from channels.layers import get_channel_layer

        from rooms.events import room_group, user_group
        from rooms.queries import listening_room_ids

        self.loop = asyncio.new_event_loop()
        self.layer = get_channel_layer()
        self.channel = self.loop.run_until_complete(self.layer.new_channel())
        groups = [user_group(user.pk), *(room_group(r) for r in listening_room_ids(user.pk))]
        for group in groups:
            self.loop.run_until_complete(self.layer.group_add(group, self.channel))

    def frames(self, wait: float = 0.3) -> list[dict]:
        import asyncio
        import json

        async def drain() -> list[dict]:
            got = []
            while True:
                try:
                    message = await asyncio.wait_for(self.layer.receive(self.channel), wait)
                except TimeoutError:
                    return got
                if message["type"] == "live.frame":  # not a room's note that someone left
                    got.append(json.loads(message["frame"]))

        return self.loop.run_until_complete(drain())

    def close(self) -> None:
        self.loop.close()


@pytest.fixture
def inbox():
    opened: list[Inbox] = []

    def listen(user: User) -> Inbox:
        opened.append(Inbox(user))
        return opened[-1]

    yield listen
    for each in opened:
        each.close()


@pytest.fixture
def eager_celery():
    """Run Celery tasks in the test process, for tests about what a task does, not how it
    travels (the notification tests run a real worker for that)."""
    from messages_site.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before
