from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import Client, TestCase
from django.urls import reverse

from accounts.models import Contact, User
from conftest import PASSWORD, client_for
from moderation import ratelimit
from rooms.models import Message, Room, RoomKind


def test_sign_up_logs_you_in(db):
    client = Client()
    response = client.post(
        reverse("signup"),
        {
            "username": "erin",
            "display_name": "Erin Eve",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
        },
    )
    assert response.status_code == 302 and response.url == reverse("home")
    assert User.objects.get(username="erin").name == "Erin Eve"
    assert client.get(reverse("contacts")).status_code == 200


def test_the_address_given_at_sign_up_is_yours_once_you_open_its_link(db, smtp):
    client = Client()
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            reverse("signup"),
            {
                "username": "erin",
                "email": "erin@example.com",
                "password1": "a-long-pass-phrase",
                "password2": "a-long-pass-phrase",
            },
        )
    assert response.status_code == 302 and response.url == reverse("profile")
    page = client.get(response.url).content.decode()
    assert "Welcome to Parley. Open the link we sent to erin@example.com" in page
    assert User.objects.get(username="erin").email == ""
    assert smtp.wait_for(1, timeout=5)
    (mail,) = smtp.parsed()
    assert mail["To"] == "erin@example.com"
    path = re.search(r"/accounts/profile/email/\S+/", mail.get_content())[0]
    assert client.post(path).status_code == 302
    assert User.objects.get(username="erin").email == "erin@example.com"


def test_sign_up_with_taken_username_is_refused(alice):
    response = Client().post(
        reverse("signup"),
        {"username": "alice", "password1": "a-long-pass-phrase", "password2": "a-long-pass-phrase"},
    )
    assert response.status_code == 400
    assert User.objects.filter(username="alice").count() == 1


def test_someone_signed_in_is_taken_home_from_sign_up(alice):
    client = client_for(alice)
    assert client.get(reverse("signup"))["Location"] == reverse("home")
    form = {
        "username": "erin",
        "password1": "a-long-pass-phrase",
        "password2": "a-long-pass-phrase",
    }
    assert client.post(reverse("signup"), form)["Location"] == reverse("home")
    assert not User.objects.filter(username="erin").exists()


def test_login_and_logout(alice):
    client = Client()
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_an_account_s_email_address_signs_in_as_it(alice):
    alice.email = "Alice@Example.com"
    alice.save()
    client = Client()
    response = client.post(
        reverse("login"), {"username": "alice@example.COM", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get(reverse("profile")).context["user"] == alice
    assert "Username or email" in Client().get(reverse("login")).content.decode()


def test_an_address_two_accounts_share_signs_in_neither(alice, bob):
    User.objects.filter(pk__in=[alice.pk, bob.pk]).update(email="shared@example.com")
    response = Client().post(
        reverse("login"), {"username": "shared@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert b"correct username and password" in response.content


@pytest.fixture
def fresh_counts():
    ratelimit.forget_all()
    yield
    ratelimit.forget_all()


def test_guesses_by_email_count_against_the_account(alice, settings, fresh_counts):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failure": (2, 900)}
    alice.email = "alice@example.com"
    alice.save()
    guesses = [
        Client().post(reverse("login"), {"username": "alice@example.com", "password": "guess"})
        for _ in range(2)
    ]
    assert [guess.status_code for guess in guesses] == [200, 200]
    # Her username is now held back too: the two guesses were at her account.
    held = Client().post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert held.status_code == 429


def test_wrong_password_is_refused(alice):
    response = Client().post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content


def test_add_contact_by_username_or_email(alice, bob, carol):
    client = client_for(alice)
    client.post(reverse("contacts"), {"person": "BOB"})
    client.post(reverse("contacts"), {"person": "carol@example.com"})
    assert set(Contact.objects.values_list("person__username", flat=True)) == {"bob", "carol"}
    page = client.get(reverse("contacts")).content.decode()
    assert "Bob Jones" in page and "Carol Chen" in page


@pytest.mark.parametrize("person", ["", "nobody", "alice"])
def test_bad_contact_is_refused_with_reason(alice, person):
    response = client_for(alice).post(reverse("contacts"), {"person": person})
    assert response.status_code == 400
    assert response.content.decode().strip()
    assert not Contact.objects.exists()


def test_remove_contact(alice, bob):
    client = client_for(alice)
    client.post(reverse("contacts"), {"person": "bob"})
    client.post(reverse("contact_remove", args=[bob.pk]))
    assert not Contact.objects.exists()


def test_seed_demo_is_safe_to_run_twice(db):
    call_command("seed_demo")
    counts = (User.objects.count(), Room.objects.count(), Message.objects.count())
    call_command("seed_demo")
    assert (User.objects.count(), Room.objects.count(), Message.objects.count()) == counts
    assert set(Room.objects.values_list("kind", flat=True)) == set(RoomKind.values)
    assert Room.objects.get(kind=RoomKind.CONTRACT).contract_active
    assert Client().login(username="dave", password="parley-demo")
