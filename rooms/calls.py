"""Voice and video calls in a room: every write (start, join, leave, end, state, recording) and
the reads that the websocket and the pages need.

Browsers send each other their media directly, a mesh of WebRTC peer connections of at most
MAX_PARTICIPANTS people. Parley keeps who sits in which call, and relays signaling only from
one seat to another seat of the same call. A seat belongs to the one websocket that joined:
when that socket closes, the seat is given up, and the last seat given up ends the call.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from notifications import dispatch as notifications_dispatch

from . import events, presence
from .actions import _check_attachments, _post, check_writable
from .models import Call, CallKind, CallParticipant, Membership, MessageKind, Role, Room
from .queries import access_membership

MAX_PARTICIPANTS = 6
MAX_RECORDING_SECONDS = 24 * 3600
RECORDING_TYPE = "video/webm"
# Signaling payloads: an SDP description of a 6-way call stays well under this.
MAX_SDP_CHARS = 60_000
MAX_CANDIDATE_CHARS = 2_000


# Reads ----------------------------------------------------------------------------------------


def live_call(room: Room) -> Call | None:
    return Call.objects.filter(room=room, ended_at__isnull=True).first()


def access_call(user: User, call_id: int) -> tuple[Call, Membership]:
    """A call of a room the user is in (ended or not); Http404 for anyone else."""
    call = Call.objects.filter(pk=call_id).first()
    if call is None:
        raise Http404("No such call.")
    membership = access_membership(user, call.room_id)
    call.room = membership.room
    return call, membership


def seats(call: Call) -> list[CallParticipant]:
    return list(
        CallParticipant.objects.filter(call=call, left_at__isnull=True).select_related("user")
    )


def peers(call: Call) -> list[events.CallPeer]:
    return [
        {
            "peer": seat.peer_id,
            "user": seat.user_id,
            "name": seat.user.name,
            "muted": seat.muted,
            "camera": seat.camera,
            "screen": seat.sharing_screen,
            "recording": seat.recording,
        }
        for seat in seats(call)
    ]


def banner_html(room: Room, call: Call | None, participants: list[events.CallPeer]) -> str:
    return render_to_string(
        "rooms/call.html#banner",
        {
            "room": room,
            "call": call,
            "participants": participants,
            "limit": MAX_PARTICIPANTS,
            "recording": any(p["recording"] for p in participants),
        },
    )


def welcome(seat: CallParticipant) -> events.CallWelcomeFrame:
    call = seat.call
    return {
        "type": "call.welcome",
        "room": call.room_id,
        "call": call.pk,
        "kind": call.kind,
        "peer": seat.peer_id,
        "started_by": call.started_by_id,
        "participants": peers(call),
    }


def signal_route(user_id: int, channel_name: str, call_id: int, to: str) -> tuple[int, str, str]:
    """(room id, sender's peer id, target's channel) for signaling from this socket's seat to
    seat `to` of the same live call; ValidationError unless both sit in it now."""
    rows = CallParticipant.objects.filter(
        call_id=call_id, call__ended_at__isnull=True, left_at__isnull=True
    ).values_list("call__room_id", "peer_id", "user_id", "channel_name")
    sender = target = None
    for room_id, peer_id, seat_user, seat_channel in rows:
        if seat_user == user_id and seat_channel == channel_name:
            sender = (room_id, peer_id)
        if peer_id == to:
            target = seat_channel
    if sender is None:
        raise ValidationError("You are not in that call.")
    if target is None or target == channel_name:
        raise ValidationError("That person is not in this call.")
    return sender[0], sender[1], target


def check_signal_data(data: object) -> dict:
    """The signaling payload cleaned to what RTCPeerConnection takes: a description or a
    candidate, nothing else passes to the other browser."""
    if not isinstance(data, dict) or len(data) != 1:
        raise ValidationError("call.signal data is {description} or {candidate}.")
    if "description" in data:
        description = data["description"]
        if (
            not isinstance(description, dict)
            or description.get("type") not in ("offer", "answer", "rollback")
            or not isinstance(description.get("sdp", ""), str)
            or len(description.get("sdp", "")) > MAX_SDP_CHARS
        ):
            raise ValidationError("call.signal description needs type offer/answer and an sdp.")
        return {"description": {"type": description["type"], "sdp": description.get("sdp", "")}}
    if "candidate" in data:
        candidate = data["candidate"]
        if candidate is None:
            return {"candidate": None}  # the end of the candidates
        if not isinstance(candidate, dict) or not isinstance(candidate.get("candidate"), str):
            raise ValidationError("call.signal candidate needs a candidate string.")
        clean = {
            "candidate": candidate["candidate"],
            "sdpMid": candidate.get("sdpMid"),
            "sdpMLineIndex": candidate.get("sdpMLineIndex"),
            "usernameFragment": candidate.get("usernameFragment"),
        }
        if (
            len(clean["candidate"]) > MAX_CANDIDATE_CHARS
            or not isinstance(clean["sdpMid"], str | None)
            or not isinstance(clean["usernameFragment"], str | None)
            or not (
                clean["sdpMLineIndex"] is None
                or (type(clean["sdpMLineIndex"]) is int and 0 <= clean["sdpMLineIndex"] < 1000)
            )
        ):
            raise ValidationError("call.signal candidate is not an ICE candidate.")
        return {"candidate": clean}
    raise ValidationError("call.signal data is {description} or {candidate}.")


# Texts of the system messages -----------------------------------------------------------------

_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def plain(name: str) -> str:
    """A person's name as literal text in a Markdown message (no accidental formatting)."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", name)


def call_length(length: timedelta) -> str:
    seconds = max(0, int(length.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def recording_length(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def ended_text(call: Call) -> str:
    joined: dict[int, str] = {}
    for seat in CallParticipant.objects.filter(call=call).select_related("user"):
        joined.setdefault(seat.user_id, seat.user.name)
    length = call_length(call.ended_at - call.started_at)
    return f"Call ended · {length} · with {', '.join(plain(n) for n in joined.values())}"


# Writes ---------------------------------------------------------------------------------------


def _publish(call: Call, kind: str, *, peer: str = "") -> None:
    participants = peers(call) if call.ended_at is None else []
    event: events.CallEvent = {
        "type": kind,  # type: ignore[typeddict-item]
        "room": call.room_id,
        "call": call.pk,
        "kind": call.kind,
        "peer": peer,
        "participants": participants,
        "html": banner_html(call.room, call if call.ended_at is None else None, participants),
        "ts": events.now_ts(),
    }
    events.publish_on_commit(event, room_id=call.room_id)


def _orphaned(call: Call) -> list[CallParticipant]:
    """Seats whose socket stopped reporting in (its process rewrites presence every minute; gone
    after TAB_TTL): its server process died without closing it. None while presence is unknown
    (no Redis)."""
    taken = seats(call)
    tabs = presence.live_tabs([seat.user_id for seat in taken])
    if tabs is None:
        return []
    return [seat for seat in taken if seat.channel_name not in tabs[seat.user_id]]


def _free_orphaned(call: Call) -> int:
    orphaned = _orphaned(call)
    for seat in orphaned:
        _give_up(seat)
    call.refresh_from_db(fields=["ended_at"])
    return len(orphaned)


def do_free_orphaned_seats() -> int:
    """Free the seats of dead sockets in every live call, ending calls left empty (a schedule
    runs it every minute, so a banner does not promise a call nobody is in)."""
    freed = 0
    for call in Call.objects.filter(ended_at__isnull=True).select_related("room"):
        with transaction.atomic():
            locked = Call.objects.select_for_update().select_related("room").get(pk=call.pk)
            if locked.ended_at is None:
                freed += _free_orphaned(locked)
    return freed


def _seat(user: User, call: Call, channel_name: str) -> CallParticipant:
    """Give the user a seat in `call` held by this socket. Joining again (from another tab)
    moves their seat there: that tab sees its seat gone."""
    call = Call.objects.select_for_update().select_related("room").get(pk=call.pk)
    _free_orphaned(call)
    if call.ended_at is not None:
        raise ValidationError("This call has ended.")
    now = timezone.now()
    moved = CallParticipant.objects.filter(call=call, user=user, left_at__isnull=True).update(
        left_at=now
    )
    if not moved:
        seated = CallParticipant.objects.filter(call=call, left_at__isnull=True).count()
        if seated >= MAX_PARTICIPANTS:
            raise ValidationError(
                f"This call is full: at most {MAX_PARTICIPANTS} people can be in a call."
            )
    return CallParticipant.objects.create(
        call=call,
        user=user,
        peer_id=secrets.token_urlsafe(12),
        channel_name=channel_name,
        joined_at=now,
        camera=call.kind == CallKind.VIDEO,
    )


@transaction.atomic
def do_start_call(user: User, *, room_id: int, kind: str, channel_name: str) -> CallParticipant:
    """Start a call in the room and seat its starter; with a call already on, join that one."""
    room = access_membership(user, room_id).room
    check_writable(room)
    if kind not in CallKind.values:
        raise ValidationError("A call is a voice call or a video call.")
    existing = live_call(room)
    if existing is not None:
        _free_orphaned(existing)  # a call whose every seat is orphaned ends here
        existing = live_call(room)
    if existing is not None:
        return do_join_call(user, call_id=existing.pk, channel_name=channel_name)
    try:
        with transaction.atomic():
            call = Call.objects.create(
                room=room, kind=kind, started_by=user, started_at=timezone.now()
            )
    except IntegrityError:
        # Someone else started one a moment ago: join theirs.
        existing = Call.objects.get(room=room, ended_at__isnull=True)
        return do_join_call(user, call_id=existing.pk, channel_name=channel_name)
    message = _post(
        user,
        room,
        f"{plain(user.name)} started a {CallKind(kind).label.lower()} call",
        kind=MessageKind.SYSTEM,
    )
    # The start notifies like a message does: email per each member's settings, desktop.
    transaction.on_commit(partial(notifications_dispatch.message_sent, message.room_id))
    seat = _seat(user, call, channel_name)
    _publish(seat.call, "call.started", peer=seat.peer_id)
    return seat


@transaction.atomic
def do_join_call(user: User, *, call_id: int, channel_name: str) -> CallParticipant:
    call, membership = access_call(user, call_id)
    check_writable(membership.room)
    seat = _seat(user, call, channel_name)
    _publish(seat.call, "call.join", peer=seat.peer_id)
    return seat


def _give_up(seat: CallParticipant) -> None:
    """Empty the seat; the last one emptied ends the call."""
    call = Call.objects.select_for_update().select_related("room").get(pk=seat.call_id)
    updated = CallParticipant.objects.filter(pk=seat.pk, left_at__isnull=True).update(
        left_at=timezone.now(), recording=False
    )
    if not updated or call.ended_at is not None:
        return
    if CallParticipant.objects.filter(call=call, left_at__isnull=True).exists():
        _publish(call, "call.leave", peer=seat.peer_id)
    else:
        _finish(call)


def _finish(call: Call) -> None:
    call.ended_at = timezone.now()
    call.save(update_fields=["ended_at"])
    _post(call.started_by, call.room, ended_text(call), kind=MessageKind.SYSTEM)
    _publish(call, "call.ended")


@transaction.atomic
def do_leave_call(user: User, *, call_id: int, channel_name: str) -> None:
    seat = CallParticipant.objects.filter(
        call_id=call_id, user=user, channel_name=channel_name, left_at__isnull=True
    ).first()
    if seat is None:
        raise ValidationError("You are not in that call.")
    _give_up(seat)


def do_leave_calls_of_socket(channel_name: str) -> int:
    """Give up every seat a socket held (it closed): a call never waits for a gone browser."""
    left = 0
    for seat in CallParticipant.objects.filter(channel_name=channel_name, left_at__isnull=True):
        with transaction.atomic():
            _give_up(seat)
        left += 1
    return left


@transaction.atomic
def do_leave_calls_of_member(user: User, *, room: Room) -> None:
    """Someone left or was removed from the room: their seat in its call goes too."""
    for seat in CallParticipant.objects.filter(
        call__room=room, user=user, left_at__isnull=True
    ).select_for_update():
        _give_up(seat)


@transaction.atomic
def do_end_call(user: User, *, call_id: int) -> Call:
    """End the call for everyone: its starter or a room admin may."""
    call, membership = access_call(user, call_id)
    if call.started_by_id != user.pk and membership.role < Role.ADMIN:
        raise PermissionDenied(
            "Only the person who started the call, or a room admin, can end it for everyone."
        )
    call = Call.objects.select_for_update().select_related("room").get(pk=call.pk)
    if call.ended_at is not None:
        return call
    CallParticipant.objects.filter(call=call, left_at__isnull=True).update(
        left_at=timezone.now(), recording=False
    )
    _finish(call)
    return call


@transaction.atomic
def do_set_call_state(
    user: User,
    *,
    call_id: int,
    channel_name: str,
    muted: bool,
    camera: bool,
    screen: bool,
    recording: bool,
) -> None:
    """What the other seats show of this one: muted, camera off, sharing, recording."""
    seat = (
        CallParticipant.objects.select_for_update()
        .select_related("call__room")
        .filter(call_id=call_id, user=user, channel_name=channel_name, left_at__isnull=True)
        .first()
    )
    if seat is None:
        raise ValidationError("You are not in that call.")
    changed = (seat.muted, seat.camera, seat.sharing_screen, seat.recording) != (
        muted,
        camera,
        screen,
        recording,
    )
    if not changed:
        return
    seat.muted, seat.camera, seat.sharing_screen, seat.recording = muted, camera, screen, recording
    seat.save(update_fields=["muted", "camera", "sharing_screen", "recording"])
    _publish(seat.call, "call.state", peer=seat.peer_id)


@transaction.atomic
def do_post_recording(user: User, *, call_id: int, attachment_id: int, seconds: int):
    """Post a call's recording (an upload of the user's, finished, not sent yet) in its room
    with the line "Alice recorded the call · 3:12". Only someone who was in the call may."""
    call, membership = access_call(user, call_id)
    room = membership.room
    check_writable(room)
    if not CallParticipant.objects.filter(call=call, user=user).exists():
        raise PermissionDenied("Only someone who was in the call can post its recording.")
    if not 0 <= seconds <= MAX_RECORDING_SECONDS:
        raise ValidationError("A recording lasts between 0 seconds and 24 hours.")
    (attachment,) = _check_attachments(user, room, [attachment_id])
    if attachment.content_type != RECORDING_TYPE:
        raise ValidationError(
            f"A call recording is a WebM video; {attachment.name} is {attachment.content_type}."
        )
    body = f"{plain(user.name)} recorded the call · {recording_length(seconds)}"
    return _post(user, room, body, kind=MessageKind.SYSTEM, attachments=[attachment])
