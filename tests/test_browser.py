"""What people see in a real browser: Chromium through Playwright, against a live Daphne server.

Each person gets their own browser context. Everything that has to arrive live is written
through a browser (the Daphne process's channel layer only carries its own writes); data that
only has to be in the database before a page loads is made with the actions directly.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from conftest import PASSWORD, befriend
from rooms.actions import do_create_room, do_send_message
from rooms.models import Message, RoomKind

pytestmark = pytest.mark.browser


def group_room(owner, *members, title="Design"):
    befriend(owner, *members)
    return do_create_room(owner, kind=RoomKind.GROUP, title=title, members=members)


def send(page: Page, text: str) -> None:
    """Type `text` in the composer and press Enter; return once the sender sees it."""
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")


def timeline(page: Page):
    return page.locator("#messages .msg")


def message(page: Page, text: str):
    return timeline(page).filter(has=page.locator(".msg-body", has_text=text))


def sidebar(page: Page):
    return page.get_by_role("navigation", name="Conversations")


def sidebar_entry(page: Page, room):
    return page.locator(f"#room-item-{room.pk}")


def test_new_room_and_formatted_message_reach_the_other_person_live(open_page, alice, bob):
    befriend(alice, bob)
    bob_page = open_page(bob, "/")
    alice_page = open_page(alice, "/")

    sidebar(alice_page).get_by_role("link", name="New room").click()
    alice_page.get_by_label("Title").fill("Launch")
    alice_page.get_by_label("Bob Jones").check()
    alice_page.get_by_role("button", name="Create room").click()
    expect(alice_page.get_by_role("heading", name="Launch")).to_be_visible()

    sidebar(bob_page).get_by_role("link", name=re.compile("Launch")).click()
    expect(bob_page.get_by_role("heading", name="Launch")).to_be_visible()
    expect(bob_page.locator("body")).to_have_attribute("data-live", "connected")

    send(alice_page, "**hi** from _alice_")
    expect(bob_page.locator(".msg-body strong", has_text="hi")).to_be_visible()
    expect(bob_page.locator(".msg-body em", has_text="alice")).to_be_visible()

    send(bob_page, "Helo alice")
    reply = message(bob_page, "Helo alice")
    expect(message(alice_page, "Helo alice")).to_be_visible()
    # Only your own messages offer Edit.
    expect(message(bob_page, "from alice").get_by_role("button", name="Edit")).to_be_hidden()
    reply.get_by_role("button", name="Edit").click()
    reply.get_by_role("textbox", name="Edit message").fill("Hello alice")
    reply.get_by_role("button", name="Save").click()

    edited = message(alice_page, "Hello alice")
    expect(edited).to_be_visible()
    expect(edited.locator(".edited")).to_have_text("(edited)")
    expect(message(alice_page, "Helo alice")).to_have_count(0)
