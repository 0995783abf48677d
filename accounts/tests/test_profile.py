"""Your profile: the name your messages show, and the email address notifications and password
reset links go to (a new one asks for your password)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import User
from conftest import PASSWORD, client_for
from moderation import ratelimit
from rooms.actions import do_send_message


@pytest.fixture(autouse=True)
def no_counted_failures(db):
    ratelimit.forget_all()
    yield
    ratelimit.forget_all()


def save(user: User, **form):
    return client_for(user).post(reverse("profile"), form)


def stored(user: User) -> tuple[str, str]:
    user.refresh_from_db()
    return user.display_name, user.email


def test_settings_menu_offers_the_profile_page(alice):
    client = client_for(alice)
    assert reverse("profile") in client.get(reverse("home")).content.decode()
    page = client.get(reverse("profile"))
    assert page.status_code == 200
    assert b"Username: <strong>alice</strong>" in page.content


def test_a_new_name_shows_on_messages_old_and_new(alice, bob, room):
    do_send_message(alice, room=room, body="before the rename")
    response = save(alice, display_name="  Alice   Liddell ", email=alice.email)
    assert response.status_code == 302
    assert stored(alice)[0] == "Alice Liddell"
    page = client_for(bob).get(reverse("room", args=[room.pk])).content.decode()
    assert page.count("Alice Liddell") >= 1
    assert "before the rename" in page


def test_a_new_email_needs_the_password(alice):
    alice.email = "alice@example.com"
    alice.save()
    without = save(alice, display_name="", email="thief@example.com")
    assert without.status_code == 400
    assert "Type your password to change your email address." in without.content.decode()
    wrong = save(alice, display_name="", email="thief@example.com", password="guess")
    assert wrong.status_code == 400
    assert "That is not your password." in wrong.content.decode()
    assert stored(alice)[1] == "alice@example.com"
    right = save(alice, display_name="", email="new@example.com", password=PASSWORD)
    assert right.status_code == 302
    assert stored(alice)[1] == "new@example.com"


def test_the_name_alone_needs_no_password(alice):
    alice.email = "alice@example.com"
    alice.save()
    assert save(alice, display_name="Al", email="alice@example.com").status_code == 302
    assert stored(alice) == ("Al", "alice@example.com")


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"display_name": "x" * 151, "email": ""}, "at most 150 characters"),
        ({"display_name": "", "email": "not an address", "password": PASSWORD}, "valid email"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(alice, form, error):
    alice.display_name, alice.email = "Alice", "alice@example.com"
    alice.save()
    response = save(alice, **form)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert stored(alice) == ("Alice", "alice@example.com")
    # The refused values are in the form, not on the page's own person (the sidebar).
    assert '<span class="me">Alice</span>' in response.content.decode()


def test_guessing_the_password_here_is_limited(alice, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failure": (2, 900)}
    before = stored(alice)
    statuses = [
        save(alice, display_name="", email="x@example.com", password="guess").status_code
        for _ in range(3)
    ]
    assert statuses == [400, 400, 429]
    assert stored(alice) == before
