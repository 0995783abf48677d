"""Loading older messages: a page of history costs a fixed, small number of queries, and still
shows each message's reactions, files and cloud-drive links."""

from __future__ import annotations

from django.urls import reverse

from conftest import client_for
from rooms.actions import do_send_message, do_toggle_reaction
from rooms.queries import catch_up, listening_room_ids, messages_after, messages_before
from rooms.tests.test_files import share_file


def fill(room, person, count: int) -> list[int]:
    return [do_send_message(person, room=room, body=f"line {n}").pk for n in range(count)]


def test_page_of_plain_messages_is_one_query(room, bob, django_assert_num_queries):
    ids = fill(room, bob, 60)
    with django_assert_num_queries(1):
        page, has_more = messages_before(room, before=ids[-1])
        senders = [message.sender.name for message in page]
        extras = [(m.reaction_summary(), list(m.attachments.all())) for m in page]
    assert [message.pk for message in page] == ids[9:59]
    assert has_more
    assert senders == [bob.name] * 50 and extras == [([], [])] * 50


def test_page_with_reactions_files_and_links_is_four_queries(
    room, alice, bob, django_assert_num_queries
):
    fill(room, bob, 30)
    reacted = do_send_message(bob, room=room, body="react to me")
    do_toggle_reaction(alice, message=reacted, emoji="👍")
    shared = share_file(alice, room, "plan.txt", b"the plan")
    linked = do_send_message(bob, room=room, body="https://www.dropbox.com/s/a1b2c3/Budget.xlsx")
    with django_assert_num_queries(4):
        page, _ = messages_before(room)
        shown = {
            message.pk: (
                message.reaction_summary(),
                [attachment.name for attachment in message.attachments.all()],
                [link.title for link in message.links.all()],
            )
            for message in page
        }
    assert shown[reacted.pk] == ([("👍", 1, alice.name)], [], [])
    assert shown[shared.message_id] == ([], ["plan.txt"], [])
    assert shown[linked.pk] == ([], [], ["Budget.xlsx"])


def test_only_reactions_on_a_page_cost_one_more_query(room, alice, bob, django_assert_num_queries):
    ids = fill(room, bob, 10)
    do_toggle_reaction(alice, message=bob.messages_sent.get(pk=ids[3]), emoji="🎉")
    with django_assert_num_queries(2):
        page, has_newer = messages_after(room, after=ids[0])
        summaries = [message.reaction_summary() for message in page]
    assert not has_newer
    assert summaries[2] == [("🎉", 1, alice.name)] and summaries.count([]) == 8


def test_load_older_request_queries_do_not_grow_with_history(room, bob, django_assert_num_queries):
    client = client_for(bob)
    url = reverse("room_messages", args=[room.pk])
    ids = fill(room, bob, 120)
    client.get(url, {"before": ids[-1]}, headers={"HX-Request": "true"})  # warm the session
    # The session, the person, their membership, the page.
    with django_assert_num_queries(4):
        response = client.get(url, {"before": ids[-1]}, headers={"HX-Request": "true"})
    assert response.content.decode().count('class="msg ') == 50
    with django_assert_num_queries(4):
        response = client.get(url, {"before": ids[20]}, headers={"HX-Request": "true"})
    assert response.content.decode().count('class="msg ') == 20


def test_catch_up_after_an_absence_is_one_query(room, alice, bob, django_assert_num_queries):
    seen = fill(room, bob, 3)[-1]
    missed = fill(room, bob, 40)
    do_toggle_reaction(bob, message=room.messages.last(), emoji="👀")
    rooms = listening_room_ids(alice.pk)  # the socket has them from when it connected
    with django_assert_num_queries(2):  # the messages, then the one with a reaction
        replay, truncated = catch_up(rooms, last_id=seen, since=None)
        summaries = [message.reaction_summary() for message in replay]
    assert [message.pk for message in replay] == missed and not truncated
    assert summaries[-1] == [("👀", 1, bob.name)] and summaries.count([]) == 39
