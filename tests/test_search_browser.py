"""Search in a real browser: type a query, see the matches marked, open one in its room."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from rooms.actions import do_send_message

pytestmark = pytest.mark.browser


def test_a_search_shows_marked_results_and_a_click_opens_the_message_in_its_room(
    open_page, room, alice, bob
):
    wanted = do_send_message(bob, room=room, body="the final invoice is attached")
    do_send_message(bob, room=room, body="the invoice draft")
    for n in range(3):
        do_send_message(bob, room=room, body=f"something else {n}")

    page = open_page(alice, "/search/")
    main = page.get_by_role("main")
    box = main.get_by_role("searchbox", name="Search")
    box.fill("final invoice")
    box.press("Enter")

    hits = main.locator(".search-hit")
    expect(hits).to_have_count(1)
    expect(hits.first).to_contain_text("Design")
    expect(hits.first).to_contain_text("Bob Jones")
    expect(hits.first.locator("mark")).to_have_text(["final", "invoice"])

    hits.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/rooms/{room.pk}/\?around={wanted.pk}#msg-{wanted.pk}$"))
    expect(page.locator(f"#msg-{wanted.pk}")).to_contain_text("the final invoice is attached")


def test_a_bad_query_says_why_on_the_page(open_page, room, alice):
    page = open_page(alice, "/search/")
    box = page.get_by_role("main").get_by_role("searchbox", name="Search")
    box.fill("invoice before:2015-05-01")
    box.press("Enter")
    expect(page.locator(".search-error")).to_have_text("Dates are written yyyyMMdd, like 20150501")


def test_people_and_rooms_opens_a_conversation_with_a_person(open_page, room, alice, bob):
    page = open_page(alice, "/search/?q=bob")
    main = page.get_by_role("main")
    main.get_by_role("navigation", name="Search in").get_by_role(
        "link", name="People & Rooms"
    ).click()
    expect(main.get_by_role("link", name="People & Rooms")).to_have_attribute(
        "aria-current", "page"
    )
    main.get_by_role("button", name="Bob Jones").click()
    expect(page).to_have_url(re.compile(r"/rooms/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bob Jones")
