"""While Redis is unreachable, people can still log in, read and send.

Redis holds the rate-limit counters, presence and the live-event layer. None of them may turn
a write into a 500: rate limits are not enforced (fail open, logged), presence shows offline,
and live events are dropped (tabs catch up from the database). Here Redis is "down" for real:
the settings point at a loopback port where nothing listens.
"""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import reverse

from conftest import PASSWORD, client_for
from moderation import ratelimit
from rooms import presence
from rooms.models import Message
from tests.live import free_port


@pytest.fixture
def redis_down(settings):
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    }
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "send": (2, 60), "login_failure": (2, 600)}
    ratelimit._redis.cache_clear()
    yield url
    ratelimit._redis.cache_clear()


def test_sending_works_and_limits_are_not_enforced_while_redis_is_down(
    room, bob, redis_down, caplog
):
    client = client_for(bob)
    url = reverse("room_messages", args=[room.pk])
    with caplog.at_level(logging.WARNING, logger="moderation.ratelimit"):
        statuses = [client.post(url, {"body": f"m{i}"}).status_code for i in range(4)]
    # The limit is 2, but the counters are out of reach: every message goes through.
    assert statuses == [201] * 4
    assert Message.objects.filter(room=room).count() == 4
    assert "Rate limit 'send' not checked, Redis is unreachable" in caplog.text


def test_login_works_while_redis_is_down(alice, redis_down):
    client = Client()
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code in (200, 302)


def test_room_page_renders_with_everyone_offline_while_redis_is_down(room, alice, bob, redis_down):
    response = client_for(bob).get(room.get_absolute_url())
    assert response.status_code == 200
    assert presence.states([alice.pk, bob.pk]) == {alice.pk: "offline", bob.pk: "offline"}


def test_presence_report_is_dropped_with_a_warning(alice, redis_down, caplog):
    with caplog.at_level(logging.WARNING, logger="rooms.presence"):
        assert presence.report(alice.pk, "tab-1", "online") == ("offline", "offline")
    assert "Redis is unreachable" in caplog.text


def test_limits_count_again_once_redis_answers(room, bob, settings):
    """The other half of failing open: with Redis reachable the same limit refuses."""
    ratelimit.forget_all()
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "send": (2, 60)}
    client = client_for(bob)
    url = reverse("room_messages", args=[room.pk])
    statuses = [client.post(url, {"body": f"m{i}"}).status_code for i in range(3)]
    ratelimit.forget_all()
    assert statuses == [201, 201, 429]
