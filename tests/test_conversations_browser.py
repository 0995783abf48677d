"""Conversation views, read state and the composer in a real browser (issue 3).

Every keyboard shortcut, the Recent and Categorized views, favorites, hide and archive, unread
counts across tabs and people, mentions, the emoji panel, /giphy with both GIF providers,
typing, presence and reactions. Helpers and the rules about what may be written from the test
process (nothing that must arrive live) come from test_browser.py.
"""

from __future__ import annotations

import re
import threading
from http.server import ThreadingHTTPServer

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from accounts.actions import do_set_preferences
from conftest import FAST_HASHERS, GENEROUS_RATE_LIMITS, befriend, make_person
from rooms import presence
from rooms.actions import (
    do_add_library_gif,
    do_create_room,
    do_invite_member,
    do_mark_read,
    do_open_direct,
    do_send_message,
    do_set_favorite,
)
from rooms.management.commands.seed_demo import animated_gif
from rooms.models import Membership, Message, RoomKind
from rooms.queries import LIST_PAGE
from rooms.tests.test_giphy import FakeGiphy
from tests.live import AppServer
from tests.test_browser import group_room, message, message_menu, send, sidebar, sidebar_entry

pytestmark = pytest.mark.browser

UNREAD = re.compile(r"\bunread\b")


def composer(page: Page):
    return page.get_by_role("textbox", name="Message")


def room_menu(page: Page):
    """Open the room's options menu and return it."""
    page.get_by_label("Room options").click()
    menu = page.locator("#room-menu").get_by_role("menu")
    expect(menu).to_be_visible()
    return menu


def wait_until_live(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-live", "connected")


def fetch(page: Page, method: str, path: str, form: dict[str, str]) -> tuple[int, str]:
    """A request from the page's own JavaScript, with its session and CSRF token."""
    return page.evaluate(
        """async ([method, path, form]) => {
            const headers = JSON.parse(document.body.getAttribute("hx-headers"));
            const reply = await fetch(path, {method, headers, body: new URLSearchParams(form)});
            return [reply.status, await reply.text()];
        }""",
        [method, path, form],
    )


def wait_for_image(page: Page, image) -> None:
    """Wait until the browser has loaded and decoded `image` (a broken image never is)."""
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )


@pytest.fixture
def open_tab():
    """`open_tab(page, path)`: another tab in the browser of `page`, same person, same cookies."""
    errors: list[str] = []

    def open_tab(page: Page, path: str) -> Page:
        tab = page.context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.goto(path)
        wait_until_live(tab)
        return tab

    yield open_tab
    assert not errors, f"JavaScript errors in a second tab: {errors}"


# The composer: Enter, the gear, Up-arrow, Esc, paste --------------------------------------


def test_enter_sends_the_message(open_page, room, alice):
    page = open_page(alice, room.get_absolute_url())
    box = composer(page)
    box.press_sequentially("Ship it")
    box.press("Enter")
    expect(message(page, "Ship it")).to_have_count(1)
    expect(box).to_have_value("")
    expect(box).to_be_focused()


@pytest.mark.parametrize("keys", ["Shift+Enter", "Alt+Enter", "Control+Enter"])
def test_shift_alt_or_ctrl_enter_adds_a_new_line(open_page, room, alice, keys):
    page = open_page(alice, room.get_absolute_url())
    box = composer(page)
    box.press_sequentially("first")
    box.press(keys)
    box.press_sequentially("second")
    expect(box).to_have_value("first\nsecond")

    box.press("Enter")
    # One message with both lines: the modified Enter sent nothing by itself.
    expect(message(page, "first")).to_have_count(1)
    expect(page.locator("#messages .msg")).to_have_count(1)
    assert list(Message.objects.values_list("body", flat=True)) == ["first\nsecond"]


def test_gear_swaps_enter_to_new_line_and_ctrl_enter_sends_and_it_is_remembered(
    open_page, room, alice
):
    page = open_page(alice, room.get_absolute_url())
    gear = page.get_by_role("button", name="Enter key behaviour")
    expect(gear).to_have_attribute("aria-pressed", "false")
    gear.click()
    expect(gear).to_have_attribute("aria-pressed", "true")  # set once the server saved it

    page.reload()
    wait_until_live(page)
    expect(gear).to_have_attribute("aria-pressed", "true")
    box = composer(page)
    box.press_sequentially("one")
    box.press("Enter")
    box.press_sequentially("two")
    expect(box).to_have_value("one\ntwo")
    expect(page.locator("#messages .msg")).to_have_count(0)

    box.press("Control+Enter")
    expect(message(page, "one")).to_have_count(1)
    expect(box).to_have_value("")
    box.press_sequentially("by the button")
    page.locator("#composer").get_by_role("button", name="Send").click()
    expect(message(page, "by the button")).to_have_count(1)
    alice.refresh_from_db()
    assert alice.enter_sends is False


def test_up_arrow_in_an_empty_composer_edits_your_last_message_and_esc_cancels(
    open_page, room, alice, bob
):
    do_send_message(alice, room=room, body="first draft")
    last = do_send_message(alice, room=room, body="second draft")
    do_send_message(bob, room=room, body="a reply from bob")
    page = open_page(alice, room.get_absolute_url())
    box = composer(page)
    edit_box = page.get_by_role("textbox", name="Edit message")

    box.press_sequentially("x")
    box.press("ArrowUp")  # not empty: the arrow only moves the cursor
    box.fill("")
    box.press("ArrowUp")
    expect(edit_box).to_have_count(1)
    expect(
        page.locator(f"#msg-{last.pk}").get_by_role("textbox", name="Edit message")
    ).to_be_focused()
    expect(edit_box).to_have_value("second draft")

    edit_box.press("Escape")
    expect(edit_box).to_have_count(0)
    expect(page.locator(f"#msg-{last.pk} .msg-body")).to_have_text("second draft")
    expect(box).to_be_focused()
    assert Message.objects.get(pk=last.pk).edited is None


def test_esc_closes_the_mention_box(open_page, room, alice, bob):
    page = open_page(alice, room.get_absolute_url())
    box = composer(page)
    mentions = page.get_by_role("listbox", name="Mention someone")
    box.press_sequentially("@b")
    expect(mentions).to_be_visible()

    box.press("Escape")
    expect(mentions).to_be_hidden()
    expect(box).to_have_value("@b")
    expect(page.locator("#messages .msg")).to_have_count(0)


def test_emoji_panel_search_inserts_the_emoji_at_the_cursor(open_page, room, alice):
    page = open_page(alice, room.get_absolute_url())
    box = composer(page)
    box.press_sequentially("Launched ")
    panel = page.locator("#emoji-panel")
    page.get_by_role("button", name="Emoji").click()
    search = panel.get_by_role("searchbox", name="Search emoji")
    expect(search).to_be_focused()

    search.press_sequentially("tada")
    panel.get_by_role("button", name="tada", exact=True).click()
    expect(panel).to_be_hidden()
    expect(box).to_have_value("Launched 🎉")
    expect(box).to_be_focused()


def test_esc_closes_the_emoji_panel(open_page, room, alice):
    page = open_page(alice, room.get_absolute_url())
    toggle = page.get_by_role("button", name="Emoji")
    panel = page.locator("#emoji-panel")
    toggle.click()
    expect(panel).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")

    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(composer(page)).to_be_focused()


@pytest.mark.parametrize("keys", ["Control+Shift+V", "Control+V"])
def test_pasting_formatted_text_inserts_plain_text(open_page, app_server, room, alice, keys):
    page = open_page(alice, room.get_absolute_url())
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_server.url)
    # What a copy from a word processor puts on the clipboard: HTML beside the plain text.
    page.evaluate(
        """() => navigator.clipboard.write([new ClipboardItem({
            "text/html": new Blob(
                ['<p><b>Bold</b> and <a href="https://x.test">a link</a></p>'],
                {type: "text/html"},
            ),
            "text/plain": new Blob(["Bold and a link"], {type: "text/plain"}),
        })])"""
    )
    box = composer(page)
    box.press_sequentially("From the doc: ")
    box.press(keys)
    expect(box).to_have_value("From the doc: Bold and a link")

    box.press("Enter")
    sent = message(page, "From the doc")
    expect(sent.locator(".msg-body")).to_have_text("From the doc: Bold and a link")
    expect(sent.locator(".msg-body b, .msg-body strong, .msg-body a")).to_have_count(0)


# Shortcuts outside the composer ------------------------------------------------------------


def test_alt_up_and_down_open_the_previous_and_next_room_in_the_list(open_page, alice, bob):
    oldest, middle, newest = (
        group_room(alice, bob, title=t) for t in ("Oldest", "Middle", "Newest")
    )
    page = open_page(alice, middle.get_absolute_url())
    entries = sidebar(page).locator(".room-item .room-title")
    expect(entries).to_have_text(["Newest", "Middle", "Oldest"])

    page.keyboard.press("Alt+ArrowDown")
    expect(page).to_have_url(re.compile(rf"/rooms/{oldest.pk}/$"))
    expect(page.get_by_role("heading", name="Oldest")).to_be_visible()
    wait_until_live(page)
    page.keyboard.press("Alt+ArrowUp")
    expect(page).to_have_url(re.compile(rf"/rooms/{middle.pk}/$"))
    wait_until_live(page)
    page.keyboard.press("Alt+ArrowUp")
    expect(page).to_have_url(re.compile(rf"/rooms/{newest.pk}/$"))


def test_alt_shift_up_and_down_open_the_previous_and_next_room_with_unread(open_page, alice, bob):
    titles = ["One", "Two", "Three", "Four", "Five"]
    rooms = {title: group_room(alice, bob, title=title) for title in titles}
    for title in reversed(titles):  # the last message sent puts "One" on top
        sent = do_send_message(bob, room=rooms[title], body=f"news in {title}")
        if title not in ("One", "Five"):
            do_mark_read(alice, room=rooms[title], up_to=sent.pk)
    page = open_page(alice, rooms["Three"].get_absolute_url())
    expect(sidebar(page).locator(".room-item .room-title")).to_have_text(titles)
    expect(sidebar(page).locator(".room-item.unread .room-title")).to_have_text(["One", "Five"])

    page.keyboard.press("Alt+Shift+ArrowDown")
    expect(page).to_have_url(re.compile(rf"/rooms/{rooms['Five'].pk}/$"))
    wait_until_live(page)
    page.keyboard.press("Alt+Shift+ArrowUp")  # Four, Three and Two are read
    expect(page).to_have_url(re.compile(rf"/rooms/{rooms['One'].pk}/$"))


def test_ctrl_shift_f_focuses_search_from_the_composer(open_page, room, alice):
    page = open_page(alice, room.get_absolute_url())
    box = composer(page)
    box.press_sequentially("half a thought")
    expect(box).to_be_focused()

    page.keyboard.press("Control+Shift+F")
    expect(page.locator("#search-input")).to_be_focused()
    expect(box).to_have_value("half a thought")


def test_keyboard_shortcuts_help_opens_from_the_room_menu(open_page, room, alice):
    page = open_page(alice, room.get_absolute_url())
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_dialog).to_be_hidden()

    room_menu(page).get_by_role("menuitem", name="Keyboard shortcuts").click()
    expect(help_dialog).to_be_visible()
    for keys in ("Enter", "Esc", "Alt + ↑ / ↓", "Ctrl + Shift + F", "Ctrl + Shift + V"):
        expect(help_dialog.get_by_role("rowheader", name=keys, exact=True)).to_be_visible()
    help_dialog.get_by_role("button", name="Close").click()
    expect(help_dialog).to_be_hidden()


# Views of your conversations --------------------------------------------------------------


def test_recent_view_orders_by_activity_with_unread_bold_and_a_separate_mention_count(
    open_page, alice, bob
):
    quiet = group_room(alice, bob, title="Quiet")
    pinged = group_room(alice, bob, title="Pinged")
    busy = group_room(alice, bob, title="Busy")
    current = group_room(alice, bob, title="Current")
    do_send_message(bob, room=pinged, body="@alice can you look?")
    do_send_message(bob, room=pinged, body="the draft is ready")
    for n in range(3):
        do_send_message(bob, room=busy, body=f"update {n}")
    do_send_message(bob, room=pinged, body="still there?")

    page = open_page(alice, current.get_absolute_url())
    expect(page.get_by_role("button", name="Recent")).to_have_attribute("aria-pressed", "true")
    titles = sidebar(page).locator(".room-item .room-title")
    expect(titles).to_have_text(["Pinged", "Busy", "Current", "Quiet"])

    ping = sidebar_entry(page, pinged)
    expect(ping).to_have_class(UNREAD)
    expect(ping.locator(".room-title")).to_have_css("font-weight", "700")
    expect(ping.locator(".badge")).to_have_text("3")
    expect(ping.locator(".mention-badge")).to_have_text("@1")
    expect(sidebar_entry(page, busy).locator(".badge")).to_have_text("3")
    expect(sidebar_entry(page, busy).locator(".mention-badge")).to_be_hidden()
    for read in (quiet, current):
        expect(sidebar_entry(page, read)).not_to_have_class(UNREAD)
        expect(sidebar_entry(page, read).locator(".room-title")).to_have_css("font-weight", "400")
        expect(sidebar_entry(page, read).locator(".badge")).to_be_hidden()


def test_a_long_list_loads_more_rooms_as_it_is_scrolled(open_page, alice, bob):
    rooms = [group_room(alice, bob, title=f"Room {n:03}") for n in range(LIST_PAGE + 5)]
    page = open_page(alice, rooms[-1].get_absolute_url())
    items = sidebar(page).locator(".room-item")
    expect(items).to_have_count(LIST_PAGE)
    # A message moves the oldest room to the top before the page that lists it loads.
    send(open_page(bob, rooms[0].get_absolute_url()), "back to the start")
    expect(items.first).to_have_id(f"room-item-{rooms[0].pk}")
    expect(items).to_have_count(LIST_PAGE)

    sidebar(page).locator("li.more").scroll_into_view_if_needed()
    expect(items).to_have_count(LIST_PAGE + 5)  # every room once, none twice
    expect(sidebar_entry(page, rooms[1])).to_be_visible()


def test_categorized_view_groups_rooms_and_the_choice_is_remembered(open_page, alice, bob, carol):
    befriend(alice, bob, carol)
    design = do_create_room(alice, kind=RoomKind.GROUP, title="Design", members=[bob])
    do_create_room(alice, kind=RoomKind.CONTRACT, title="Contract A", members=[carol])
    do_create_room(alice, kind=RoomKind.INTERVIEW, title="Interview: Bob", members=[bob])
    do_open_direct(alice, other=bob)
    launch = do_create_room(alice, kind=RoomKind.GROUP, title="Launch", members=[carol])
    do_set_favorite(alice, room=launch, favorite=True)

    page = open_page(alice, design.get_absolute_url())
    categorized = page.get_by_role("button", name="Categorized")
    expect(categorized).to_have_attribute("aria-pressed", "false")
    categorized.click()
    expect(categorized).to_have_attribute("aria-pressed", "true")  # the page reloaded

    def category(label: str):
        return sidebar(page).get_by_role("list", name=label).locator(".room-title")

    def check_categories() -> None:
        expect(category("Favorites")).to_have_text(["Launch"])
        expect(category("Interviews")).to_have_text(["Interview: Bob"])
        expect(category("Rooms")).to_have_text(["Contract A", "Design"])
        expect(category("People")).to_have_text(["Bob Jones"], use_inner_text=True)

    check_categories()
    page.reload()
    wait_until_live(page)
    check_categories()
    alice.refresh_from_db()
    assert alice.conversation_view == "categorized"

    page.get_by_role("button", name="Recent").click()
    expect(page.get_by_role("button", name="Recent")).to_have_attribute("aria-pressed", "true")
    expect(sidebar(page).get_by_role("heading", name="Favorites")).to_have_count(0)
    expect(sidebar(page).locator("#room-list .room-item")).to_have_count(5)


def test_favorite_from_the_room_menu_moves_the_room_into_favorites(open_page, alice, bob):
    do_set_preferences(alice, conversation_view="categorized")
    budget = group_room(alice, bob, title="Budget")
    design = group_room(alice, bob, title="Design")
    page = open_page(alice, design.get_absolute_url())
    favorites = sidebar(page).get_by_role("list", name="Favorites")
    rooms = sidebar(page).get_by_role("list", name="Rooms")
    expect(rooms.locator(".room-title")).to_have_text(["Design", "Budget"])
    expect(favorites.locator(".room-item")).to_have_count(0)

    room_menu(page).get_by_role("menuitem", name="Favorite", exact=True).click()
    expect(favorites.locator(".room-title")).to_have_text(["Design"])
    expect(rooms.locator(".room-title")).to_have_text(["Budget"])
    assert Membership.objects.get(room=design, user=alice).favorite

    # The menu was redrawn by the server: its items still work, and it now offers the way back.
    menu = room_menu(page)
    expect(menu.get_by_role("menuitem", name="Remove from Favorites")).to_be_visible()
    menu.get_by_role("menuitem", name="Keyboard shortcuts").click()
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    # The redrawn list still knows which room is open: Alt+Down goes to the next one.
    expect(sidebar_entry(page, design)).to_have_class(re.compile(r"\bactive\b"))
    page.keyboard.press("Alt+ArrowDown")
    expect(page).to_have_url(re.compile(rf"/rooms/{budget.pk}/$"))


def test_hide_takes_the_room_off_the_list_and_hidden_rooms_unhides_it(open_page, alice, bob):
    budget = group_room(alice, bob, title="Budget")
    design = group_room(alice, bob, title="Design")
    page = open_page(alice, design.get_absolute_url())

    room_menu(page).get_by_role("menuitem", name="Hide").click()
    expect(page.get_by_role("heading", name="Budget")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/rooms/{budget.pk}/$"))
    expect(sidebar_entry(page, design)).to_have_count(0)

    sidebar(page).get_by_role("link", name="Hidden rooms").click()
    main = page.get_by_role("main")
    expect(main.get_by_role("heading", name="Hidden rooms")).to_be_visible()
    hidden = main.get_by_role("listitem").filter(has=page.get_by_role("link", name="Design"))
    expect(hidden).to_have_count(1)
    wait_until_live(page)
    hidden.get_by_role("button", name="Unhide").click()
    expect(hidden).to_have_count(0)
    expect(sidebar_entry(page, design)).to_be_visible()
    assert not Membership.objects.get(room=design, user=alice).hidden


def test_hidden_room_stays_off_the_list_when_a_message_arrives(open_page, alice, bob):
    design = group_room(alice, bob, title="Design")
    lobby = group_room(alice, bob, title="Lobby")
    alice_page = open_page(alice, design.get_absolute_url())
    room_menu(alice_page).get_by_role("menuitem", name="Hide").click()
    expect(alice_page).to_have_url(re.compile(rf"/rooms/{lobby.pk}/$"))
    wait_until_live(alice_page)

    bob_page = open_page(bob, design.get_absolute_url())
    send(bob_page, "anyone here?")
    bob_page.goto(lobby.get_absolute_url())
    send(bob_page, "lobby news")
    # Live events reach a tab in order: once the second message is shown, the first was handled.
    expect(message(alice_page, "lobby news")).to_be_visible()
    expect(sidebar_entry(alice_page, design)).to_have_count(0)
    expect(sidebar(alice_page).locator(".room-item")).to_have_count(1)


# Read state across tabs and people --------------------------------------------------------


def test_reading_a_room_in_one_tab_clears_its_count_in_the_other(open_page, open_tab, alice, bob):
    news = group_room(alice, bob, title="News")
    desk = group_room(alice, bob, title="Desk")
    do_send_message(bob, room=news, body="first headline")
    do_send_message(bob, room=news, body="second headline")
    first_tab = open_page(alice, desk.get_absolute_url())
    second_tab = open_tab(first_tab, desk.get_absolute_url())
    for tab in (first_tab, second_tab):
        expect(sidebar_entry(tab, news).locator(".badge")).to_have_text("2")

    sidebar_entry(first_tab, news).get_by_role("link").click()
    expect(message(first_tab, "second headline")).to_be_visible()
    expect(sidebar_entry(second_tab, news).locator(".badge")).to_be_hidden()
    expect(sidebar_entry(second_tab, news)).not_to_have_class(UNREAD)
    expect(second_tab.get_by_role("heading", name="Desk")).to_be_visible()


def test_messages_from_another_person_count_live_in_every_tab_until_read(
    open_page, open_tab, alice, bob
):
    news = group_room(alice, bob, title="News")
    desk = group_room(alice, bob, title="Desk")
    first_tab = open_page(alice, desk.get_absolute_url())
    second_tab = open_tab(first_tab, desk.get_absolute_url())
    bob_page = open_page(bob, news.get_absolute_url())

    send(bob_page, "Numbers for Q3 are in")
    send(bob_page, "and Q4 forecasts")
    for tab in (first_tab, second_tab):
        entry = sidebar_entry(tab, news)
        expect(entry.locator(".badge")).to_have_text("2")
        expect(entry).to_have_class(UNREAD)
        expect(entry).to_contain_text("and Q4 forecasts")
        expect(sidebar(tab).locator(".room-item").first).to_have_id(f"room-item-{news.pk}")

    second_tab.goto(news.get_absolute_url())
    expect(message(second_tab, "Q4 forecasts")).to_be_visible()
    expect(sidebar_entry(first_tab, news).locator(".badge")).to_be_hidden()
    # Bob's own list never counted his messages.
    expect(sidebar_entry(bob_page, news).locator(".badge")).to_be_hidden()


def test_mark_as_unread_makes_the_room_unread_in_every_tab(open_page, open_tab, room, alice, bob):
    do_send_message(bob, room=room, body="first point")
    second = do_send_message(bob, room=room, body="second point")
    do_send_message(bob, room=room, body="third point")
    lobby = group_room(alice, bob, title="Lobby")
    reading = open_page(alice, room.get_absolute_url())
    elsewhere = open_tab(reading, lobby.get_absolute_url())
    for tab in (reading, elsewhere):
        expect(sidebar_entry(tab, room).locator(".badge")).to_be_hidden()

    menu = message_menu(message(reading, "second point"))
    menu.get_by_role("menuitem", name="Mark as Unread").click()
    for tab in (reading, elsewhere):
        entry = sidebar_entry(tab, room)
        expect(entry.locator(".badge")).to_have_text("2")
        expect(entry).to_have_class(UNREAD)
    assert Membership.objects.get(room=room, user=alice).last_read_id == second.pk - 1


# Archive ----------------------------------------------------------------------------------


def test_owner_archives_a_group_room_and_it_becomes_read_only(open_page, room, alice, bob):
    do_send_message(bob, room=room, body="wrapping up")
    lobby = group_room(alice, bob, title="Lobby")
    bob_page = open_page(bob, lobby.get_absolute_url())
    expect(sidebar_entry(bob_page, room)).to_be_visible()
    page = open_page(alice, room.get_absolute_url())
    page.once("dialog", lambda dialog: dialog.accept())

    room_menu(page).get_by_role("menuitem", name="Archive this room").click()
    expect(page.locator(".archived-note")).to_have_text("This room is archived and read-only.")
    expect(composer(page)).to_have_count(0)
    expect(page.locator(".room-head .kind")).to_contain_text("archived")
    expect(message(page, "wrapping up")).to_be_visible()
    expect(sidebar_entry(page, room)).to_have_count(0)
    expect(room_menu(page).get_by_role("menuitem", name="Unarchive this room")).to_be_visible()
    expect(sidebar_entry(bob_page, room)).to_have_count(0)  # live, for the other members too
    room.refresh_from_db()
    assert room.is_archived


def test_direct_room_cannot_be_archived_the_menu_offers_hide_and_the_server_refuses(
    open_page, alice, bob
):
    befriend(alice, bob)
    direct = do_open_direct(alice, other=bob)
    page = open_page(alice, direct.get_absolute_url())

    menu = room_menu(page)
    expect(menu).to_contain_text("Direct rooms cannot be archived")
    expect(menu.get_by_role("menuitem", name="Hide")).to_be_visible()
    expect(menu.get_by_role("menuitem", name="Archive this room")).to_have_count(0)

    status, reason = fetch(page, "POST", reverse("room_archive", args=[direct.pk]), {"on": "1"})
    assert status == 400
    assert "cannot be archived" in reason
    direct.refresh_from_db()
    assert not direct.is_archived


# Mentions, typing, presence, reactions ----------------------------------------------------


def test_mention_chosen_with_arrows_and_enter_is_highlighted_and_counted_for_them(
    open_page, room, alice, bob
):
    bea = make_person("bea", "Bea Brown")
    befriend(alice, bea)
    do_invite_member(alice, room=room, user=bea)
    lobby = group_room(alice, bob, title="Lobby")
    bob_page = open_page(bob, lobby.get_absolute_url())
    page = open_page(alice, room.get_absolute_url())
    box = composer(page)

    box.press_sequentially("@b")
    options = page.get_by_role("listbox", name="Mention someone").get_by_role("option")
    expect(options).to_have_text(["Bob Jones (@bob)", "Bea Brown (@bea)"])
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    box.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    box.press("ArrowDown")
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    box.press("Enter")
    expect(box).to_have_value("@bob ")
    expect(options).to_have_count(0)

    box.press_sequentially("please review")
    box.press("Enter")
    mention = message(page, "please review").locator(".mention")
    expect(mention).to_have_text("@bob")
    expect(mention).to_have_css("background-color", "rgb(255, 243, 196)")
    entry = sidebar_entry(bob_page, room)
    expect(entry.locator(".mention-badge")).to_have_text("@1")
    expect(entry.locator(".badge")).to_have_text("1")


# What the browser does when its tab goes to the background (headless pages are always visible).
HIDE_PAGE = """() => {
  Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_typing_shows_for_the_other_person_and_clears_when_the_message_arrives(
    open_page, room, alice, bob
):
    alice_page = open_page(alice, room.get_absolute_url())
    bob_page = open_page(bob, room.get_absolute_url())
    typing = alice_page.locator("#typing")
    expect(typing).to_have_text("")

    composer(bob_page).press_sequentially("on it")
    expect(typing).to_have_text("Bob Jones is typing…")
    expect(bob_page.locator("#typing")).to_have_text("")  # nobody sees their own
    composer(bob_page).press("Enter")
    expect(message(alice_page, "on it")).to_be_visible()
    expect(typing).to_have_text("")


def test_presence_dot_turns_online_when_the_other_person_opens_parley(open_page, alice, bob):
    befriend(alice, bob)
    direct = do_open_direct(alice, other=bob)
    alice_page = open_page(alice, direct.get_absolute_url())
    in_header = alice_page.locator(f'.room-head [data-presence-user="{bob.pk}"]')
    in_members = alice_page.locator(f'#members [data-presence-user="{bob.pk}"]')
    for dot in (in_header, in_members):
        expect(dot).to_have_attribute("data-state", "offline")

    bob_page = open_page(bob, "/accounts/contacts/")
    for dot in (in_header, in_members):
        expect(dot).to_have_attribute("data-state", "online")
    expect(in_header).to_have_css("background-color", "rgb(46, 160, 67)")

    # bob switches to another browser tab: his page is hidden, so he is away.
    bob_page.evaluate(HIDE_PAGE)
    expect(in_header).to_have_attribute("data-state", "away")
    bob_page.close()
    expect(in_header).to_have_attribute("data-state", "offline")


def test_a_page_that_reconnects_while_hidden_reports_away(open_page, alice, bob):
    befriend(alice, bob)
    direct = do_open_direct(alice, other=bob)
    alice_page = open_page(alice, direct.get_absolute_url())
    in_header = alice_page.locator(f'.room-head [data-presence-user="{bob.pk}"]')
    bob_page = open_page(bob, direct.get_absolute_url())
    expect(in_header).to_have_attribute("data-state", "online")
    bob_page.evaluate(HIDE_PAGE)
    expect(in_header).to_have_attribute("data-state", "away")
    bob_page.evaluate("window.parleyLive.drop()")
    expect(bob_page.locator("body")).to_have_attribute("data-live", "connected")
    # A new socket starts out online; the page says it is away. Presence news is batched by
    # the second: after two batches, alice's page has had whatever the server concluded.
    alice_page.wait_for_timeout(2000 * presence.BATCH_SECONDS)
    expect(in_header).to_have_attribute("data-state", "away")


def test_reaction_from_the_options_menu_shows_live_with_who_reacted(open_page, room, alice, bob):
    do_send_message(bob, room=room, body="Shipped the release")
    bob_page = open_page(bob, room.get_absolute_url())
    alice_page = open_page(alice, room.get_absolute_url())

    menu = message_menu(message(alice_page, "Shipped the release"))
    menu.get_by_role("menuitem", name="React 👍").click()
    reaction = message(bob_page, "Shipped the release").locator(".reaction")
    expect(reaction).to_have_text("👍 1")
    expect(reaction).to_have_attribute("title", "Alice Adams")

    reaction.click()  # Bob adds his own
    theirs = message(alice_page, "Shipped the release").locator(".reaction")
    expect(theirs).to_have_text("👍 2")
    expect(theirs).to_have_attribute("title", "Alice Adams, Bob Jones")


# /giphy -----------------------------------------------------------------------------------


@pytest.fixture
def gif_library(server_media_root, transactional_db):
    """Two GIFs in the built-in library, stored where the server process serves them from."""
    gifs = [
        do_add_library_gif(
            title="Party", keywords="party tada", data=animated_gif(["#f00", "#0f0"])
        ),
        do_add_library_gif(title="Party cat", keywords="party cat", data=animated_gif(["#00f"])),
    ]
    yield gifs
    for gif in gifs:
        gif.image.delete(save=False)


def test_giphy_choose_shuffle_and_send_with_the_built_in_library(
    open_page, room, alice, bob, gif_library
):
    bob_page = open_page(bob, room.get_absolute_url())
    page = open_page(alice, room.get_absolute_url())
    box = composer(page)
    box.fill("/giphy party")
    box.press("Enter")

    chooser = page.get_by_role("dialog", name="GIF for party")
    shown = chooser.get_by_role("img")
    expect(shown).to_have_attribute("alt", "Party")
    wait_for_image(page, shown)
    chooser.get_by_role("button", name="Shuffle").click()
    expect(shown).to_have_attribute("alt", "Party cat")
    wait_for_image(page, shown)
    chooser.get_by_role("button", name="Send").click()

    expect(chooser).to_have_count(0)
    expect(box).to_have_value("")
    for person_page in (page, bob_page):
        gif = person_page.locator("#messages .msg img.gif")
        expect(gif).to_have_attribute("alt", "Party cat")
        wait_for_image(person_page, gif)
    sent = Message.objects.get()
    assert sent.body == "/giphy party"
    assert sent.gif_url == reverse("gif_file", args=[gif_library[1].pk])


def test_giphy_cancel_closes_the_chooser_and_sends_nothing(open_page, room, alice, gif_library):
    page = open_page(alice, room.get_absolute_url())
    box = composer(page)
    box.fill("/giphy party")
    box.press("Enter")
    chooser = page.get_by_role("dialog", name="GIF for party")
    expect(chooser).to_be_visible()

    chooser.get_by_role("button", name="Cancel").click()
    expect(chooser).to_have_count(0)
    expect(box).to_be_focused()
    expect(page.locator("#messages .msg")).to_have_count(0)
    assert not Message.objects.exists()


def test_giphy_with_no_match_says_so(open_page, room, alice, gif_library):
    page = open_page(alice, room.get_absolute_url())
    box = composer(page)
    box.fill("/giphy walrus")
    box.press("Enter")
    chooser = page.get_by_role("dialog", name="GIF for walrus")
    expect(chooser).to_contain_text("No GIFs for “walrus”.")
    box.press("Escape")
    expect(chooser).to_have_count(0)


@pytest.fixture
def giphy_server(test_database_url, app_server):
    """A server process of its own whose /giphy asks a local server that speaks GIPHY's API."""
    fake = ThreadingHTTPServer(("127.0.0.1", 0), FakeGiphy)
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    env = {
        "DATABASE_URL": test_database_url,
        "PASSWORD_HASHERS": ",".join(FAST_HASHERS),
        **GENEROUS_RATE_LIMITS,
        "GIPHY_API_KEY": "test-key",
        "GIPHY_API_URL": f"http://127.0.0.1:{fake.server_address[1]}",
        # The browser fixture lifts Django's async-safety check in this process only.
        "DJANGO_ALLOW_ASYNC_UNSAFE": "",
    }
    try:
        with AppServer(env=env) as server:
            yield server
    finally:
        fake.shutdown()
        fake.server_close()


def test_giphy_choose_shuffle_and_send_with_the_giphy_provider(
    open_page, room, alice, giphy_server
):
    page = open_page(alice, room.get_absolute_url())
    # GIPHY's media host is not reachable from here: the browser gets a small GIF instead.
    page.context.route(
        "https://media.giphy.example/**",
        lambda route: route.fulfill(content_type="image/gif", body=animated_gif(["#0a0"])),
    )
    # Cookies ignore the port: the same session works on the second server.
    page.goto(f"{giphy_server.url}{room.get_absolute_url()}")
    wait_until_live(page)
    box = composer(page)
    box.fill("/giphy cat")
    box.press("Enter")

    chooser = page.get_by_role("dialog", name="GIF for cat")
    shown = chooser.get_by_role("img")
    expect(shown).to_have_attribute("alt", "Dancing cat")
    chooser.get_by_role("button", name="Shuffle").click()
    expect(shown).to_have_attribute("alt", "Cat nap")
    wait_for_image(page, shown)
    chooser.get_by_role("button", name="Send").click()

    expect(chooser).to_have_count(0)
    gif = page.locator("#messages .msg img.gif")
    expect(gif).to_have_attribute("src", "https://media.giphy.example/n.gif")
    expect(gif).to_have_attribute("alt", "Cat nap")
    sent = Message.objects.get()
    assert (sent.body, sent.gif_url) == ("/giphy cat", "https://media.giphy.example/n.gif")
