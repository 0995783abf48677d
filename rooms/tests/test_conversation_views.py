from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.actions import do_set_preferences
from conftest import befriend, client_for
from rooms.actions import (
    do_archive_room,
    do_create_room,
    do_delete_message,
    do_edit_message,
    do_mark_read,
    do_mark_unread,
    do_open_direct,
    do_send_message,
    do_set_favorite,
    do_set_hidden,
    do_toggle_reaction,
    do_unarchive_room,
)
from rooms.models import Membership, Mention, Room, RoomKind
from rooms.queries import (
    LIST_PAGE,
    archived_rooms,
    categorized,
    room_list,
    room_page,
    unread_counts,
)


def listed(user, **kwargs) -> list[str]:
    return [str(m.room) for m in room_list(user, **kwargs)]


def test_room_list_is_ordered_by_latest_activity(alice, bob, carol):
    befriend(alice, bob, carol)
    first = do_create_room(alice, kind=RoomKind.GROUP, title="First", members=[bob])
    do_create_room(alice, kind=RoomKind.GROUP, title="Second", members=[bob])
    assert listed(alice) == ["Second", "First"]
    do_send_message(bob, room=first, body="bump")
    assert listed(alice) == ["First", "Second"]


def test_the_list_shows_the_last_message_as_plain_text(room, alice, bob):
    do_send_message(alice, room=room, body="> the **brief** & `plan` :+1:\nsee <b>you</b>")
    page = client_for(bob).get(reverse("home"), follow=True).content.decode()
    entry = re.search(
        rf'id="room-item-{room.pk}".*?<span class="preview"[^>]*>(.*?)</span>', page, re.S
    )
    assert entry[1].endswith("</b> the brief &amp; plan 👍 see &lt;b&gt;you&lt;/b&gt;")


def test_sending_marks_the_room_read(room, alice, bob):
    do_send_message(bob, room=room, body="hey @alice")
    do_send_message(alice, room=room, body="answering")
    (membership,) = room_list(alice)
    assert (membership.unread, membership.unread_mentions) == (0, 0)


def test_unread_and_mention_counts(room, alice, bob):
    do_send_message(alice, room=room, body="my own @alice does not count")
    do_send_message(bob, room=room, body="one")
    do_send_message(bob, room=room, body="hey @alice")
    do_send_message(bob, room=room, body="@nobody here")
    (membership,) = room_list(alice)
    assert (membership.unread, membership.unread_mentions) == (3, 1)
    assert unread_counts(membership) == (3, 1)


def test_mention_of_someone_outside_the_room_is_plain_text(room, bob, mallory):
    message = do_send_message(bob, room=room, body="@mallory look")
    assert "mention" not in message.body_html
    assert not Mention.objects.exists()


def test_mentions_follow_edits_and_deletes(room, alice, bob):
    message = do_send_message(bob, room=room, body="hi @alice")
    assert list(Mention.objects.values_list("user__username", flat=True)) == ["alice"]
    do_edit_message(bob, message=message, body="hi @carol")
    assert list(Mention.objects.values_list("user__username", flat=True)) == ["carol"]
    do_delete_message(bob, message=message)
    assert not Mention.objects.exists()


def test_mark_as_unread_sets_pointer_just_before_message(room, alice, bob):
    first = do_send_message(bob, room=room, body="one")
    second = do_send_message(bob, room=room, body="two")
    do_mark_read(alice, room=room, up_to=second.pk)
    do_mark_unread(alice, message=first)
    membership = Membership.objects.get(room=room, user=alice)
    assert membership.last_read_id == first.pk - 1
    assert unread_counts(membership) == (2, 0)


def test_mark_unread_publishes_counts_to_own_tabs(
    room, alice, bob, inbox, django_capture_on_commit_callbacks
):
    message = do_send_message(bob, room=room, body="hey @alice")
    tabs = inbox(alice)
    with django_capture_on_commit_callbacks(execute=True):
        do_mark_unread(alice, message=message)
    (frame,) = tabs.frames()
    assert frame["type"] == "room.read"
    assert (frame["unread"], frame["mentions"]) == (1, 1)


def test_favorite_and_categories(alice, bob, carol):
    befriend(alice, bob, carol)
    group = do_create_room(alice, kind=RoomKind.GROUP, title="Group", members=[bob])
    contract = do_create_room(alice, kind=RoomKind.CONTRACT, title="Contract", members=[bob])
    interview = do_create_room(alice, kind=RoomKind.INTERVIEW, title="Interview", members=[bob])
    direct = do_open_direct(alice, other=carol)
    do_set_favorite(alice, room=contract, favorite=True)
    groups = {key: [m.room.pk for m in page.memberships] for key, _, page in categorized(alice)}
    assert groups == {
        "favorites": [contract.pk],
        "interviews": [interview.pk],
        "rooms": [group.pk],
        "people": [direct.pk],
    }
    do_set_favorite(alice, room=contract, favorite=False)
    groups = {key: [m.room.pk for m in page.memberships] for key, _, page in categorized(alice)}
    assert groups["favorites"] == []


def test_an_empty_category_says_how_to_fill_it(room, alice):
    do_set_preferences(alice, conversation_view="categorized")
    page = client_for(alice).get(reverse("home"), follow=True).content.decode()
    favorites = re.search(r'data-category="favorites"[^>]*>(.*?)</ul>', page, re.S)[1]
    assert "Mark a conversation Favorite from its ⋯ menu." in favorites
    rooms = re.search(r'data-category="rooms"[^>]*>(.*?)</ul>', page, re.S)[1]
    assert f'id="room-item-{room.pk}"' in rooms and "None yet." not in rooms
    assert "None yet." in re.search(r'data-category="people"[^>]*>(.*?)</ul>', page, re.S)[1]


def test_hidden_room_leaves_lists_until_unhidden(room, alice, bob):
    do_set_hidden(alice, room=room, hidden=True)
    assert listed(alice) == []
    assert listed(alice, hidden=True) == ["Design"]
    assert listed(bob) == ["Design"]
    do_send_message(bob, room=room, body="still hidden")
    assert listed(alice) == []
    do_set_hidden(alice, room=room, hidden=False)
    assert listed(alice) == ["Design"]


def test_outsider_cannot_hide_or_favorite(room, mallory):
    from django.http import Http404

    with pytest.raises(Http404):
        do_set_hidden(mallory, room=room, hidden=True)
    with pytest.raises(Http404):
        do_set_favorite(mallory, room=room, favorite=True)


def test_archived_room_is_read_only_and_leaves_lists(room, alice, bob, carol):
    message = do_send_message(bob, room=room, body="before")
    do_archive_room(carol, room=room)
    assert listed(bob) == []
    assert [m.room.pk for m in archived_rooms(bob)] == [room.pk]
    with pytest.raises(ValidationError, match="archived"):
        do_send_message(bob, room=room, body="after")
    with pytest.raises(ValidationError, match="archived"):
        do_edit_message(bob, message=message, body="changed")
    do_unarchive_room(alice, room=room)
    do_send_message(bob, room=room, body="after")
    assert listed(bob) == ["Design"]


def test_member_cannot_archive(room, bob):
    with pytest.raises(PermissionDenied):
        do_archive_room(bob, room=room)
    assert not Room.objects.get(pk=room.pk).is_archived


@pytest.mark.parametrize("kind", [RoomKind.DIRECT, RoomKind.INTERVIEW, RoomKind.CONTRACT])
def test_only_group_rooms_can_be_archived(alice, bob, kind):
    befriend(alice, bob)
    other = do_create_room(alice, kind=kind, title="x", members=[bob])
    with pytest.raises(ValidationError, match="cannot be archived; hide it"):
        do_archive_room(alice, room=other)
    assert not Room.objects.get(pk=other.pk).is_archived


def test_reactions_toggle_and_show_who(room, alice, bob):
    message = do_send_message(bob, room=room, body="ship it")
    assert do_toggle_reaction(alice, message=message, emoji="👍") is True
    do_toggle_reaction(bob, message=message, emoji="👍")
    message.refresh_from_db()
    assert message.reaction_summary() == [("👍", 2, "Alice Adams, Bob Jones")]
    assert do_toggle_reaction(alice, message=message, emoji="👍") is False
    message.refresh_from_db()
    assert message.reaction_summary() == [("👍", 1, "Bob Jones")]


@pytest.mark.parametrize("emoji", ["", "   ", "x" * 33])
def test_bad_reaction_is_refused(room, alice, bob, emoji):
    message = do_send_message(bob, room=room, body="hi")
    with pytest.raises(ValidationError):
        do_toggle_reaction(alice, message=message, emoji=emoji)


def test_member_of_a_direct_room_is_told_it_cannot_be_archived(alice, bob):
    befriend(alice, bob)
    direct = do_open_direct(alice, other=bob)
    with pytest.raises(ValidationError, match="cannot be archived"):
        do_archive_room(bob, room=direct)


def test_archive_rooms_command(alice, bob, capsys):
    befriend(alice, bob)
    stale = do_create_room(alice, kind=RoomKind.GROUP, title="Stale", members=[bob])
    fresh = do_create_room(alice, kind=RoomKind.GROUP, title="Fresh", members=[bob])
    direct = do_open_direct(alice, other=bob)
    long_ago = timezone.now() - timedelta(days=40)
    Room.objects.filter(pk__in=[stale.pk, direct.pk]).update(last_activity=long_ago)

    call_command("archive_rooms", "--inactive-days", "30", "--dry-run")
    assert "Would archive 1 room(s)" in capsys.readouterr().out
    assert not Room.objects.filter(archived__isnull=False).exists()

    call_command("archive_rooms", "--inactive-days", "30")
    assert "'Stale'" in capsys.readouterr().out
    call_command("archive_rooms", "--inactive-days", "30")
    assert "Archived 0 room(s)" in capsys.readouterr().out
    assert list(Room.objects.filter(archived__isnull=False)) == [stale]
    assert fresh.pk not in Room.objects.filter(archived__isnull=False).values_list("pk", flat=True)


def test_archive_rooms_command_refuses_bad_days(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("archive_rooms", "--inactive-days", "0")


def rooms_of(alice, bob, count: int) -> list[Room]:
    """`count` group rooms of alice and bob, the last one created the most recent."""
    befriend(alice, bob)
    return [
        do_create_room(alice, kind=RoomKind.GROUP, title=f"Room {n:03}", members=[bob])
        for n in range(count)
    ]


def listed_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'id="room-item-(\d+)"', html)]


def test_the_list_shows_a_page_and_the_rest_follows_on_scroll(alice, bob):
    rooms = rooms_of(alice, bob, LIST_PAGE + 3)
    newest_first = [room.pk for room in reversed(rooms)]
    client = client_for(alice)

    first = client.get(reverse("room_list")).content.decode()
    assert listed_ids(first) == newest_first[:LIST_PAGE]
    (more,) = re.findall(r'hx-get="([^"]+)" hx-trigger="intersect once"', first)

    rest = client.get(html.unescape(more))
    assert rest.status_code == 200
    assert listed_ids(rest.content.decode()) == newest_first[LIST_PAGE:]
    assert "intersect once" not in rest.content.decode()  # the last page asks for no more


def test_each_category_is_paged_on_its_own(alice, bob):
    rooms = rooms_of(alice, bob, LIST_PAGE + 2)
    do_set_favorite(alice, room=rooms[0], favorite=True)
    pages = {key: page for key, _, page in categorized(alice)}
    assert [m.room for m in pages["favorites"].memberships] == [rooms[0]]
    assert pages["favorites"].next is None
    assert len(pages["rooms"].memberships) == LIST_PAGE
    rest = client_for(alice).get(
        reverse("room_list"), {"after": str(pages["rooms"].next), "category": "rooms"}
    )
    assert rest.status_code == 200
    # The favorite is listed under Favorites only, not again as the oldest of Rooms.
    assert listed_ids(rest.content.decode()) == [rooms[1].pk]


def test_a_room_that_moved_up_is_not_listed_again_on_a_later_page(alice, bob):
    rooms = rooms_of(alice, bob, LIST_PAGE + 2)
    cursor = room_page(alice).next
    do_send_message(bob, room=rooms[0], body="the oldest room is now the newest")
    after = room_page(alice, after=cursor)
    assert [m.room for m in after.memberships] == [rooms[1]]
    assert room_page(alice).memberships[0].room == rooms[0]


def test_the_list_costs_the_same_queries_for_a_page_of_rooms_or_a_few(
    alice, bob, django_assert_num_queries
):
    rooms_of(alice, bob, 3)
    client = client_for(alice)
    client.get(reverse("room_list"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("room_list"))
    rooms_of(alice, bob, LIST_PAGE * 2)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(reverse("room_list"))
    assert len(listed_ids(response.content.decode())) == LIST_PAGE


NOT_A_PLACE = "That is not a place in the conversation list."


@pytest.mark.parametrize(
    "params, message",
    [
        ({"after": "yesterday"}, NOT_A_PLACE),
        ({"after": "2026-11-27T10:00:00~12"}, NOT_A_PLACE),  # no time zone
        ({"after": "2026-11-27T10:00:00+00:00~-4"}, NOT_A_PLACE),
        ({"after": "2026-11-27T10:00:00+00:00~99999999999999999999"}, NOT_A_PLACE),
        (
            {"after": "2026-11-27T10:00:00+00:00~12", "category": "secret"},
            "There is no such category of conversations.",
        ),
    ],
)
def test_a_bad_place_in_the_list_is_a_400_that_says_so(alice, bob, params, message):
    rooms_of(alice, bob, 1)
    response = client_for(alice).get(reverse("room_list"), params)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Membership.objects.filter(user=alice).count() == 1
