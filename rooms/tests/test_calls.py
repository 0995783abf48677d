"""Calls: starting, joining, leaving, ending, the limits, the system messages, the URLs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.test import TestCase
from django.utils import timezone

from conftest import befriend, client_for, make_person
from rooms import calls, presence
from rooms.actions import do_archive_room, do_create_upload, do_invite_member, do_remove_member
from rooms.models import Attachment, Call, CallParticipant, Message, MessageKind

pytestmark = pytest.mark.django_db


def online(user, channel):
    """The socket `channel` reports in, as an open tab does (its process keeps it fresh)."""
    presence.report(user.pk, channel, "online")
    return channel


def start(user, room, kind="video", channel=None):
    channel = online(user, channel or f"chan.{user.username}")
    return calls.do_start_call(user, room_id=room.pk, kind=kind, channel_name=channel)


def join(user, call, channel=None):
    channel = online(user, channel or f"chan.{user.username}")
    return calls.do_join_call(user, call_id=call.pk, channel_name=channel)


def leave(user, call, channel=None):
    calls.do_leave_call(user, call_id=call.pk, channel_name=channel or f"chan.{user.username}")


def system_texts(room) -> list[str]:
    return list(
        Message.objects.filter(room=room, kind=MessageKind.SYSTEM)
        .order_by("id")
        .values_list("body", flat=True)
    )


def test_starting_a_call_seats_the_starter_and_says_so(room, alice):
    seat = start(alice, room)
    call = seat.call
    assert call.kind == "video" and call.started_by == alice and call.is_live
    assert [p["name"] for p in calls.peers(call)] == ["Alice Adams"]
    assert system_texts(room) == ["Alice Adams started a video call"]
    message = Message.objects.get(room=room, kind=MessageKind.SYSTEM)
    assert "Alice Adams started a video call" in message.body_html


def test_voice_call_says_voice_and_starts_without_camera(room, alice):
    seat = start(alice, room, kind="voice")
    assert system_texts(room) == ["Alice Adams started a voice call"]
    assert seat.camera is False


def test_unknown_call_kind_is_refused(room, alice):
    with pytest.raises(ValidationError, match="voice call or a video call"):
        start(alice, room, kind="hologram")
    assert not Call.objects.exists()


def test_starting_while_a_call_is_on_joins_it(room, alice, bob):
    first = start(alice, room)
    second = start(bob, room)
    assert second.call_id == first.call_id
    assert Call.objects.filter(room=room).count() == 1
    assert system_texts(room) == ["Alice Adams started a video call"]


def test_database_allows_one_live_call_per_room(room, alice):
    now = timezone.now()
    Call.objects.create(room=room, kind="voice", started_by=alice, started_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Call.objects.create(room=room, kind="video", started_by=alice, started_at=now)
    # An ended call does not count.
    Call.objects.filter(room=room).update(ended_at=now)
    Call.objects.create(room=room, kind="video", started_by=alice, started_at=now)


def test_seventh_person_is_refused_clearly(room, alice):
    call = start(alice, room).call
    for n in range(5):
        join(new_member(room, alice, f"guest{n}"), call)
    seventh = new_member(room, alice, "seventh")
    with pytest.raises(ValidationError, match="This call is full: at most 6 people"):
        join(seventh, call)
    assert CallParticipant.objects.filter(call=call, left_at__isnull=True).count() == 6


def test_joining_again_from_another_tab_moves_the_seat(room, alice, bob):
    call = start(alice, room).call
    first = join(bob, call, channel="bob.tab1")
    second = join(bob, call, channel="bob.tab2")
    first.refresh_from_db()
    assert first.left_at is not None and second.left_at is None
    assert [p["peer"] for p in calls.peers(call)] == [
        calls.peers(call)[0]["peer"],
        second.peer_id,
    ]


def test_outsider_cannot_start_or_join(room, alice, mallory):
    with pytest.raises(Http404):
        start(mallory, room)
    call = start(alice, room).call
    with pytest.raises(Http404):
        join(mallory, call)


def test_archived_room_refuses_calls(room, alice, bob):
    call = start(alice, room).call
    do_archive_room(alice, room=room)
    with pytest.raises(ValidationError, match="archived"):
        join(bob, call)
    leave(alice, call)
    with pytest.raises(ValidationError, match="archived"):
        start(bob, room)


def test_last_one_leaving_ends_the_call_with_who_and_how_long(room, alice, bob, carol):
    call = start(alice, room).call
    join(bob, call)
    Call.objects.filter(pk=call.pk).update(started_at=timezone.now() - timedelta(minutes=12))
    leave(alice, call)
    call.refresh_from_db()
    assert call.is_live
    leave(bob, call)
    call.refresh_from_db()
    assert not call.is_live
    assert system_texts(room)[-1] == "Call ended · 12 min · with Alice Adams, Bob Jones"


def test_a_short_call_says_seconds(room, alice):
    call = start(alice, room).call
    leave(alice, call)
    assert system_texts(room)[-1].startswith("Call ended · ")
    assert system_texts(room)[-1].endswith(" s · with Alice Adams")


def test_call_lengths_read_naturally():
    assert calls.call_length(timedelta(seconds=42)) == "42 s"
    assert calls.call_length(timedelta(minutes=12, seconds=10)) == "12 min"
    assert calls.call_length(timedelta(hours=1, minutes=5)) == "1 h 5 min"
    assert calls.recording_length(192) == "3:12"
    assert calls.recording_length(3725) == "1:02:05"


def test_names_stay_plain_text_in_system_messages(room, alice):
    alice.display_name = "**Al** _ice_"
    alice.save()
    start(alice, room)
    html = Message.objects.get(room=room, kind=MessageKind.SYSTEM).body_html
    assert "**Al** _ice_ started a video call" in html
    assert "<strong>" not in html and "<em>" not in html


def test_leaving_a_call_you_are_not_in_is_refused(room, alice, bob):
    call = start(alice, room).call
    with pytest.raises(ValidationError, match="not in that call"):
        leave(bob, call)
    with pytest.raises(ValidationError, match="not in that call"):
        leave(alice, call, channel="another.tab")


def test_socket_closing_gives_up_its_seat_and_ends_an_empty_call(room, alice, bob):
    call = start(alice, room, channel="alice.tab").call
    join(bob, call, channel="bob.tab")
    assert calls.do_leave_calls_of_socket("alice.tab") == 1
    assert [p["name"] for p in calls.peers(call)] == ["Bob Jones"]
    calls.do_leave_calls_of_socket("bob.tab")
    call.refresh_from_db()
    assert not call.is_live
    assert system_texts(room)[-1].startswith("Call ended")


def test_seat_of_a_socket_that_stopped_reporting_in_is_freed_on_the_next_join(
    room, alice, bob, carol
):
    call = start(alice, room, channel="alice.tab").call
    join(bob, call, channel="bob.tab")
    presence.report(bob.pk, "bob.tab", None)  # bob's server process died: no goodbye, no pings
    join(carol, call)
    assert [p["name"] for p in calls.peers(call)] == ["Alice Adams", "Carol Chen"]


def test_a_call_left_only_by_dead_sockets_ends_when_someone_starts_one(room, alice, bob):
    old = start(alice, room, channel="alice.tab").call
    presence.report(alice.pk, "alice.tab", None)
    new = start(bob, room).call
    old.refresh_from_db()
    assert not old.is_live and new.pk != old.pk
    assert system_texts(room) == [
        "Alice Adams started a video call",
        system_texts(room)[1],
        "Bob Jones started a video call",
    ]
    assert system_texts(room)[1].startswith("Call ended · ")


def test_scheduled_sweep_ends_a_call_whose_sockets_all_died(room, alice, bob):
    from rooms.tasks import free_orphaned_call_seats

    call = start(alice, room, channel="alice.tab").call
    join(bob, call, channel="bob.tab")
    assert free_orphaned_call_seats() == 0
    presence.report(bob.pk, "bob.tab", None)
    assert free_orphaned_call_seats() == 1
    assert [p["name"] for p in calls.peers(call)] == ["Alice Adams"]
    presence.report(alice.pk, "alice.tab", None)
    assert free_orphaned_call_seats() == 1
    call.refresh_from_db()
    assert not call.is_live
    assert system_texts(room)[-1].startswith("Call ended")


def test_nobody_is_taken_for_gone_while_presence_is_unknown(room, alice, bob, settings):
    from rooms.tasks import free_orphaned_call_seats

    call = start(alice, room).call
    join(bob, call)
    # Redis down (nothing listens on port 9): presence cannot say who is there.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }
    assert free_orphaned_call_seats() == 0
    assert [p["name"] for p in calls.peers(call)] == ["Alice Adams", "Bob Jones"]


def test_removed_member_loses_their_seat(room, alice, bob):
    call = start(alice, room).call
    join(bob, call)
    do_remove_member(alice, room=room, user=bob)
    assert [p["name"] for p in calls.peers(call)] == ["Alice Adams"]


def test_starter_or_admin_ends_for_everyone_a_member_cannot(room, alice, bob, carol):
    call = start(bob, room).call
    join(alice, call)
    join(carol, call)
    with pytest.raises(PermissionDenied):
        calls.do_end_call(new_member(room, alice, "erin"), call_id=call.pk)
    calls.do_end_call(carol, call_id=call.pk)  # an admin
    call.refresh_from_db()
    assert not call.is_live
    assert calls.peers(call) == []
    assert system_texts(room)[-1].startswith("Call ended")
    assert "with Bob Jones, Alice Adams, Carol Chen" in system_texts(room)[-1]


def new_member(room, owner, username):
    person = make_person(username, username.title())
    befriend(owner, person)
    do_invite_member(owner, room=room, user=person)
    return person


def test_state_changes_are_kept_for_late_joiners(room, alice, bob):
    seat = start(alice, room)
    calls.do_set_call_state(
        alice,
        call_id=seat.call_id,
        channel_name="chan.alice",
        muted=True,
        camera=False,
        screen=False,
        recording=True,
    )
    join(bob, seat.call)
    (peer,) = [p for p in calls.peers(seat.call) if p["user"] == alice.pk]
    assert peer["muted"] is True and peer["camera"] is False and peer["recording"] is True
    assert "Recording" in calls.banner_html(room, seat.call, calls.peers(seat.call))


@pytest.mark.usefixtures("eager_celery")
def test_start_notifies_other_members_by_email(room, alice, bob, carol):
    from notifications.actions import send_due_emails
    from notifications.models import EmailBatch

    with TestCase.captureOnCommitCallbacks(execute=True):
        start(alice, room)
    EmailBatch.objects.update(due=timezone.now() - timedelta(seconds=1))
    send_due_emails()
    to_bob = [m for m in mail.outbox if "bob@example.com" in m.to[0]]
    assert len(to_bob) == 1
    assert "Alice Adams started a video call" in to_bob[0].body


def test_call_events_carry_the_banner_to_the_room(room, alice, bob, inbox):
    listening = inbox(bob)
    with TestCase.captureOnCommitCallbacks(execute=True):
        seat = start(alice, room)
    started = [f for f in listening.frames() if f["type"].startswith("call.")]
    assert [f["type"] for f in started] == ["call.started"]
    (event,) = started
    assert set(event) == {"type", "room", "call", "kind", "peer", "participants", "html", "ts"}
    assert event["peer"] == seat.peer_id and event["kind"] == "video"
    assert event["participants"][0] == {
        "peer": seat.peer_id,
        "user": alice.pk,
        "name": "Alice Adams",
        "muted": False,
        "camera": True,
        "screen": False,
        "recording": False,
    }
    assert "Video call in progress" in event["html"] and "Join" in event["html"]
    with TestCase.captureOnCommitCallbacks(execute=True):
        leave(alice, seat.call)
    ended = [f for f in listening.frames() if f["type"].startswith("call.")]
    assert [f["type"] for f in ended] == ["call.ended"]
    assert ended[0]["participants"] == [] and "hidden" in ended[0]["html"]


# Signaling payloads ---------------------------------------------------------------------------


def test_signal_data_passes_descriptions_and_candidates_only():
    offer = {"description": {"type": "offer", "sdp": "v=0\r\n", "extra": "dropped"}}
    assert calls.check_signal_data(offer) == {"description": {"type": "offer", "sdp": "v=0\r\n"}}
    candidate = {"candidate": {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host"}}
    assert calls.check_signal_data(candidate)["candidate"]["sdpMid"] is None
    assert calls.check_signal_data({"candidate": None}) == {"candidate": None}


@pytest.mark.parametrize(
    "data",
    [
        None,
        "offer",
        [],
        {},
        {"description": {"type": "offer", "sdp": "x"}, "candidate": None},
        {"description": {"type": "pranswer", "sdp": "x"}},
        {"description": {"type": "offer", "sdp": 5}},
        {"description": {"type": "offer", "sdp": "x" * 70_000}},
        {"candidate": "candidate:1"},
        {"candidate": {"candidate": 1}},
        {"candidate": {"candidate": "c", "sdpMLineIndex": "0"}},
        {"candidate": {"candidate": "c", "sdpMLineIndex": True}},
        {"script": "<script>"},
    ],
)
def test_malformed_signal_data_is_refused(data):
    with pytest.raises(ValidationError):
        calls.check_signal_data(data)


# Recordings -----------------------------------------------------------------------------------

WEBM_HEAD = bytes.fromhex("1a45dfa3") + b"\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm"


def finished_upload(user, room, head: bytes = WEBM_HEAD, name="Call recording.webm"):
    upload = do_create_upload(user, room=room, name=name, size=len(head))
    client = client_for(user)
    response = client.put(
        f"/uploads/{upload.pk}/chunks/0/", head, content_type="application/octet-stream"
    )
    assert response.status_code in (200, 201, 204), response.content
    response = client.post(f"/uploads/{upload.pk}/finish/")
    assert response.status_code == 200, response.content
    return Attachment.objects.get(pk=response.json()["attachment"])


def test_participant_posts_the_recording_as_a_video_file(room, alice, bob, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    call = start(alice, room).call
    attachment = finished_upload(alice, room)
    assert attachment.content_type == "video/webm"
    response = client_for(alice).post(
        f"/calls/{call.pk}/recordings/", {"attachment": attachment.pk, "seconds": 192}
    )
    assert response.status_code == 201, response.content
    message = Message.objects.get(attachments=attachment)
    assert message.kind == MessageKind.SYSTEM
    assert message.body == "Alice Adams recorded the call · 3:12"
    assert f'data-file="{attachment.pk}"' in response.content.decode()


def test_recording_is_refused_from_someone_never_in_the_call(room, alice, bob, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    call = start(alice, room).call
    attachment = finished_upload(bob, room)
    response = client_for(bob).post(
        f"/calls/{call.pk}/recordings/", {"attachment": attachment.pk, "seconds": 3}
    )
    assert response.status_code == 403
    assert "was in the call" in response.content.decode()
    assert Attachment.objects.get(pk=attachment.pk).message is None


def test_recording_must_be_your_own_unsent_webm(room, alice, bob, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    call = start(alice, room).call
    join(bob, call)
    bobs = finished_upload(bob, room)
    png = finished_upload(alice, room, head=b"\x89PNG\r\n\x1a\n" + b"\0" * 32, name="x.png")
    alice_client = client_for(alice)
    url = f"/calls/{call.pk}/recordings/"
    refused = alice_client.post(url, {"attachment": bobs.pk, "seconds": 3})
    assert refused.status_code == 400 and "not ready to send" in refused.content.decode()
    refused = alice_client.post(url, {"attachment": png.pk, "seconds": 3})
    assert refused.status_code == 400 and "WebM" in refused.content.decode()
    for bad in ({"attachment": "x", "seconds": 3}, {"attachment": png.pk, "seconds": -1}, {}):
        response = alice_client.post(url, bad)
        assert response.status_code == 400 and response.content
    assert not Message.objects.filter(attachments__isnull=False).exists()


# URLs -----------------------------------------------------------------------------------------


def test_every_call_url_is_404_for_an_outsider(room, alice, mallory):
    call = start(alice, room).call
    outsider = client_for(mallory)
    assert outsider.get(f"/rooms/{room.pk}/call/").status_code == 404
    assert outsider.post(f"/calls/{call.pk}/end/").status_code == 404
    assert outsider.post(f"/calls/{call.pk}/recordings/", {"attachment": 1}).status_code == 404
    assert outsider.get(f"/rooms/{room.pk}/").status_code == 404
    assert client_for(alice).post("/calls/999999/end/").status_code == 404
    assert Call.objects.get(pk=call.pk).is_live


def test_banner_url_and_page_show_the_live_call(room, alice, bob):
    bob_client = client_for(bob)
    assert 'id="call-banner"' in bob_client.get(f"/rooms/{room.pk}/call/").content.decode()
    assert "hidden" in bob_client.get(f"/rooms/{room.pk}/call/").content.decode()
    call = start(alice, room).call
    page = bob_client.get(f"/rooms/{room.pk}/").content.decode()
    assert f'data-call-join="{call.pk}"' in page
    assert "Video call in progress" in page
    assert 'aria-label="Start call"' in page
    assert 'id="call-ice-servers"' in page


def test_end_url_for_the_starter_and_refused_for_a_member(room, alice, bob):
    call = start(alice, room).call
    join(bob, call)
    refused = client_for(bob).post(f"/calls/{call.pk}/end/")
    assert refused.status_code == 403 and "started the call" in refused.content.decode()
    assert client_for(alice).post(f"/calls/{call.pk}/end/").status_code == 204
    assert not Call.objects.get(pk=call.pk).is_live


def test_ice_servers_setting_is_checked():
    from django.core.exceptions import ImproperlyConfigured

    from messages_site.settings import parse_ice_servers

    servers = '[{"urls": ["stun:stun.example.org:3478"]}, {"urls": "turn:t.example.org", "username": "u", "credential": "c"}]'  # noqa: E501
    assert len(parse_ice_servers(servers)) == 2
    assert parse_ice_servers("[]") == []
    for bad in ("nope", "{}", '[{"urls": "http://x"}]', '[{"url": "stun:x"}]', '["stun:x"]'):
        with pytest.raises(ImproperlyConfigured):
            parse_ice_servers(bad)
