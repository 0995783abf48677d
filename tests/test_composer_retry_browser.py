"""How the composer sends: over its open socket, else by POST; a send whose answer was lost is
sent again with the same client token, and the message is stored once.

A request can reach the server and be stored while its answer never reaches the page (a server
process dying right after the commit, a dropped connection): the composer sends it again, by
POST, with the same token and gets the stored message back.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, Route, WebSocketRoute, expect

from rooms.models import Message
from tests.test_browser import message, send

pytestmark = pytest.mark.browser


def posted_forms(page: Page, room) -> list[dict]:
    """The forms the page POSTs to the room's messages endpoint, from now on."""
    posts: list[dict] = []

    def note(route: Route) -> None:
        posts.append(dict(pair.split("=", 1) for pair in route.request.post_data.split("&")))
        route.continue_()

    page.route(f"**/rooms/{room.pk}/messages/", note)
    return posts


def reconnect_through(page: Page, handler) -> None:
    """Route the page's next socket through `handler`, make it open that socket, and return once
    it has: until then the page's `data-live` still says "connected" of the socket dropped (its
    close event comes later), and a message sent then goes by POST."""
    routed = []

    def route(socket: WebSocketRoute) -> None:
        routed.append(socket)
        handler(socket)

    page.route_web_socket("**/ws/", route)
    page.evaluate("window.parleyLive.drop()")
    for _ in range(200):  # Playwright runs the route's handler while the page is waited on
        if routed:
            return
        page.wait_for_timeout(50)
    raise AssertionError("The page opened no new socket within 10 s of the drop.")


def test_a_message_goes_over_the_open_socket(open_page, room, alice):
    page = open_page(alice, room.get_absolute_url())
    posts = posted_forms(page, room)
    send(page, "Over the socket")
    expect(message(page, "Over the socket")).to_have_count(1)
    assert posts == []
    assert Message.objects.filter(room=room, body="Over the socket").count() == 1


def test_a_socket_send_left_unanswered_goes_by_post_with_its_token(open_page, room, alice):
    """The server stores the message, but its answer over the socket is lost: after waiting,
    the composer POSTs the message with the same token and gets the stored one back."""
    page = open_page(alice, room.get_absolute_url())
    frames_sent: list[dict] = []

    def lose_answers(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()

        def to_server(text) -> None:
            frames_sent.append(json.loads(text))
            server.send(text)

        def to_page(text) -> None:
            if json.loads(text).get("type") != "message.sent":
                socket.send(text)

        socket.on_message(to_server)
        server.on_message(to_page)

    reconnect_through(page, lose_answers)
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    posts = posted_forms(page, room)
    box = page.get_by_role("textbox", name="Message")
    box.fill("Said once")
    box.press("Enter")

    # The room's frame shows the message at once; the composer waits 5 s for its answer,
    # then POSTs, and clears the box once the server has answered that.
    expect(box).to_have_value("", timeout=15_000)
    expect(message(page, "Said once")).to_have_count(1)
    (sent,) = [f for f in frames_sent if f["type"] == "message.send"]
    assert [p["client_token"] for p in posts] == [sent["client_token"]]
    assert Message.objects.filter(room=room, body="Said once").count() == 1
    expect(page.locator(".composer-error")).to_be_hidden()


def test_a_send_whose_answer_was_lost_is_retried_and_stored_once(open_page, room, alice):
    page = open_page(alice, room.get_absolute_url())
    # No socket (a proxy that passes no websockets): the composer sends by POST at once.
    reconnect_through(page, lambda socket: socket.close())
    expect(page.locator("body")).to_have_attribute("data-live", "disconnected")
    posts: list[dict] = []

    def lose_the_first_answer(route: Route) -> None:
        posts.append(dict(pair.split("=", 1) for pair in route.request.post_data.split("&")))
        answer = route.fetch()  # the server gets the request and stores the message
        if len(posts) == 1:
            route.abort("connectionreset")  # ...but the page never hears back
        else:
            route.fulfill(response=answer)

    page.route(f"**/rooms/{room.pk}/messages/", lose_the_first_answer)
    send(page, "Ship it on Friday")

    expect(message(page, "Ship it on Friday")).to_have_count(1)
    assert len(posts) == 2
    assert posts[0]["client_token"] == posts[1]["client_token"] != ""
    assert Message.objects.filter(room=room, body="Ship it on Friday").count() == 1
    expect(page.locator(".composer-error")).to_be_hidden()
