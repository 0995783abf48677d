"""The search page (/search/) and the search bar: what a person sees for each kind of query."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import resolve

from conftest import befriend, client_for
from rooms.actions import do_create_room, do_send_message, do_set_hidden
from rooms.models import Membership, RoomKind

SEARCH = "/search/"


def search(user, q: str | None = None, **extra):
    params = {} if q is None else {"q": q}
    return client_for(user).get(SEARCH, params | extra)


def test_results_show_room_sender_and_marked_snippet_linking_to_the_message(room, alice, bob):
    message = do_send_message(bob, room=room, body="the final <i>invoice</i>")
    response = search(alice, "invoice")
    assert response.status_code == 200
    html = response.content.decode()
    assert "1 message" in html
    assert "Design" in html
    assert "Bob Jones" in html
    assert "the final &lt;i&gt;<mark>invoice</mark>&lt;/i&gt;" in html
    assert f'href="/rooms/{room.pk}/?around={message.pk}#msg-{message.pk}"' in html


def test_a_snippet_reads_as_the_message_does_without_its_markup(room, alice, bob):
    do_send_message(bob, room=room, body="do you need the **invoice** as _PDF_ :+1:")
    html = search(alice, "invoice pdf").content.decode()
    assert "do you need the <mark>invoice</mark> as <mark>PDF</mark> 👍" in html


def test_no_query_shows_the_help_with_no_error(alice):
    response = search(alice)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Plain words need no quotes" in html
    assert "from:bob" in html
    assert 'class="search-error"' not in html


def test_no_match_says_so(room, alice):
    response = search(alice, "nothing")
    assert response.status_code == 200
    assert "No messages match." in response.content.decode()


@pytest.mark.parametrize(
    "q, message",
    [
        ("before:2015-05-01", "Dates are written yyyyMMdd, like 20150501"),
        ("after:20151340", "Dates are written yyyyMMdd, like 20150501"),
        ("from:zed", "No one called &quot;zed&quot;."),
        ("in:nowhere", "No room called &quot;nowhere&quot;."),
        ("", "Type a word to search for."),
        ("   ", "Type a word to search for."),
        ("has:pets", "has: can be has:link or has:file."),
    ],
)
def test_a_query_that_cannot_run_gets_a_400_page_saying_why(room, alice, q, message):
    response = search(alice, q)
    assert response.status_code == 400
    html = response.content.decode()
    assert f'<p class="search-error" role="alert">{message}' in html
    assert 'id="room-lists"' in html  # still the whole page, with the conversation list


def test_an_unknown_scope_is_a_400(alice):
    assert search(alice, "x", scope="everything").status_code == 400


def test_an_outsider_never_sees_a_message_or_its_snippet(room, bob, mallory):
    do_send_message(bob, room=room, body="secret merger plans")
    for q in ("secret", "merger plans", "from:bob", '"secret merger"', "sec*"):
        response = search(mallory, q)
        assert response.status_code == 200
        assert b"secret merger plans" not in response.content
        assert b"<mark>" not in response.content
        assert b"No messages match." in response.content


def test_htmx_gets_only_the_results_and_a_plain_text_reason_when_refused(room, alice, bob):
    do_send_message(bob, room=room, body="invoice attached")
    client = client_for(alice)
    response = client.get(SEARCH, {"q": "invoice"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="search-results"')
    assert "<mark>invoice</mark>" in html
    refused = client.get(SEARCH, {"q": "before:1"}, headers={"HX-Request": "true"})
    assert refused.status_code == 400
    assert refused["Content-Type"].startswith("text/plain")
    assert refused.content.decode() == "Dates are written yyyyMMdd, like 20150501"


def test_the_page_makes_the_same_queries_for_one_result_or_fifty(
    room, alice, bob, django_assert_num_queries
):
    do_send_message(bob, room=room, body="ping")
    client = client_for(alice)
    client.get(SEARCH, {"q": "ping"})  # the session is loaded the same way from here on
    with CaptureQueriesContext(connection) as one:
        assert client.get(SEARCH, {"q": "ping"}).content.count(b'class="search-hit"') == 1
    for n in range(60):
        do_send_message(bob, room=room, body=f"ping {n}")
    with django_assert_num_queries(len(one.captured_queries)):
        assert client.get(SEARCH, {"q": "ping"}).content.count(b'class="search-hit"') == 50


def test_search_needs_a_login(client):
    response = client.get(SEARCH, {"q": "x"})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# People & Rooms ------------------------------------------------------------------------------


def test_people_and_rooms_finds_rooms_by_title_including_hidden_ones(room, alice, bob):
    befriend(alice, bob)
    launch = do_create_room(alice, kind=RoomKind.GROUP, title="Design launch", members=[bob])
    do_set_hidden(alice, room=launch, hidden=True)
    response = search(alice, "design", scope="people")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="{room.get_absolute_url()}"' in html
    assert f'href="{launch.get_absolute_url()}"' in html
    assert "hidden" in html
    # Opening a hidden room from the results brings it back to the list.
    client_for(alice).get(launch.get_absolute_url())
    assert not Membership.objects.get(room=launch, user=alice).hidden


def test_people_and_rooms_finds_people_in_the_address_book_only(room, alice, mallory):
    response = search(alice, "o", scope="people")
    html = response.content.decode()
    assert "Bob Jones" in html
    assert "Carol Chen" in html
    assert "Mallory" not in html
    assert 'action="/direct/bob/"' in html
    assert "No rooms called that." in html


def test_opening_a_person_starts_or_reuses_the_direct_room(room, alice, bob):
    client = client_for(alice)
    first = client.post("/direct/bob/")
    second = client.post("/direct/bob/")
    assert first.status_code == 302
    assert first["Location"] == second["Location"]
    direct = Membership.objects.get(user=alice, room__kind=RoomKind.DIRECT).room
    assert first["Location"] == direct.get_absolute_url()


def test_people_and_rooms_needs_some_text(alice):
    response = search(alice, " ", scope="people")
    assert response.status_code == 400
    assert "Type part of a name" in response.content.decode()


# The search bar ------------------------------------------------------------------------------


def _search_bar(path: str) -> str:
    request = RequestFactory().get(path)
    request.user = AnonymousUser()
    request.resolver_match = resolve(request.path)
    return render_to_string("components/search_bar.html", request=request)


def test_the_search_bar_is_a_named_box_with_messages_chosen_by_default():
    html = _search_bar("/rooms/1/")
    assert 'action="/search/"' in html
    assert 'id="search-input"' in html
    assert 'aria-label="Search"' in html
    assert "<span>People &amp; Rooms</span>" in html
    assert 'value="messages" checked' in html
    assert 'value="people" checked' not in html


def test_the_search_bar_keeps_the_query_and_scope_on_the_results_page():
    html = _search_bar("/search/?q=%22final+invoice%22&scope=people")
    assert 'value="&quot;final invoice&quot;"' in html
    assert 'value="people" checked' in html
    assert 'value="messages" checked' not in html
