"""Your profile: the name your messages show, and the email address notifications and password
reset links go to (a new one asks for your password)."""

from __future__ import annotations

import base64
import re
from email.message import EmailMessage
from urllib.parse import quote, urlsplit

import pytest
from django.test import Client, TestCase
from django.urls import reverse

from accounts.models import User
from conftest import PASSWORD, client_for
from moderation import ratelimit
from rooms.actions import do_create_room, do_send_message
from rooms.models import RoomKind

capture_on_commit = TestCase.captureOnCommitCallbacks


@pytest.fixture(autouse=True)
def no_counted_failures(db):
    ratelimit.forget_all()
    yield
    ratelimit.forget_all()


def save(user: User, client: Client | None = None, **form):
    """POST the profile form, running what it queues once its writes commit (the test's own
    transaction never does)."""
    with capture_on_commit(execute=True):
        return (client or client_for(user)).post(reverse("profile"), form)


def link_in(mail: EmailMessage) -> str:
    return re.search(r"https?://\S+/accounts/profile/email/\S+/", mail.get_content())[0]


def link_path(mail: EmailMessage) -> str:
    return urlsplit(link_in(mail)).path


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


def test_a_new_name_reaches_open_pages_at_once(alice, bob, room, inbox):
    direct = do_create_room(alice, kind=RoomKind.DIRECT, members=[bob])
    bob_tab, alice_tab = inbox(bob), inbox(alice)
    assert save(alice, display_name="Alice Liddell", email=alice.email).status_code == 302
    renamed = {"type": "person.renamed", "user": alice.pk, "name": "Alice Liddell"}
    bob_frames = bob_tab.frames()
    # Once per room they share (each room's tabs hear it), and the direct room's list entry,
    # which is named after her.
    assert [{k: f[k] for k in renamed} for f in bob_frames if f["type"] == "person.renamed"] == [
        renamed,
        renamed,
    ]
    (entry,) = [f for f in bob_frames if f["type"] == "room.updated"]
    assert entry["room"] == direct.pk and "Alice Liddell" in entry["html"]
    # Her own tabs too (the sidebar shows her name), in rooms or not.
    assert renamed["name"] in [f.get("name") for f in alice_tab.frames()]
    # Saving the same name again tells nobody anything.
    save(alice, display_name="Alice Liddell", email=alice.email)
    assert bob_tab.frames() == []


def test_a_new_email_needs_the_password(alice, smtp):
    alice.email = "alice@example.com"
    alice.save()
    without = save(alice, display_name="", email="thief@example.com")
    assert without.status_code == 400
    assert "Type your password to change your email address." in without.content.decode()
    wrong = save(alice, display_name="", email="thief@example.com", password="guess")
    assert wrong.status_code == 400
    assert "That is not your password." in wrong.content.decode()
    assert stored(alice)[1] == "alice@example.com"
    assert not smtp.wait_for(1, timeout=0.3)


def test_a_new_email_is_yours_once_you_open_the_link_sent_to_it(alice, smtp, settings):
    settings.PARLEY_BASE_URL = "https://parley.example"
    alice.email = "alice@example.com"
    alice.save()
    client = client_for(alice)
    response = save(alice, client, display_name="Al", email="new@example.com", password=PASSWORD)
    assert response.status_code == 302
    page = client.get(response.url).content.decode()
    assert "Open the link we sent to new@example.com" in page
    # The name is saved; the address waits for its link.
    assert stored(alice) == ("Al", "alice@example.com")
    assert smtp.wait_for(1, timeout=5)
    (mail,) = smtp.parsed()
    assert mail["To"] == "new@example.com"
    link = link_in(mail)
    assert link.startswith("https://parley.example/accounts/profile/email/")
    # The old address is not in the link, even encoded: its reader may not be the person.
    payload = link.split("/")[-2].split(":")[0]
    assert b"alice@example.com" not in base64.urlsafe_b64decode(payload + "==")
    path = link.removeprefix("https://parley.example")

    confirm = client.get(path)
    assert confirm.status_code == 200
    assert "Make <strong>new@example.com</strong> the email address" in confirm.content.decode()
    assert stored(alice)[1] == "alice@example.com"  # opening the link changes nothing yet
    with capture_on_commit(execute=True):
        done = client.post(path)
    assert done.status_code == 302
    assert "Your email address is now new@example.com." in client.get(done.url).content.decode()
    assert stored(alice) == ("Al", "new@example.com")
    # The old address is told.
    assert smtp.wait_for(2, timeout=5)
    notice = smtp.parsed()[1]
    assert notice["To"] == "alice@example.com"
    assert "is now new@example.com" in notice.get_content()
    # The link works once.
    again = client.post(path)
    assert again.status_code == 400
    assert "your email address has changed since it was sent" in again.content.decode()
    assert stored(alice)[1] == "new@example.com"


def test_of_two_links_the_first_opened_wins(alice, smtp):
    alice.email = "alice@example.com"
    alice.save()
    for address in ("one@example.com", "two@example.com"):
        save(alice, display_name="", email=address, password=PASSWORD)
    assert smtp.wait_for(2, timeout=5)
    first, second = (link_path(mail) for mail in smtp.parsed())
    client = client_for(alice)
    assert client.post(second).status_code == 302
    assert client.post(first).status_code == 400
    assert stored(alice)[1] == "two@example.com"


def test_a_link_is_refused_to_another_account_when_forged_or_too_old(alice, bob, smtp, settings):
    alice.email = "alice@example.com"
    alice.save()
    save(alice, display_name="", email="new@example.com", password=PASSWORD)
    assert smtp.wait_for(1, timeout=5)
    path = link_path(smtp.parsed()[0])
    for client, url, error in [
        (client_for(bob), path, "This link is for another account"),
        (client_for(alice), path[:-5] + "AAAA/", "it is incomplete, or more than 3 days old"),
    ]:
        for method in (client.get, client.post):
            refused = method(url)
            assert refused.status_code == 400
            assert error in refused.content.decode()
    settings.EMAIL_CHANGE_TIMEOUT = 0
    late = client_for(alice).post(path)
    assert late.status_code == 400
    assert "more than 0 days old" in late.content.decode()
    assert stored(alice)[1] == "alice@example.com"
    assert stored(bob)[1] == bob.email


def test_signed_out_the_link_asks_to_sign_in_first(alice, smtp):
    alice.email = "alice@example.com"
    alice.save()
    save(alice, display_name="", email="new@example.com", password=PASSWORD)
    assert smtp.wait_for(1, timeout=5)
    path = link_path(smtp.parsed()[0])
    response = Client().get(path)
    assert response.status_code == 302
    assert response.url == reverse("login") + "?next=" + quote(path)


def test_removing_the_email_needs_no_link(alice, smtp):
    alice.email = "alice@example.com"
    alice.save()
    response = save(alice, display_name="", email="", password=PASSWORD)
    assert response.status_code == 302
    assert stored(alice)[1] == ""
    assert smtp.wait_for(1, timeout=5)
    (notice,) = smtp.parsed()
    assert notice["To"] == "alice@example.com"


def test_links_asked_for_are_limited(alice, smtp, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "email_change": (2, 3600)}
    statuses = [
        save(alice, display_name=f"n{n}", email=f"{n}@example.com", password=PASSWORD).status_code
        for n in range(3)
    ]
    assert statuses == [302, 302, 429]
    assert stored(alice)[0] == "n1"  # the refused request saved nothing
    assert smtp.wait_for(2, timeout=5)
    assert not smtp.wait_for(3, timeout=0.5)


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
    sidebar = f'<span class="me" data-person-name="{alice.pk}">Alice</span>'
    assert sidebar in response.content.decode()


def test_guessing_the_password_here_is_limited(alice, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failure": (2, 900)}
    before = stored(alice)
    statuses = [
        save(alice, display_name="", email="x@example.com", password="guess").status_code
        for _ in range(3)
    ]
    assert statuses == [400, 400, 429]
    assert stored(alice) == before
