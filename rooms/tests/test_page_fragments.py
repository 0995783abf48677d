"""Pages take message fragments and conversation-list entries from the cache; whatever changes
what one shows (an edit, a delete, a reaction, a new name, a new message) shows at once."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conftest import client_for
from rooms import fragments
from rooms.actions import (
    do_create_room,
    do_delete_attachment,
    do_delete_message,
    do_edit_message,
    do_open_direct,
    do_rename_room,
    do_send_message,
    do_toggle_reaction,
)
from rooms.fragments import message_html
from rooms.models import RoomKind
from rooms.queries import access_message
from rooms.tests.test_files import share_file

ARTICLE = re.compile(r'<article class="msg[^"]*" id="msg-(\d+)".*?</article>', re.S)
ROOM_ITEM = re.compile(r'<li class="room-item[^"]*" id="room-item-(\d+)".*?</li>', re.S)


def page(client, room, **params) -> str:
    response = client.get(reverse("room", args=[room.pk]), params)
    assert response.status_code == 200
    return response.content.decode()


def shown(html: str, pattern: re.Pattern, pk: int) -> str:
    return next(m.group(0) for m in pattern.finditer(html) if m.group(1) == str(pk))


@pytest.fixture
def bobs_page(room, bob):
    """bob's client, with the room open once so its fragments are in the cache."""
    client = client_for(bob)
    page(client, room)
    return client


def test_an_edit_shows_at_once(room, alice, bob, bobs_page):
    message = do_send_message(alice, room=room, body="meet at noon")
    assert "meet at noon" in page(bobs_page, room)
    do_edit_message(alice, message=message, body="meet at one")
    article = shown(page(bobs_page, room), ARTICLE, message.pk)
    assert "meet at one" in article and "noon" not in article and "(edited)" in article


def test_a_delete_shows_at_once(room, alice, bobs_page):
    message = do_send_message(alice, room=room, body="oops, wrong room")
    page(bobs_page, room)
    do_delete_message(alice, message=message)
    article = shown(page(bobs_page, room), ARTICLE, message.pk)
    assert "This message was deleted" in article and "wrong room" not in article


def test_reactions_show_at_once_added_and_taken_back(room, alice, carol, bobs_page):
    message = do_send_message(alice, room=room, body="ship it?")
    page(bobs_page, room)
    do_toggle_reaction(carol, message=message, emoji="🎉")
    assert f'title="{carol.name}"' in shown(page(bobs_page, room), ARTICLE, message.pk)
    do_toggle_reaction(carol, message=message, emoji="🎉")
    assert "🎉" not in shown(page(bobs_page, room), ARTICLE, message.pk)


def test_a_sender_who_changes_their_name_shows_under_the_new_one(room, alice, bob, bobs_page):
    message = do_send_message(alice, room=room, body="hello")
    page(bobs_page, room)
    alice.display_name = "Alice Brown"
    alice.save(update_fields=["display_name"])
    article = shown(page(bobs_page, room), ARTICLE, message.pk)
    assert f'<span class="author" data-person-name="{alice.pk}">Alice Brown</span>' in article
    history = bobs_page.get(reverse("room_messages", args=[room.pk]), {"before": message.pk + 1})
    assert "Alice Brown" in history.content.decode()


def test_someone_who_reacted_shows_under_their_new_name(room, alice, carol, bobs_page):
    message = do_send_message(alice, room=room, body="lunch?")
    do_toggle_reaction(carol, message=message, emoji="👍")
    page(bobs_page, room)
    carol.display_name = "Carol King"
    carol.save(update_fields=["display_name"])
    assert 'title="Carol King"' in shown(page(bobs_page, room), ARTICLE, message.pk)


def test_a_deleted_file_shows_at_once(room, alice, bobs_page):
    attachment = share_file(alice, room, "plan.txt", b"the plan")
    assert "plan.txt" in shown(page(bobs_page, room), ARTICLE, attachment.message_id)
    do_delete_attachment(alice, attachment=attachment)
    article = shown(page(bobs_page, room), ARTICLE, attachment.message_id)
    assert "File deleted" in article and "plan.txt" not in article


def test_the_list_entry_follows_new_messages_names_and_renames(room, alice, bob, carol):
    other = do_create_room(alice, kind=RoomKind.GROUP, title="Launch", members=[bob])
    direct = do_open_direct(bob, other=carol)
    do_send_message(carol, room=direct, body="are you around?")
    client = client_for(bob)
    listed = page(client, room)
    assert "Launch" in shown(listed, ROOM_ITEM, other.pk)
    assert "are you around?" in shown(listed, ROOM_ITEM, direct.pk)

    do_rename_room(alice, room=other, title="Launch day")
    do_send_message(alice, room=other, body="tickets are out")
    carol.display_name = "Carol King"
    carol.save(update_fields=["display_name"])
    listed = page(client, room)
    entry = shown(listed, ROOM_ITEM, other.pk)
    assert "Launch day" in entry and "tickets are out" in entry
    assert 'class="room-item unread"' in entry and 'aria-label="unread messages">1<' in entry
    assert "Carol King" in shown(listed, ROOM_ITEM, direct.pk)
    # Opening the room reads it: its entry's badge goes as well.
    entry = shown(page(client, other), ROOM_ITEM, other.pk)
    assert 'class="room-item"' in entry and "hidden>0<" in entry


def test_cached_fragments_are_the_fragments(room, alice, bob, carol):
    plain = do_send_message(alice, room=room, body="**plain** words")
    reacted = do_send_message(bob, room=room, body="with a reaction")
    do_toggle_reaction(carol, message=reacted, emoji="👀")
    shared = share_file(carol, room, "notes.txt", b"notes", body="see file")
    client = client_for(bob)
    cache.clear()
    cold = page(client, room)
    warm = page(client, room)
    for message_id in (plain.pk, reacted.pk, shared.message_id):
        fresh = message_html(access_message(bob, message_id)).strip()
        assert shown(cold, ARTICLE, message_id) == shown(warm, ARTICLE, message_id) == fresh
    assert ROOM_ITEM.findall(cold) == ROOM_ITEM.findall(warm) == [str(room.pk)]
    assert shown(cold, ROOM_ITEM, room.pk) == shown(warm, ROOM_ITEM, room.pk)


@pytest.fixture
def rendered(monkeypatch) -> list[str]:
    """The names of the fragments rendered from here on (rendering itself goes on as ever)."""
    names: list[str] = []

    def counting(name, context=None, *args, **kwargs):
        names.append(name)
        return render_to_string(name, context, *args, **kwargs)

    monkeypatch.setattr(fragments, "render_to_string", counting)
    return names


def test_a_second_visit_renders_no_fragment_again(room, alice, bob, rendered):
    for n in range(5):
        do_send_message(alice, room=room, body=f"line {n}")
    rendered.clear()
    client = client_for(bob)
    cache.clear()
    first = page(client, room)
    assert sorted(set(rendered)) == ["rooms/room.html#message", "rooms/room_list.html#room_item"]
    assert rendered.count("rooms/room.html#message") == 5
    rendered.clear()
    assert page(client, room).count('class="msg ') == first.count('class="msg ') == 5
    assert rendered == []


def test_a_message_sent_is_rendered_once_not_again_for_the_page(
    room, alice, bob, rendered, django_capture_on_commit_callbacks
):
    cache.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sent = [do_send_message(alice, room=room, body=f"line {n}") for n in range(3)]
    assert rendered.count("rooms/room.html#message") == 3
    rendered.clear()
    html = page(client_for(bob), room)
    assert rendered == ["rooms/room_list.html#room_item"]
    for message in sent:
        assert (
            shown(html, ARTICLE, message.pk)
            == message_html(access_message(bob, message.pk)).strip()
        )


def test_a_send_that_rolls_back_leaves_nothing_in_the_cache(
    room, alice, monkeypatch, django_capture_on_commit_callbacks
):
    stored: list[str] = []

    class Recording:
        """The cache, noting the keys written to it."""

        def __getattr__(self, name):
            return getattr(cache, name)

        def set(self, key, *args, **kwargs):
            stored.append(key)
            return cache.set(key, *args, **kwargs)

    monkeypatch.setattr(fragments, "cache", Recording())
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        do_send_message(alice, room=room, body="never stored")
        raise RuntimeError("the request failed after the send")
    assert callbacks == []  # no live event either
    assert stored == []
    with django_capture_on_commit_callbacks(execute=True):
        do_send_message(alice, room=room, body="stored")
    assert [key.split(":")[1] for key in stored] == ["message"]


def test_cached_or_not_a_room_page_costs_the_same_queries(room, alice, bob):
    for n in range(5):
        do_send_message(alice, room=room, body=f"line {n}")
    client = client_for(bob)
    page(client, room)  # reads the room
    cache.clear()
    with CaptureQueriesContext(connection) as cold:
        page(client, room)
    with CaptureQueriesContext(connection) as warm:
        page(client, room)
    assert len(cold) == len(warm)


def test_opening_a_room_already_read_writes_nothing(room, alice, bob):
    do_send_message(alice, room=room, body="read me")
    client = client_for(bob)
    page(client, room)
    with CaptureQueriesContext(connection) as queries:
        page(client, room)
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
