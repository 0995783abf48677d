"""Changing a password, and choosing a new one from an emailed link: the new one works, the
old one does not, every other session ends and its open tabs close, and wrong input changes
nothing."""

from __future__ import annotations

import re

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse

from accounts.models import User
from conftest import PASSWORD, client_for
from moderation import ratelimit
from notifications.tests.live import SmtpSink
from rooms.tests.test_live import connect, frames
from rooms.tests.test_session_end import ended, open_tab
from tests.live import free_port

NEW_PASSWORD = "a new Parley passphrase 91"


def signed_in(client: Client) -> bool:
    return client.get(reverse("home")).status_code == 200


def can_log_in(username: str, password: str) -> bool:
    return (
        Client().post(reverse("login"), {"username": username, "password": password}).status_code
        == 302
    )


def change(client: Client, old: str, new: str, again: str | None = None):
    return client.post(
        reverse("password_change"),
        {"old_password": old, "new_password1": new, "new_password2": again or new},
    )


@pytest.fixture(autouse=True)
def no_counted_failures(db):
    ratelimit.forget_all()
    yield
    ratelimit.forget_all()


def test_settings_menu_offers_the_password_page(alice):
    client = client_for(alice)
    assert reverse("password_change") in client.get(reverse("home")).content.decode()
    page = client.get(reverse("password_change"))
    assert page.status_code == 200
    assert b"Change your password" in page.content


def test_changing_the_password_keeps_this_session_and_ends_the_others(alice):
    here, elsewhere = client_for(alice), client_for(alice)
    response = change(here, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302
    assert b"signed out everywhere else" in here.get(response.url).content
    assert signed_in(here)
    assert not signed_in(elsewhere)
    assert can_log_in("alice", NEW_PASSWORD)
    assert not can_log_in("alice", PASSWORD)


@pytest.mark.parametrize(
    ("old", "new", "again", "error"),
    [
        ("not it", NEW_PASSWORD, None, "Your old password was entered incorrectly"),
        (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!", "The two password fields didn"),
        (PASSWORD, "password", None, "This password is too common"),
        (PASSWORD, "", None, "This field is required"),
    ],
)
def test_a_wrong_change_is_refused_and_changes_nothing(alice, old, new, again, error):
    here, elsewhere = client_for(alice), client_for(alice)
    response = change(here, old, new, again)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert can_log_in("alice", PASSWORD)
    assert signed_in(here) and signed_in(elsewhere)


def test_guessing_the_old_password_is_limited(alice, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failure": (3, 900)}
    client = client_for(alice)
    assert [change(client, "guess", NEW_PASSWORD).status_code for _ in range(4)] == [
        400,
        400,
        400,
        429,
    ]
    # Even the right one waits now, and nothing changed.
    assert change(client, PASSWORD, NEW_PASSWORD).status_code == 429
    assert can_log_in("alice", PASSWORD) is False  # the login counts the same failures
    ratelimit.forget_all()
    assert can_log_in("alice", PASSWORD)


@pytest.mark.django_db(transaction=True)
async def test_a_new_password_closes_the_tabs_of_every_other_session(alice, bob):
    here = await database_sync_to_async(client_for)(alice)
    this_tab = await open_tab(here.cookies["sessionid"].value)
    other_tab = await connect(alice)
    bobs = await connect(bob)
    response = await database_sync_to_async(change)(here, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302
    assert await ended(other_tab, timeout=5)
    assert "session.ended" not in [f["type"] for f in await frames(this_tab)]
    assert "session.ended" not in [f["type"] for f in await frames(bobs)]
    await this_tab.disconnect()
    await bobs.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_staff_setting_a_password_closes_the_person_s_tabs(alice):
    root = await database_sync_to_async(User.objects.create_superuser)(
        "root", "root@example.com", PASSWORD
    )
    staff = await database_sync_to_async(client_for)(root)
    alices = await connect(alice)
    form = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    path = f"/admin/accounts/user/{alice.pk}/password/"
    response = await database_sync_to_async(staff.post)(path, form)
    assert response.status_code == 302
    assert await ended(alices, timeout=5)
    assert await database_sync_to_async(can_log_in)("alice", NEW_PASSWORD)


# Forgot your password? ------------------------------------------------------------------------


@pytest.fixture
def ask_for_link(django_capture_on_commit_callbacks):
    """POSTs an address to the reset page, running what it queues on commit (the test's own
    transaction never commits)."""

    def ask(email: str):
        with django_capture_on_commit_callbacks(execute=True):
            return Client().post(reverse("password_reset"), {"email": email})

    return ask


def link_in(sink: SmtpSink) -> str:
    (mail,) = sink.parsed()
    return re.search(r"https?://\S+(/accounts/password/reset/\S+/)", mail.get_content())[1]


def test_the_login_page_offers_a_reset(db):
    assert reverse("password_reset") in Client().get(reverse("login")).content.decode()


def test_a_reset_link_sets_a_new_password_once_and_ends_every_session(
    alice, smtp, settings, ask_for_link
):
    settings.PARLEY_BASE_URL = "https://parley.example"
    alice.email = "Alice@Example.com"
    alice.save()
    elsewhere = client_for(alice)
    response = ask_for_link("alice@example.com")
    assert response.status_code == 302 and response.url == reverse("password_reset_sent")
    assert smtp.wait_for(1, timeout=5)
    (mail,) = smtp.parsed()
    assert mail["To"] == "Alice@Example.com"
    assert "https://parley.example/accounts/password/reset/" in mail.get_content()
    browser = Client()
    form_page = browser.get(link_in(smtp), follow=True)
    assert b"Choose a new password" in form_page.content
    done = browser.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert done.status_code == 302 and done.url == reverse("password_reset_done")
    assert can_log_in("alice", NEW_PASSWORD)
    assert not signed_in(elsewhere)
    # Used once: the link no longer works.
    again = Client().get(link_in(smtp), follow=True)
    assert b"This link no longer works" in again.content


def test_a_reset_for_an_unknown_address_says_the_same_and_sends_nothing(alice, smtp, ask_for_link):
    response = ask_for_link("nobody@example.com")
    assert response.status_code == 302 and response.url == reverse("password_reset_sent")
    assert not smtp.wait_for(1, timeout=0.5)


def test_a_bad_address_is_refused(db, ask_for_link):
    response = ask_for_link("not an address")
    assert response.status_code == 400
    assert b"Enter a valid email address" in response.content


def test_a_wrong_new_password_from_a_link_is_refused_and_the_old_one_stays(
    alice, smtp, ask_for_link
):
    alice.email = "alice@example.com"
    alice.save()
    ask_for_link(alice.email)
    assert smtp.wait_for(1, timeout=5)
    browser = Client()
    form_page = browser.get(link_in(smtp), follow=True)
    refused = browser.post(
        form_page.redirect_chain[-1][0], {"new_password1": "abc", "new_password2": "abd"}
    )
    assert refused.status_code == 400
    assert b"The two password fields didn" in refused.content
    assert can_log_in("alice", PASSWORD)


def test_a_forged_link_is_refused(alice):
    page = Client().get(reverse("password_reset_confirm", args=["MQ", "forged-token"]))
    assert page.status_code == 200
    assert b"This link no longer works" in page.content


def test_reset_emails_to_one_address_are_limited(alice, smtp, settings, ask_for_link):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "password_reset": (2, 3600)}
    alice.email = "alice@example.com"
    alice.save()
    assert [ask_for_link("ALICE@example.com").status_code for _ in range(3)] == [302, 302, 429]
    assert smtp.wait_for(2, timeout=5)
    assert not smtp.wait_for(3, timeout=0.5)


def test_a_reset_while_the_mail_server_is_down_is_not_an_error(
    alice, settings, caplog, eager_celery, ask_for_link
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    alice.email = "alice@example.com"
    alice.save()
    response = ask_for_link(alice.email)
    assert response.status_code == 302
    assert "Could not send a password reset email" in caplog.text
    assert can_log_in("alice", PASSWORD)


def test_the_reset_pages_show_to_someone_signed_in_too(alice):
    page = client_for(alice).get(reverse("password_reset"))
    assert page.status_code == 200
    assert b"<h1>Forgot your password?</h1>" in page.content
