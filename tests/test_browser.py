"""What people see in a real browser: Chromium through Playwright, against a live server (Uvicorn).

Each person gets their own browser context. Everything that has to arrive live is written
through a browser (the server process's channel layer only carries its own writes); data that
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


def remember_this_page(page: Page) -> None:
    page.evaluate("window.__sameDocument = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"


def message_menu(msg):
    """Open a message's options menu, which shows on hover, and return it."""
    msg.hover()
    msg.get_by_label("Message options").click()
    menu = msg.get_by_role("menu")
    expect(menu).to_be_visible()
    return menu


def sidebar(page: Page):
    return page.get_by_role("navigation", name="Conversations")


def sidebar_entry(page: Page, room):
    return page.locator(f"#room-item-{room.pk}")


def test_new_room_and_formatted_message_reach_the_other_person_live(open_page, alice, bob):
    befriend(alice, bob)
    bob_page = open_page(bob, "/")
    remember_this_page(bob_page)
    alice_page = open_page(alice, "/")

    sidebar(alice_page).get_by_role("link", name="New room").click()
    alice_page.get_by_label("Title").fill("Launch")
    alice_page.get_by_label("Bob Jones").check()
    alice_page.get_by_role("button", name="Create room").click()
    expect(alice_page.get_by_role("heading", name="Launch")).to_be_visible()

    launch = sidebar(bob_page).get_by_role("link", name=re.compile("Launch"))
    expect(launch).to_be_visible()
    assert_not_reloaded(bob_page)
    launch.click()
    expect(bob_page.get_by_role("heading", name="Launch")).to_be_visible()
    expect(bob_page.locator("body")).to_have_attribute("data-live", "connected")
    remember_this_page(bob_page)
    remember_this_page(alice_page)

    send(alice_page, "**hi** from _alice_")
    expect(bob_page.locator(".msg-body strong", has_text="hi")).to_be_visible()
    expect(bob_page.locator(".msg-body em", has_text="alice")).to_be_visible()

    send(bob_page, "Helo alice")
    reply = message(bob_page, "Helo alice")
    expect(message(alice_page, "Helo alice")).to_be_visible()
    # Only your own messages offer Edit and Delete.
    theirs = message_menu(message(bob_page, "from alice"))
    expect(theirs.get_by_role("menuitem", name="Mark as Unread")).to_be_visible()
    expect(theirs.get_by_role("menuitem", name="Edit")).to_be_hidden()
    expect(theirs.get_by_role("menuitem", name="Delete")).to_be_hidden()
    message(bob_page, "from alice").get_by_label("Message options").click()
    message_menu(reply).get_by_role("menuitem", name="Edit").click()
    reply.get_by_role("textbox", name="Edit message").fill("Hello alice")
    reply.get_by_role("button", name="Save").click()

    edited = message(alice_page, "Hello alice")
    expect(edited).to_be_visible()
    expect(edited.locator(".edited")).to_have_text("(edited)")
    expect(message(alice_page, "Helo alice")).to_have_count(0)
    assert_not_reloaded(alice_page)
    assert_not_reloaded(bob_page)


def test_log_in_through_the_form_see_rooms_and_log_out(open_page, room, alice, bob):
    do_send_message(bob, room=room, body="Morning! Sketches are up.")
    page = open_page(None, "/")

    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="Design")).to_be_visible()
    entry = sidebar(page).get_by_role("link", name=re.compile("Design"))
    expect(entry).to_contain_text("Bob Jones: Morning! Sketches are up.")
    expect(message(page, "Sketches are up")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_role("heading", name="Log in to Parley")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_logging_out_signs_out_that_session_s_other_tabs_and_no_other(open_page, room, alice):
    page = open_page(alice, room.get_absolute_url())
    same_session = page.context.new_page()
    same_session.goto(room.get_absolute_url())
    expect(same_session.locator("body")).to_have_attribute("data-live", "connected")
    other_session = open_page(alice, room.get_absolute_url())

    page.get_by_role("button", name="Log out").click()

    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    # Its socket closed by the server, the other tab of that session reloads to the sign-in page.
    expect(same_session).to_have_url(re.compile(r"/accounts/login/\?next="))
    expect(other_session.locator("body")).to_have_attribute("data-live", "connected")
    send(other_session, "Still signed in here")
    expect(message(other_session, "Still signed in here")).to_have_count(1)


def test_wrong_password_is_refused_on_the_login_form(open_page, alice):
    page = open_page(None, "/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(re.compile("correct username and password"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_shift_enter_adds_a_line_and_enter_sends(open_page, room, alice):
    page = open_page(alice, room.get_absolute_url())
    box = page.get_by_role("textbox", name="Message")

    box.type("first line")
    box.press("Shift+Enter")
    box.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    expect(timeline(page)).to_have_count(0)

    box.press("Enter")
    expect(box).to_have_value("")
    sent = timeline(page)
    expect(sent).to_have_count(1)
    expect(sent.locator(".msg-body br")).to_have_count(1)
    expect(sent.locator(".msg-body")).to_have_text("first line\nsecond line")
    assert list(Message.objects.values_list("body", flat=True)) == ["first line\nsecond line"]


def test_deleted_message_shows_placeholder_to_the_other_person_live(open_page, room, alice, bob):
    alice_page = open_page(alice, room.get_absolute_url())
    bob_page = open_page(bob, room.get_absolute_url())
    remember_this_page(alice_page)
    send(bob_page, "Sent to the wrong room, sorry")
    expect(message(alice_page, "wrong room")).to_be_visible()

    bob_page.once("dialog", lambda dialog: dialog.accept())
    message_menu(message(bob_page, "wrong room")).get_by_role("menuitem", name="Delete").click()

    for page in (alice_page, bob_page):
        expect(timeline(page)).to_have_count(1)
        expect(timeline(page).locator(".msg-body")).to_have_text("This message was deleted")
    expect(alice_page.get_by_text("wrong room")).to_have_count(0)
    assert_not_reloaded(alice_page)


def test_a_new_name_shows_on_open_pages_at_once(open_page, room, alice, bob):
    do_send_message(alice, room=room, body="Written before the rename")
    bob_page = open_page(bob, room.get_absolute_url())
    alice_room = open_page(alice, room.get_absolute_url())
    remember_this_page(bob_page)
    author = message(bob_page, "before the rename").locator(".author")
    expect(author).to_have_text(alice.name)

    profile = open_page(alice, "/accounts/profile/")
    profile.get_by_label("Your name").fill("Alice Liddell")
    profile.get_by_role("button", name="Save").click()
    expect(profile.get_by_text("Profile saved.")).to_be_visible()

    expect(author).to_have_text("Alice Liddell")
    members = bob_page.locator(f'#members-panel li[data-user="{alice.pk}"] .member-name')
    expect(members).to_have_text("Alice Liddell")
    expect(alice_room.locator(".me")).to_have_text("Alice Liddell")
    assert_not_reloaded(bob_page)


def test_panels_open_beside_the_conversation_on_the_right(open_page, room, alice):
    page = open_page(alice, room.get_absolute_url())
    page.get_by_label("Members").click()
    page.get_by_label("Personal notepad").click()
    timeline, notepad, members = (
        page.locator(selector).bounding_box() for selector in ("#timeline", "#notepad", "#members")
    )
    assert timeline["x"] + timeline["width"] <= notepad["x"] < members["x"]
    assert members["x"] + members["width"] == page.viewport_size["width"]
    # Side by side, each as tall as the conversation.
    assert notepad["y"] == members["y"] == timeline["y"]


def test_on_a_phone_a_room_fills_the_screen_and_the_list_opens_over_it(open_page, room, alice, bob):
    budget = group_room(alice, bob, title="Budget")
    page = open_page(alice, room.get_absolute_url())
    page.set_viewport_size({"width": 390, "height": 760})
    expect(sidebar(page)).to_be_hidden()
    timeline = page.locator("#timeline").bounding_box()
    assert (timeline["x"], timeline["width"]) == (0, 390)

    page.get_by_label("Show conversations").click()
    expect(sidebar(page)).to_be_visible()
    sidebar_entry(page, budget).locator("a").click()
    expect(page).to_have_url(re.compile(rf"/rooms/{budget.pk}/$"))
    expect(sidebar(page)).to_be_hidden()
    # A room's panel opens over the conversation, the header (and its buttons) still showing.
    page.get_by_label("Members").click()
    expect(page.locator("#members")).to_be_visible()
    page.get_by_label("Members").click()
    expect(page.locator("#members")).to_be_hidden()


def test_oversized_and_blank_messages_are_refused_and_the_text_stays(open_page, room, alice):
    page = open_page(alice, room.get_absolute_url())
    box = page.get_by_role("textbox", name="Message")
    error = page.locator("#composer").get_by_role("alert")
    too_long = "x" * 10_001

    # maxlength stops typing at 10,000, but a paste from a script or an old browser does not.
    box.evaluate("(el, text) => { el.value = text; }", too_long)
    box.press("Enter")
    expect(error).to_have_text(re.compile("at most 10,000 characters"))
    expect(box).to_have_value(too_long)

    box.fill("    ")
    box.press("Enter")
    expect(error).to_have_text(re.compile("cannot be empty"))
    expect(box).to_have_value("    ")

    box.fill("short and fine")
    box.press("Enter")
    expect(message(page, "short and fine")).to_be_visible()
    expect(error).to_be_hidden()
    assert Message.objects.count() == 1


def test_scrolling_up_loads_older_messages(open_page, room, alice, bob):
    for n in range(1, 121):
        do_send_message(bob, room=room, body=f"message {n}")
    page = open_page(alice, room.get_absolute_url())
    messages = timeline(page)

    expect(messages).to_have_count(50)
    expect(messages.last).to_contain_text("message 120")
    expect(messages.first).to_contain_text("message 71")

    scroller = page.locator("#timeline")
    for shown in (100, 120):
        scroller.evaluate("el => { el.scrollTop = 0; }")
        expect(messages).to_have_count(shown)
    expect(messages.first).to_contain_text("message 1")
    expect(page.get_by_text("Loading older messages")).to_have_count(0)
    texts = messages.locator(".msg-body").all_inner_texts()
    assert texts == [f"message {n}" for n in range(1, 121)]


def test_messages_sent_while_reconnecting_arrive_once_in_order(open_page, room, alice, bob):
    alice_page = open_page(alice, room.get_absolute_url())
    bob_page = open_page(bob, room.get_absolute_url())

    remember_this_page(bob_page)
    bob_page.evaluate(
        """() => {
            window.__liveStates = [];
            new MutationObserver(() => window.__liveStates.push(document.body.dataset.live))
                .observe(document.body, { attributeFilter: ["data-live"] });
            window.parleyLive.drop();
        }"""
    )
    for n in (1, 2, 3):
        send(alice_page, f"while you were away {n}")

    expect(bob_page.locator("body")).to_have_attribute("data-live", "connected")
    for n in (1, 2, 3):
        expect(message(bob_page, f"while you were away {n}")).to_have_count(1)
    texts = timeline(bob_page).locator(".msg-body").all_inner_texts()
    assert texts == [f"while you were away {n}" for n in (1, 2, 3)]
    expect(bob_page.locator("#connection")).to_be_hidden()
    assert bob_page.evaluate("window.__liveStates") == ["disconnected", "connected"]
    assert_not_reloaded(bob_page)


def test_unread_badge_counts_moves_room_to_top_and_clears_on_open(open_page, alice, bob):
    other = group_room(alice, bob, title="Budget")
    current = group_room(alice, bob, title="Design")
    alice_page = open_page(alice, other.get_absolute_url())
    bob_page = open_page(bob, current.get_absolute_url())
    entries = sidebar(bob_page).locator(".room-item")
    expect(entries.first).to_have_id(f"room-item-{current.pk}")
    badge = sidebar_entry(bob_page, other).locator(".badge")
    expect(badge).to_be_hidden()
    remember_this_page(bob_page)

    send(alice_page, "Numbers for Q3 are in")

    expect(badge).to_have_text("1")
    expect(badge).to_be_visible()
    expect(entries.first).to_have_id(f"room-item-{other.pk}")
    expect(sidebar_entry(bob_page, other)).to_contain_text("Numbers for Q3")
    # The open room counts nothing: bob is looking at it.
    expect(sidebar_entry(bob_page, current).locator(".badge")).to_be_hidden()
    assert_not_reloaded(bob_page)

    sidebar_entry(bob_page, other).get_by_role("link").click()
    expect(bob_page.get_by_role("heading", name="Budget")).to_be_visible()
    expect(message(bob_page, "Numbers for Q3")).to_be_visible()
    expect(sidebar_entry(bob_page, other).locator(".badge")).to_be_hidden()


def test_html_in_a_message_is_shown_as_text_and_never_runs(open_page, room, alice, bob):
    hostile = ['<img src=x onerror="window.__xss=1">', "<script>window.__xss=1</script>"]
    alice_page = open_page(alice, room.get_absolute_url())
    bob_page = open_page(bob, room.get_absolute_url())

    for text in hostile:
        send(alice_page, text)

    bob_page_reloaded = open_page(bob, room.get_absolute_url())
    for page in (alice_page, bob_page, bob_page_reloaded):
        bodies = timeline(page).locator(".msg-body")
        expect(bodies).to_have_text(hostile)
        expect(bodies.locator("img, script")).to_have_count(0)
        assert page.evaluate("window.__xss") is None
