"""live.js notices a live frame lost on the way and replays it, without a reload.

Each new message's frame names the room's message before it (`prev`). Here the lost frame is
real: a message written by the test process publishes nothing to the server process's sockets,
exactly as when Redis restarts or a server process dies between the commit and the publish.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rooms.actions import do_send_message
from tests.test_browser import assert_not_reloaded, message, remember_this_page, send, timeline

pytestmark = pytest.mark.browser


def test_a_message_whose_live_frame_was_lost_appears_once_the_next_one_arrives(
    open_page, room, alice, bob, carol
):
    alice_page = open_page(alice, room.get_absolute_url())
    bob_page = open_page(bob, room.get_absolute_url())
    remember_this_page(bob_page)
    bob_page.evaluate(
        """() => {
            window.__liveStates = [];
            new MutationObserver(() => window.__liveStates.push(document.body.dataset.live))
                .observe(document.body, { attributeFilter: ["data-live"] });
        }"""
    )

    do_send_message(carol, room=room, body="Its frame never came")
    send(alice_page, "This one came live")

    expect(message(bob_page, "Its frame never came")).to_have_count(1)
    expect(message(bob_page, "This one came live")).to_have_count(1)
    texts = timeline(bob_page).locator(".msg-body").all_inner_texts()
    assert texts == ["Its frame never came", "This one came live"]
    # Replayed over the same socket: no reconnect, no reload.
    assert bob_page.evaluate("window.__liveStates") == []
    assert_not_reloaded(bob_page)
