"""Each new message's live event names the room's message before it, so a tab can tell that a
frame was lost on the way (a server process killed between commit and publish, a Redis
restart) and ask for a replay. tests/test_faults.py checks the whole loop with real processes.
"""

from __future__ import annotations

from rooms.actions import do_create_room, do_send_message
from rooms.models import RoomKind


def new_message_events(inbox) -> list[dict]:
    return [f for f in inbox.frames() if f["type"] == "message.new"]


def test_each_new_message_names_the_one_before_it_in_its_room(
    room, alice, bob, inbox, django_capture_on_commit_callbacks
):
    other = do_create_room(alice, kind=RoomKind.GROUP, title="Elsewhere", members=[bob])
    bobs = inbox(bob)
    with django_capture_on_commit_callbacks(execute=True):
        first = do_send_message(alice, room=room, body="one")
    with django_capture_on_commit_callbacks(execute=True):
        do_send_message(alice, room=other, body="in another room")
    with django_capture_on_commit_callbacks(execute=True):
        second = do_send_message(bob, room=room, body="two")

    events = [e for e in new_message_events(bobs) if e["room"] == room.pk]
    assert [(e["id"], e["prev"]) for e in events] == [(first.pk, 0), (second.pk, first.pk)]
