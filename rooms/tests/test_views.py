from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conftest import befriend, client_for
from rooms.actions import do_send_message
from rooms.models import Membership, Message, Role, Room


def test_member_sees_room_and_messages(room, bob):
    do_send_message(bob, room=room, body="**hello**")
    response = client_for(bob).get(room.get_absolute_url())
    assert response.status_code == 200
    assert b"<strong>hello</strong>" in response.content
    assert b"Design" in response.content


def test_opening_room_marks_it_read(room, alice, bob):
    message = do_send_message(bob, room=room, body="hi")
    client_for(alice).get(room.get_absolute_url())
    assert Membership.objects.get(room=room, user=alice).last_read_id == message.pk


@pytest.mark.parametrize(
    "name, method",
    [
        ("room", "get"),
        ("room_messages", "get"),
        ("room_messages", "post"),
        ("room_read", "post"),
        ("room_members", "get"),
        ("member_invite", "post"),
        ("room_leave", "post"),
        ("room_rename", "post"),
    ],
)
def test_outsider_gets_404_for_every_room_url(room, mallory, name, method):
    url = reverse(name, args=[room.pk])
    response = getattr(client_for(mallory), method)(
        url, {"body": "hi", "up_to": 1, "person": "bob", "title": "x"}
    )
    assert response.status_code == 404
    assert b"Design" not in response.content
    assert not Message.objects.exists()
    assert Room.objects.get(pk=room.pk).title == "Design"


@pytest.mark.parametrize(
    "name, method",
    [
        ("message_show", "get"),
        ("message_edit", "get"),
        ("message_edit", "post"),
        ("message_delete", "post"),
    ],
)
def test_outsider_gets_404_for_message_urls(room, bob, mallory, name, method):
    message = do_send_message(bob, room=room, body="secret plans")
    client = client_for(mallory)
    response = getattr(client, method)(reverse(name, args=[message.pk]), {"body": "x"})
    assert response.status_code == 404
    assert b"secret plans" not in response.content
    message.refresh_from_db()
    assert message.body == "secret plans" and not message.is_deleted


def test_anonymous_is_sent_to_login(room):
    response = client_for_anonymous().get(room.get_absolute_url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def client_for_anonymous():
    from django.test import Client

    return Client()


def test_post_message_returns_fragment(room, bob):
    response = client_for(bob).post(reverse("room_messages", args=[room.pk]), {"body": "_hey_"})
    assert response.status_code == 201
    message = Message.objects.get()
    assert f'id="msg-{message.pk}"'.encode() in response.content
    assert b"<em>hey</em>" in response.content


@pytest.mark.parametrize(
    "body, error",
    [("", "cannot be empty"), ("   ", "cannot be empty"), ("y" * 10_001, "at most 10,000")],
)
def test_bad_message_is_refused_with_reason(room, bob, body, error):
    do_send_message(bob, room=room, body="already here")
    response = client_for(bob).post(reverse("room_messages", args=[room.pk]), {"body": body})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert list(Message.objects.values_list("body", flat=True)) == ["already here"]


def test_editing_someone_elses_message_is_403(room, alice, bob):
    message = do_send_message(bob, room=room, body="mine")
    response = client_for(alice).post(reverse("message_edit", args=[message.pk]), {"body": "x"})
    assert response.status_code == 403
    assert "own messages" in response.content.decode()
    message.refresh_from_db()
    assert message.body == "mine"


def test_edit_returns_updated_fragment(room, bob):
    message = do_send_message(bob, room=room, body="v1")
    client = client_for(bob)
    form = client.get(reverse("message_edit", args=[message.pk]))
    assert b"<textarea" in form.content and b"v1" in form.content
    response = client.post(reverse("message_edit", args=[message.pk]), {"body": "v2"})
    assert response.status_code == 200
    assert b"v2" in response.content and b"(edited)" in response.content


def test_delete_returns_placeholder(room, bob):
    message = do_send_message(bob, room=room, body="bye")
    response = client_for(bob).post(reverse("message_delete", args=[message.pk]))
    assert b"This message was deleted" in response.content


def test_get_cannot_delete(room, bob):
    message = do_send_message(bob, room=room, body="bye")
    response = client_for(bob).get(reverse("message_delete", args=[message.pk]))
    assert response.status_code == 405
    message.refresh_from_db()
    assert not message.is_deleted


def test_older_messages_come_in_pages(room, bob, settings):
    settings.MESSAGE_PAGE_SIZE = 5
    ids = [do_send_message(bob, room=room, body=f"m{i}").pk for i in range(12)]
    client = client_for(bob)
    page = client.get(room.get_absolute_url()).content.decode()
    assert f'id="msg-{ids[-1]}"' in page and f'id="msg-{ids[6]}"' not in page
    older = client.get(reverse("room_messages", args=[room.pk]), {"before": ids[7]})
    text = older.content.decode()
    assert [f'id="msg-{i}"' in text for i in ids] == [i in ids[2:7] for i in ids]
    assert f"before={ids[2]}" in text


@pytest.mark.parametrize("before", ["abc", "-1", "0", "1e9"])
def test_bad_page_cursor_is_400(room, bob, before):
    response = client_for(bob).get(reverse("room_messages", args=[room.pk]), {"before": before})
    assert response.status_code == 400


def page_queries(client, url: str) -> int:
    client.get(url)  # warm the session and the read pointer
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_room_page_and_list_queries_do_not_grow_with_data(room, alice, bob, carol):
    from rooms.actions import do_create_room, do_toggle_reaction
    from rooms.models import RoomKind

    client = client_for(bob)
    do_toggle_reaction(carol, message=do_send_message(alice, room=room, body="first"), emoji="🎉")
    small = (page_queries(client, room.get_absolute_url()), page_queries(client, "/rooms/hidden/"))
    befriend(alice, bob, carol)
    for i in range(12):
        other = do_create_room(alice, kind=RoomKind.GROUP, title=f"R{i}", members=[bob, carol])
        do_send_message(alice, room=other, body=f"hi @bob {i}")
    for i in range(60):
        message = do_send_message(carol, room=room, body=f"m{i} @bob")
        do_toggle_reaction(alice, message=message, emoji="👍")
    large = (page_queries(client, room.get_absolute_url()), page_queries(client, "/rooms/hidden/"))
    assert small == large
    assert large[0] <= 18


def test_create_room_through_the_form(alice, bob):
    befriend(alice, bob)
    response = client_for(alice).post(
        reverse("room_new"), {"kind": "group", "title": "Launch", "members": [bob.pk]}
    )
    room = Room.objects.get(title="Launch")
    assert response.status_code == 302
    assert response["Location"] == room.get_absolute_url()
    assert Membership.objects.get(room=room, user=alice).role == Role.OWNER


def test_create_room_with_stranger_shows_error(alice, mallory):
    response = client_for(alice).post(
        reverse("room_new"), {"kind": "group", "title": "x", "members": [mallory.pk]}
    )
    assert response.status_code == 400
    assert not Room.objects.exists()


def test_open_direct_room_reuses_it(alice, bob):
    befriend(alice, bob)
    client = client_for(alice)
    first = client.post(reverse("direct_open", args=["bob"]))
    second = client.post(reverse("direct_open", args=["bob"]))
    assert first["Location"] == second["Location"]
    assert Room.objects.count() == 1


def test_invite_by_username_via_members_panel(room, alice, dave):
    befriend(alice, dave)
    response = client_for(alice).post(reverse("member_invite", args=[room.pk]), {"person": "dave"})
    assert response.status_code == 200
    assert b"Dave Diaz" in response.content


def test_invite_unknown_person_is_400(room, alice):
    response = client_for(alice).post(
        reverse("member_invite", args=[room.pk]), {"person": "nobody"}
    )
    assert response.status_code == 400
    assert "No one has the username" in response.content.decode()


def test_member_invite_is_403_with_reason(room, bob, dave):
    befriend(bob, dave)
    response = client_for(bob).post(reverse("member_invite", args=[room.pk]), {"person": "dave"})
    assert response.status_code == 403
    assert not Membership.objects.filter(user=dave).exists()


def test_set_role_with_bad_value_is_400(room, alice, bob):
    response = client_for(alice).post(reverse("member_role", args=[room.pk, bob.pk]), {"role": "3"})
    assert response.status_code == 400
    assert Membership.objects.get(room=room, user=bob).role == Role.MEMBER


def test_a_new_plain_message_is_rendered_without_asking_for_reactions_files_or_links(room, bob):
    client = client_for(bob)
    with CaptureQueriesContext(connection) as queries:
        sent = client.post(f"/rooms/{room.pk}/messages/", {"body": "just words, **bold** ones"})
    assert sent.status_code == 201
    assert "<strong>bold</strong>" in sent.content.decode()
    asked = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    for table in ("rooms_reaction", "rooms_attachment", "rooms_link"):
        assert not [sql for sql in asked if f'FROM "{table}"' in sql], table
