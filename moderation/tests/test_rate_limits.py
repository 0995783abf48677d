from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from conftest import PASSWORD, client_for
from moderation.ratelimit import forget_all
from rooms.models import Message


@pytest.fixture
def tight(settings):
    forget_all()
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "send": (3, 60), "login_failure": (3, 600)}
    yield settings
    forget_all()


def test_sending_too_fast_gets_429_with_retry(room, bob, tight):
    client = client_for(bob)
    url = reverse("room_messages", args=[room.pk])
    statuses = [client.post(url, {"body": f"m{i}"}).status_code for i in range(4)]
    assert statuses == [201, 201, 201, 429]
    refused = client.post(url, {"body": "again"})
    assert refused.content.decode().startswith("Slow down — try again in ")
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert Message.objects.count() == 3


def test_limit_is_per_person(room, alice, bob, tight):
    url = reverse("room_messages", args=[room.pk])
    for i in range(3):
        client_for(bob).post(url, {"body": f"b{i}"})
    assert client_for(alice).post(url, {"body": "mine"}).status_code == 201


def test_login_locks_after_repeated_failures(alice, tight):
    client = Client()
    url = reverse("login")
    for _ in range(3):
        assert client.post(url, {"username": "alice", "password": "wrong"}).status_code == 200
    locked = client.post(url, {"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Slow down" in locked.content.decode()
