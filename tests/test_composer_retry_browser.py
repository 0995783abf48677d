"""The composer retries a send whose answer was lost, and the message is stored once.

The first request reaches the server and is stored, but its answer never reaches the page (as
when a server process dies right after the commit, or the connection drops): the composer
sends it again with the same client token and gets the stored message back.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Route, expect

from rooms.models import Message
from tests.test_browser import message, send

pytestmark = pytest.mark.browser


def test_a_send_whose_answer_was_lost_is_retried_and_stored_once(open_page, room, alice):
    page = open_page(alice, room.get_absolute_url())
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
