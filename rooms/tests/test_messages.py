from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from rooms.actions import (
    SignedOut,
    do_delete_message,
    do_edit_message,
    do_mark_read,
    do_remove_member,
    do_send_message,
)
from rooms.events import MessageEvent
from rooms.models import Membership, Message


def test_send_stores_body_and_rendered_html(room, bob):
    message = do_send_message(bob, room=room, body="  **hi** @alice  ")
    message.refresh_from_db()
    assert message.body == "**hi** @alice"
    assert "<strong>hi</strong>" in message.body_html
    assert 'class="mention"' in message.body_html
    room.refresh_from_db()
    assert room.last_message_id == message.pk
    assert room.last_activity == message.created


def test_own_message_counts_as_read(room, bob):
    message = do_send_message(bob, room=room, body="hello")
    assert Membership.objects.get(room=room, user=bob).last_read_id == message.pk


@pytest.mark.parametrize("body", ["", "   ", "\n\n"])
def test_empty_message_is_refused(room, bob, body):
    with pytest.raises(ValidationError, match="cannot be empty"):
        do_send_message(bob, room=room, body=body)
    assert not Message.objects.exists()


def test_message_over_ten_thousand_characters_is_refused(room, bob):
    do_send_message(bob, room=room, body="x" * 10_000)
    with pytest.raises(ValidationError, match="at most 10,000"):
        do_send_message(bob, room=room, body="x" * 10_001)
    assert Message.objects.count() == 1


def test_outsider_cannot_post_and_room_stays_hidden(room, mallory):
    with pytest.raises(Http404):
        do_send_message(mallory, room=room, body="hi")
    assert not Message.objects.exists()


def test_sender_edits_message(room, bob):
    message = do_send_message(bob, room=room, body="helo")
    do_edit_message(bob, message=message, body="hello _world_")
    message.refresh_from_db()
    assert message.body == "hello _world_"
    assert "<em>world</em>" in message.body_html
    assert message.edited is not None


def test_editing_someone_elses_message_is_refused(room, alice, bob):
    message = do_send_message(bob, room=room, body="mine")
    with pytest.raises(PermissionDenied):
        do_edit_message(alice, message=message, body="yours now")
    message.refresh_from_db()
    assert message.body == "mine"
    assert message.edited is None


def test_edit_to_empty_is_refused_and_keeps_text(room, bob):
    message = do_send_message(bob, room=room, body="keep me")
    with pytest.raises(ValidationError):
        do_edit_message(bob, message=message, body=" ")
    message.refresh_from_db()
    assert message.body == "keep me"


def test_delete_leaves_a_placeholder(room, bob):
    message = do_send_message(bob, room=room, body="oops")
    do_delete_message(bob, message=message)
    message.refresh_from_db()
    assert message.is_deleted
    assert message.body == ""
    assert message.body_html == ""


def test_deleting_someone_elses_message_is_refused(room, alice, bob):
    message = do_send_message(bob, room=room, body="mine")
    with pytest.raises(PermissionDenied):
        do_delete_message(alice, message=message)
    message.refresh_from_db()
    assert not message.is_deleted


def test_deleted_message_cannot_be_edited(room, bob):
    message = do_send_message(bob, room=room, body="gone")
    do_delete_message(bob, message=message)
    with pytest.raises(ValidationError, match="deleted"):
        do_edit_message(bob, message=message, body="back")


def test_removed_member_can_no_longer_post(room, alice, bob):
    do_remove_member(alice, room=room, user=bob)
    with pytest.raises(Http404):
        do_send_message(bob, room=room, body="still here?")


def test_new_message_event_reaches_every_member_after_commit(
    room, alice, bob, carol, mallory, inbox, django_capture_on_commit_callbacks
):
    inboxes = {person.username: inbox(person) for person in (alice, bob, carol, mallory)}
    with django_capture_on_commit_callbacks(execute=True):
        message = do_send_message(bob, room=room, body="**hi**")
    for name in ("alice", "bob", "carol"):
        (event,) = [f for f in inboxes[name].frames() if f["type"] == "message.new"]
        assert set(event) == set(MessageEvent.__annotations__)
        assert event["id"] == message.pk
        assert event["room"] == room.pk
        assert event["sender"] == bob.pk
        assert "<strong>hi</strong>" in event["html"]
        assert f'id="room-item-{room.pk}"' in event["room_html"]
    assert inboxes["mallory"].frames() == []


def test_event_is_not_published_when_the_write_rolls_back(room, bob, inbox):
    listener = inbox(bob)
    with pytest.raises(ValidationError):
        do_send_message(bob, room=room, body="")
    assert listener.frames() == []


def test_edit_and_delete_publish_changed_events(
    room, bob, carol, inbox, django_capture_on_commit_callbacks
):
    message = do_send_message(bob, room=room, body="first")
    listener = inbox(carol)
    with django_capture_on_commit_callbacks(execute=True):
        do_edit_message(bob, message=message, body="second")
        do_delete_message(bob, message=message)
    edited, deleted = listener.frames()
    assert edited["type"] == deleted["type"] == "message.changed"
    assert "second" in edited["html"] and "(edited)" in edited["html"]
    assert "This message was deleted" in deleted["html"]


def test_mark_read_moves_forward_only_and_tells_own_tabs(
    room, alice, bob, inbox, django_capture_on_commit_callbacks
):
    first = do_send_message(bob, room=room, body="one")
    second = do_send_message(bob, room=room, body="two")
    tabs = inbox(alice)
    with django_capture_on_commit_callbacks(execute=True):
        do_mark_read(alice, room=room, up_to=second.pk)
        do_mark_read(alice, room=room, up_to=first.pk)
    assert Membership.objects.get(room=room, user=alice).last_read_id == second.pk
    assert [f["type"] for f in tabs.frames()] == ["room.read"]


def test_mark_read_tells_the_counts_left_in_one_update_and_one_count(
    room, alice, bob, carol, inbox, django_capture_on_commit_callbacks, django_assert_num_queries
):
    first = do_send_message(bob, room=room, body="one")
    do_send_message(bob, room=room, body="@alice two")
    do_send_message(carol, room=room, body="@alice three")
    tabs = inbox(alice)
    # The savepoint, the update, the count and the release.
    with django_capture_on_commit_callbacks(execute=True), django_assert_num_queries(4):
        do_mark_read(alice, room=room, up_to=first.pk)
    (event,) = tabs.frames()
    assert (event["room"], event["last_read_id"]) == (room.pk, first.pk)
    assert (event["unread"], event["mentions"]) == (2, 2)


@pytest.mark.parametrize("direct", [False, True], ids=["group room", "direct room"])
def test_a_new_message_publishes_the_list_entry_a_fresh_read_would_render(
    room, alice, bob, inbox, django_capture_on_commit_callbacks, direct
):
    from rooms.actions import do_open_direct
    from rooms.fragments import room_item_html
    from rooms.queries import room_for_event

    where = do_open_direct(bob, other=alice) if direct else room
    listener = inbox(alice)
    with django_capture_on_commit_callbacks(execute=True):
        do_send_message(bob, room=where, body="the entry shows **this**")
    (event,) = [f for f in listener.frames() if f["type"] == "message.new"]
    assert event["room_html"] == room_item_html(room_for_event(where.pk))
    assert "the entry shows this</span>" in event["room_html"]


def test_a_send_reads_its_sender_afresh_with_the_room_lock(room, bob):
    stale = User.objects.get(pk=bob.pk)  # as a socket opened an hour ago holds them
    User.objects.filter(pk=bob.pk).update(display_name="Robert")
    with CaptureQueriesContext(connection) as captured:
        message = do_send_message(stale, room=room.pk, body="hi", client_token="a-token-1")
    assert message.sender.name == "Robert"
    statements = [
        q["sql"].split()[0]
        for q in captured.captured_queries
        if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))
    ]
    # The room's lock read with the membership and the person; the insert; room and reader.
    assert statements == ["SELECT", "INSERT", "UPDATE", "UPDATE"]


def test_a_deactivated_sender_stores_nothing(room, bob):
    stale = User.objects.get(pk=bob.pk)
    User.objects.filter(pk=bob.pk).update(is_active=False)
    with pytest.raises(SignedOut):
        do_send_message(stale, room=room.pk, body="hi")
    assert not Message.objects.filter(room=room).exists()
