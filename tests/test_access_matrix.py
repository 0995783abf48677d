"""The access matrix: every URL and websocket route, tried by every kind of person on every object.

The routes come from the URL resolver (and `rooms.routing`), never from a list kept by hand, so a
view added later without an entry in ROUTES fails `test_every_route_has_an_entry` and its own
cells, naming it. Django admin is left to Django except for one check of the report queue.

People (the actors):
    anonymous   not logged in
    outsider    mallory: in no room with the others (she shares "Secret" with dave only)
    member      bob, a Member of the group room "Design" (and the sender of its message)
    admin       carol, an Admin of Design
    owner       alice, the Owner of Design
    blocked     erin: a member of Design, in a direct room with alice, blocked by alice
    suspended   sue: a member of Design, logged in, then suspended (is_active=False)
    staff       sam: staff, may review reports in the admin, in no room

Objects, each in three places: the group room Design ("design"), a room the actor is usually
not in ("secret": dave owns it, mallory is a Member) and alice's direct room with erin ("direct",
where erin is the blocked party). Each place has a room, a message, a note, a shared file, an
unfinished upload and a person (pat / dave / alice); Design and Secret have a report. Every
object's text carries a marker (zqDesignMsg, zqSecretNote, ...) that must never reach someone
who may not see it, in any response, whatever its status.

An expectation is looked up by the actor's relation to the object, most specific first:
"author" (they wrote the message or note, shared the file, started the upload) or "self" (the
person is them, or the route's token is theirs: alice's); then their relation to the room
("owner" → "admin" → "member", "blocked", "staff" → "outsider") or to the person
("blocked_by" → "knows" or "stranger" → "person");
"suspended" → "anon"; finally "*". A key may end in "@<place>" to hold for that place only.

Where access is refused (anything but 2xx or a redirect that is not to the login page) the
database must be unchanged: every row of every Parley table is hashed before and after.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.contrib.auth.tokens import default_token_generator
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from PIL import Image, PngImagePlugin

from accounts import email_change
from accounts.models import User
from conftest import PASSWORD, befriend, client_for, make_person
from moderation.actions import do_block_user, do_report_message, do_suspend_user
from moderation.models import Reason, Report
from moderation.queries import has_blocked
from notifications.emails import unsubscribe_token
from rooms import actions
from rooms.actions import (
    do_add_library_gif,
    do_create_room,
    do_open_direct,
    do_save_note,
    do_send_message,
    do_set_role,
)
from rooms.calls import do_start_call
from rooms.management.commands.seed_demo import animated_gif
from rooms.models import Membership, Message, Note, Role, Room, RoomKind
from rooms.queries import in_address_book

LOGIN = "login"  # a redirect to the login page: the request was not let in
ACTORS = ["anonymous", "outsider", "member", "admin", "owner", "blocked", "suspended", "staff"]
PLACES = ["design", "secret", "direct"]
# Apps whose tables must not change when access is refused (sessions may: a login is no write).
CHECKED_APPS = ["accounts", "rooms", "moderation", "notifications"]

# Which actor may see which marker. Whoever is not listed must never get it in a response.
VISIBLE_TO = {
    "zqDesignRoom": {"owner", "admin", "member", "blocked"},
    "zqDesignMsg": {"owner", "admin", "member", "blocked"},
    "zqDesignFile": {"owner", "admin", "member", "blocked"},
    "zqDesignNote": {"owner"},
    "zqDesignUpload": {"owner"},
    "zqDesignReport": set(),
    "zqSecretRoom": {"outsider"},
    "zqSecretMsg": {"outsider"},
    "zqSecretFile": {"outsider"},
    "zqSecretNote": {"outsider"},
    "zqSecretUpload": {"outsider"},
    "zqSecretReport": set(),
    # Sent by alice after she blocked erin: erin must not see them.
    "zqDirectMsg": {"owner"},
    "zqDirectFile": {"owner"},
    "zqDirectNote": {"owner"},
    "zqDirectUpload": {"owner"},
}


# The expectations --------------------------------------------------------------------------


Data = dict | bytes | Callable[["Dataset", str, str], dict | bytes] | None


@dataclass(frozen=True)
class Call:
    """One method on a route: the expected status per relation, and what to send."""

    expect: dict[str, int | str]
    data: Data = None
    # GET only: more query strings to try with the same expectations.
    more: tuple[dict, ...] = ()


def anyone(ok: int | str, **more: int | str) -> dict[str, int | str]:
    """Any signed-in person; the anonymous and the suspended are sent to log in."""
    return {"anon": LOGIN, "*": ok, **more}


def members(ok: int | str, **more: int | str) -> dict[str, int | str]:
    """The room's members. Others are told it does not exist; the blocked party is refused."""
    return {"anon": LOGIN, "outsider": 404, "blocked": 403, "member": ok, **more}


def only_author(ok: int | str) -> dict[str, int | str]:
    """Private to the one who made it: for everyone else it does not exist."""
    return {"anon": LOGIN, "*": 404, "author": ok}


NOT_ALLOWED = anyone(405)  # a method the view does not take, refused after the login check


def own_login(ds: Dataset, actor: str, place: str) -> dict:
    user = ds.users.get(actor)
    return {"username": user.username if user else "nobody", "password": PASSWORD}


def up_to(ds: Dataset, actor: str, place: str) -> dict:
    return {"up_to": ds.objects[place].message}


def note_version(ds: Dataset, actor: str, place: str) -> dict:
    user = ds.users.get(actor)
    note = Note.objects.filter(room_id=ds.objects[place].room, user=user).first()
    return {"body": "scribble", "version": note.version if note else 0}


def gif_choice(ds: Dataset, actor: str, place: str) -> dict:
    return {"q": "cat", "gif": str(ds.gif)}


def chunk(ds: Dataset, actor: str, place: str) -> bytes:
    return ds.upload_bytes


def recording(ds: Dataset, actor: str, place: str) -> dict:
    # The place's file was sent already: a participant hears 400, never a post.
    return {"attachment": ds.objects[place].file, "seconds": "3"}


PUT = "PUT"
DELETE = "DELETE"

ROUTES: dict[str, dict[str, Call]] = {
    # accounts
    "login": {
        "GET": Call({"anon": 200, "*": 302}),
        # The form comes back (200): a suspended person's right password does not let them in.
        "POST": Call({"anon": 200, "*": 302}, own_login),
    },
    "logout": {"GET": Call({"*": 405}), "POST": Call({"*": LOGIN})},
    # Someone signed in is taken home (302) and no account is made; only the anonymous sign up.
    "signup": {
        "GET": Call({"anon": 200, "*": 302}),
        "POST": Call(
            {"*": 302},
            {
                "username": "newcomer",
                "password1": "a-long-pass-phrase",
                "password2": "a-long-pass-phrase",
            },
        ),
    },
    # A new email without the password: refused, and nothing changes.
    "profile": {
        "GET": Call(anyone(200)),
        "POST": Call(anyone(400), {"display_name": "zqNewName", "email": "new@example.com"}),
    },
    # A wrong old password: refused, and nothing changes.
    "password_change": {
        "GET": Call(anyone(200)),
        "POST": Call(
            anyone(400),
            {"old_password": "wrong", "new_password1": "x-9-y-8", "new_password2": "x-9-y-8"},
        ),
    },
    # A link confirming a new email address, made for alice (self): she sees it and her POST
    # makes it her address; anyone else signed in is told it is another account's (400), and
    # a forged one does not work.
    "email_confirm": {
        "GET": Call({"anon": LOGIN, "self@valid": 200, "*": 400}),
        "POST": Call({"anon": LOGIN, "self@valid": 302, "*": 400}),
    },
    "password_reset": {
        "GET": Call({"*": 200}),
        "POST": Call({"*": 302}, {"email": "nobody@example.com"}),
    },
    "password_reset_sent": {"GET": Call({"*": 200}), "POST": Call({"*": 405})},
    # A valid link is kept in the session and redirects to the form (alice's, for anyone: the
    # link is the credential); a forged one shows "This link no longer works".
    "password_reset_confirm": {
        "GET": Call({"*@valid": 302, "*@forged": 200}),
        "POST": Call({"*@valid": 302, "*@forged": 200}),
    },
    "password_reset_done": {"GET": Call({"*": 200}), "POST": Call({"*": 405})},
    "contacts": {"GET": Call(anyone(200)), "POST": Call(anyone(302), {"person": "pat"})},
    "preferences": {"GET": Call(NOT_ALLOWED), "POST": Call(anyone(204), {"enter_sends": "false"})},
    "contact_remove": {"GET": Call(NOT_ALLOWED), "POST": Call(anyone(302))},
    # notifications
    "notification_settings": {
        "GET": Call(anyone(200)),
        "POST": Call(anyone(302), {"frequency": "daily", "scope": "all"}),
    },
    "notifications_off": {"GET": Call(NOT_ALLOWED), "POST": Call(anyone(302), {"on": "1"})},
    "room_mute": {"GET": Call(NOT_ALLOWED), "POST": Call(members(302), {"on": "1"})},
    "desktop_settings": {"GET": Call(anyone(200)), "POST": Call(NOT_ALLOWED)},
    "out_of_office": {
        "GET": Call(anyone(200)),
        "POST": Call(
            anyone(302),
            {"enabled": "on", "message": "Away", "start": "2030-01-01", "end": "2030-01-02"},
        ),
    },
    # The signed token is the credential, with or without a session.
    "unsubscribe": {
        "GET": Call({"*": 200, "*@forged": 400}),
        "POST": Call({"*": 200, "*@forged": 400}),
    },
    # moderation
    "report_message": {
        "GET": Call(members(200)),
        "POST": Call(members(200, author=400), {"reason": Reason.ABUSE}),
    },
    "block": {"GET": Call(NOT_ALLOWED), "POST": Call({"anon": LOGIN, "person": 302, "self": 400})},
    "unblock": {"GET": Call(NOT_ALLOWED), "POST": Call(anyone(302))},
    "blocked_people": {"GET": Call(anyone(200)), "POST": Call(NOT_ALLOWED)},
    "warnings_seen": {"GET": Call(NOT_ALLOWED), "POST": Call(anyone(204))},
    # rooms
    "home": {"GET": Call(anyone(302, staff=200)), "POST": Call(NOT_ALLOWED)},
    "room_new": {
        "GET": Call(anyone(200)),
        "POST": Call(anyone(302), {"kind": RoomKind.GROUP, "title": "Fresh"}),
    },
    "room": {"GET": Call(members(200)), "POST": Call(NOT_ALLOWED)},
    "room_messages": {
        "GET": Call(members(200), more=({"after": "1"},)),
        "POST": Call(members(201), {"body": "hello there"}),
    },
    "room_read": {"GET": Call(NOT_ALLOWED), "POST": Call(members(204), up_to)},
    "room_members": {"GET": Call(members(200)), "POST": Call(NOT_ALLOWED)},
    "member_invite": {
        "GET": Call(NOT_ALLOWED),
        "POST": Call(members(403, admin=200, **{"owner@direct": 400}), {"person": "quinn"}),
    },
    "member_remove": {
        "GET": Call(NOT_ALLOWED),
        # Removing yourself is leaving.
        "POST": Call(members(403, admin=200, self=302)),
    },
    "member_role": {
        "GET": Call(NOT_ALLOWED),
        "POST": Call(members(403, owner=200, self=400), {"role": str(Role.ADMIN)}),
    },
    "room_leave": {"GET": Call(NOT_ALLOWED), "POST": Call(members(302))},
    "room_rename": {
        "GET": Call(NOT_ALLOWED),
        "POST": Call(members(403, owner=302, **{"owner@direct": 400}), {"title": "Renamed"}),
    },
    "room_favorite": {"GET": Call(NOT_ALLOWED), "POST": Call(members(200), {"on": "1"})},
    "room_hide": {"GET": Call(NOT_ALLOWED), "POST": Call(members(302), {"on": "1"})},
    "room_archive": {
        "GET": Call(NOT_ALLOWED),
        "POST": Call(members(403, admin=302, **{"owner@direct": 400}), {"on": "1"}),
    },
    "hidden_rooms": {"GET": Call(anyone(200)), "POST": Call(NOT_ALLOWED)},
    "room_list": {"GET": Call(anyone(200)), "POST": Call(NOT_ALLOWED)},
    "notepad": {"GET": Call(members(200)), "POST": Call(members(200), note_version)},
    "note_show": {"GET": Call(only_author(200)), "POST": Call(NOT_ALLOWED)},
    "emoji": {"GET": Call(anyone(200)), "POST": Call(NOT_ALLOWED)},
    "room_giphy": {
        "GET": Call(members(200), {"q": "cat"}),
        "POST": Call(members(201), gif_choice),
    },
    "gif_file": {"GET": Call(anyone(200, **{"*@missing": 404})), "POST": Call(NOT_ALLOWED)},
    "message_unread": {"GET": Call(NOT_ALLOWED), "POST": Call(members(204))},
    "message_react": {"GET": Call(NOT_ALLOWED), "POST": Call(members(200), {"emoji": "👍"})},
    "message_show": {"GET": Call(members(200)), "POST": Call(NOT_ALLOWED)},
    "message_edit": {
        # The edit box of someone else's message shows nothing a member cannot already read.
        "GET": Call(members(200)),
        "POST": Call(members(403, author=200), {"body": "edited text"}),
    },
    "message_delete": {"GET": Call(NOT_ALLOWED), "POST": Call(members(403, author=200))},
    "direct_open": {
        "GET": Call(NOT_ALLOWED),
        "POST": Call({"anon": LOGIN, "knows": 302, "stranger": 400, "self": 400}),
    },
    "search": {
        "GET": Call(anyone(200), {"q": "pineapple"}, more=({"q": "Orchard", "scope": "people"},)),
        "POST": Call(NOT_ALLOWED),
    },
    "upload_create": {
        "GET": Call(NOT_ALLOWED),
        "POST": Call(members(201), {"name": "plan.txt", "size": "4", "type": "text/plain"}),
    },
    "upload_detail": {
        "GET": Call(only_author(200)),
        "POST": Call(NOT_ALLOWED),
        DELETE: Call(only_author(204)),
    },
    "upload_chunk": {
        "GET": Call(NOT_ALLOWED),
        "POST": Call(NOT_ALLOWED),
        PUT: Call(only_author(200), chunk),
    },
    "upload_finish": {"GET": Call(NOT_ALLOWED), "POST": Call(only_author(200))},
    "room_files": {"GET": Call(members(200)), "POST": Call(NOT_ALLOWED)},
    "room_file_list": {"GET": Call(members(200), {"q": "zq"}), "POST": Call(NOT_ALLOWED)},
    "room_link_list": {"GET": Call(members(200)), "POST": Call(NOT_ALLOWED)},
    "file_preview": {"GET": Call(members(200)), "POST": Call(NOT_ALLOWED)},
    "file_download": {"GET": Call(members(200)), "POST": Call(NOT_ALLOWED)},
    "file_view": {"GET": Call(members(200)), "POST": Call(NOT_ALLOWED)},
    "file_thumbnail": {"GET": Call(members(200)), "POST": Call(NOT_ALLOWED)},
    "file_delete": {"GET": Call(NOT_ALLOWED), "POST": Call(members(403, admin=200, author=200))},
    # calls: the place's call was started by its "call" author, the only one in it
    "call_banner": {"GET": Call(members(200)), "POST": Call(NOT_ALLOWED)},
    "call_end": {"GET": Call(NOT_ALLOWED), "POST": Call(members(403, admin=204, author=204))},
    "call_recording": {
        "GET": Call(NOT_ALLOWED),
        "POST": Call(members(403, author=400), recording),
    },
}

# Cells where the code is wrong today: (route, actor, place, method) → what is wrong. Each must
# still fail (strict): once fixed, the test says so and the entry goes.
BLOCKED_DIRECT_READ = (
    "rooms.queries.access_message does not apply the direct-room block "
    "(access_membership does): the blocked person still reads messages the blocker sends them"
)
KNOWN_BUGS: dict[tuple[str, str, str, str], str] = {}

# Websocket routes: what a socket may do, per relation. Checked in test_websocket_access.
WS_ROUTES: dict[str, dict[str, int | str]] = {
    "ws/": {"anon": 4401, "*": "accepted"},
}


# The people and their objects --------------------------------------------------------------


@dataclass
class Place:
    room: int
    message: int
    note: int
    file: int
    upload: int
    person: str
    call: int = 0
    report: int | None = None
    # Who wrote each object, by actor name ("" when not an actor).
    authors: dict[str, str] = field(default_factory=dict)


@dataclass
class Dataset:
    users: dict[str, User]
    objects: dict[str, Place]
    gif: int
    token: str  # alice's unsubscribe token
    reset_uid: str  # alice's password reset link (its token is made as each request is)
    upload_bytes: bytes
    suspended_client: Client


def png_with_text(marker: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", marker)
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(out, "PNG", pnginfo=info)
    return out.getvalue()


def post_with_file(user: User, room: Room, marker: str) -> tuple[int, int]:
    """`user` sends "<marker>Msg" with a link and an image "<marker>File.png"; the ids of both."""
    data = png_with_text(f"{marker}File")
    upload = actions.do_create_upload(user, room=room, name=f"{marker}File.png", size=len(data))
    actions.do_store_chunk(user, upload=upload, index=0, source=io.BytesIO(data), length=len(data))
    attachment = actions.do_finish_upload(user, upload=upload)
    message = do_send_message(
        user,
        room=room,
        body=f"pineapple {marker}Msg https://example.com/{marker}",
        attachments=[attachment.pk],
    )
    actions.do_make_thumbnail(attachment.pk)
    return message.pk, attachment.pk


def start_call(user: User, room: Room) -> int:
    """A live video call with `user` in it alone."""
    seat = do_start_call(user, room_id=room.pk, kind="video", channel_name=f"matrix.{room.pk}")
    return seat.call_id


def start_upload(user: User, room: Room, marker: str, data: bytes) -> int:
    """An upload with its one chunk stored, not finished."""
    upload = actions.do_create_upload(user, room=room, name=f"{marker}.txt", size=len(data))
    actions.do_store_chunk(user, upload=upload, index=0, source=io.BytesIO(data), length=len(data))
    return upload.pk


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture
def ds(db, settings, media_dir) -> Dataset:
    return build_dataset(settings, media_dir)


def build_dataset(settings, media_dir: Path) -> Dataset:
    settings.MEDIA_ROOT = media_dir
    settings.GIPHY_API_KEY = ""
    people = {
        name: make_person(name, f"{name.title()} Person")
        for name in ("alice", "bob", "carol", "dave", "erin", "mallory", "pat", "quinn", "sue")
    }
    sam = User.objects.create_user(username="sam", password=PASSWORD, is_staff=True)
    sam.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_report", "change_report"])
    )
    alice, bob, carol, dave, erin, mallory = (
        people[n] for n in ("alice", "bob", "carol", "dave", "erin", "mallory")
    )
    pat, quinn, sue = people["pat"], people["quinn"], people["sue"]
    befriend(alice, bob, carol, erin, pat, quinn, sue)
    befriend(carol, quinn)
    befriend(dave, mallory)

    design = do_create_room(
        alice,
        kind=RoomKind.GROUP,
        title="Design Orchard zqDesignRoom",
        members=[bob, carol, erin, pat, sue],
    )
    do_set_role(alice, room=design, user=carol, role=Role.ADMIN)
    secret = do_create_room(
        dave, kind=RoomKind.GROUP, title="Secret Orchard zqSecretRoom", members=[mallory]
    )
    direct = do_open_direct(alice, other=erin)
    do_block_user(alice, blocked=erin)

    design_msg, design_file = post_with_file(bob, design, "zqDesign")
    secret_msg, secret_file = post_with_file(dave, secret, "zqSecret")
    direct_msg, direct_file = post_with_file(alice, direct, "zqDirect")
    data = b"four"
    objects = {
        "design": Place(
            room=design.pk,
            message=design_msg,
            note=do_save_note(alice, room=design, body="zqDesignNote", version=0).pk,
            file=design_file,
            upload=start_upload(alice, design, "zqDesignUpload", data),
            person="pat",
            call=start_call(bob, design),
            report=do_report_message(
                alice,
                message=Message.objects.get(pk=design_msg),
                reason=Reason.OTHER,
                description="zqDesignReport",
            ).pk,
            authors={
                "message": "member",
                "note": "owner",
                "file": "member",
                "upload": "owner",
                "call": "member",
            },
        ),
        "secret": Place(
            room=secret.pk,
            message=secret_msg,
            note=do_save_note(mallory, room=secret, body="zqSecretNote", version=0).pk,
            file=secret_file,
            upload=start_upload(mallory, secret, "zqSecretUpload", data),
            person="dave",
            call=start_call(dave, secret),
            report=do_report_message(
                mallory,
                message=Message.objects.get(pk=secret_msg),
                reason=Reason.OTHER,
                description="zqSecretReport",
            ).pk,
            authors={"message": "", "note": "outsider", "file": "", "upload": "outsider"},
        ),
        "direct": Place(
            room=direct.pk,
            message=direct_msg,
            note=do_save_note(alice, room=direct, body="zqDirectNote", version=0).pk,
            file=direct_file,
            upload=start_upload(alice, direct, "zqDirectUpload", data),
            person="alice",
            call=start_call(alice, direct),
            authors={
                "message": "owner",
                "note": "owner",
                "file": "owner",
                "upload": "owner",
                "call": "owner",
            },
        ),
    }
    gif = do_add_library_gif(title="Dancing cat", keywords="cat", data=animated_gif(["#0a0"]))
    suspended_client = client_for(sue)
    do_suspend_user(sam, user=sue)
    users = {
        "outsider": mallory,
        "member": bob,
        "admin": carol,
        "owner": alice,
        "blocked": erin,
        "suspended": sue,
        "staff": sam,
        **people,
    }
    return Dataset(
        users=users,
        objects=objects,
        gif=gif.pk,
        token=unsubscribe_token(alice),
        reset_uid=urlsafe_base64_encode(force_bytes(alice.pk)),
        upload_bytes=data,
        suspended_client=suspended_client,
    )


# Walking the routes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str  # as reverse() takes it, namespace included
    pattern: str
    params: tuple[str, ...]


def walk(patterns, prefix: str = "", namespace: str = "") -> list[Route]:
    found = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found += walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            route = prefix + str(entry.pattern)
            name = f"{namespace}{entry.name}" if entry.name else route
            params = entry.pattern.converters or entry.pattern.regex.groupindex
            found.append(Route(name, route, tuple(params)))
    return found


def is_ours(route: Route) -> bool:
    return not route.pattern.startswith(("admin/", "^admin/", "static/", "media/"))


ALL_ROUTES = [route for route in walk(get_resolver().url_patterns) if is_ours(route)]
ROUTE_NAMES = [route.name for route in ALL_ROUTES]

ROOM_PARAMS = {"room_id", "message_id", "note_id", "upload_id", "file_id", "call_id"}
# The object a route is about, for "author" and "self": the first of these among its params.
PRIMARY = [
    ("message_id", "message"),
    ("note_id", "note"),
    ("upload_id", "upload"),
    ("file_id", "file"),
    ("call_id", "call"),
    ("user_id", "person"),
    ("username", "person"),
]


def places_for(route: Route) -> list[str]:
    params = set(route.params)
    if params & (ROOM_PARAMS | {"user_id", "username"}):
        return PLACES
    if "gif_id" in params:
        return ["library", "missing"]
    if "token" in params:
        return ["valid", "forged"]
    return ["-"]


def reset_token(ds: Dataset) -> str:
    # A reset token lapses when its person signs in: made afresh from alice as she is now.
    return default_token_generator.make_token(User.objects.get(pk=ds.users["owner"].pk))


def token_for(route: Route, ds: Dataset) -> str:
    """Alice's token for the route: a reset link's, a new email address's or an unsubscribe."""
    if "uidb64" in route.params:
        return reset_token(ds)
    if route.name == "email_confirm":
        alice = User.objects.get(pk=ds.users["owner"].pk)
        return email_change.make_token(alice, "zq-new-address@example.com")
    return ds.token


def kwargs_for(route: Route, ds: Dataset, place: str) -> dict:
    kwargs = {}
    for param in route.params:
        if param == "gif_id":
            kwargs[param] = ds.gif if place == "library" else 999_999
        elif param == "token":
            token = token_for(route, ds)
            kwargs[param] = token if place == "valid" else token[:-4] + "AAAA"
        elif param == "uidb64":
            kwargs[param] = ds.reset_uid
        elif param == "index":
            kwargs[param] = 0
        else:
            obj = ds.objects[place]
            values = {
                "room_id": obj.room,
                "message_id": obj.message,
                "note_id": obj.note,
                "upload_id": obj.upload,
                "file_id": obj.file,
                "call_id": obj.call,
                "user_id": ds.users[obj.person].pk,
                "username": obj.person,
            }
            if param not in values:
                raise AssertionError(
                    f"Route {route.name!r} ({route.pattern}) takes {param!r}, which the access "
                    "matrix has no object for: add it to the dataset and kwargs_for()."
                )
            kwargs[param] = values[param]
    return kwargs


def relations(route: Route, ds: Dataset, actor: str, place: str) -> list[str]:
    """The keys to look the expectation up by, most specific first."""
    keys = []
    if actor == "anonymous":
        chain = ["anon"]
    elif actor == "suspended":
        chain = ["suspended", "anon"]
    else:
        user = ds.users[actor]
        chain = []
        primary = next((kind for param, kind in PRIMARY if param in route.params), None)
        if place in ds.objects and primary is not None:
            obj = ds.objects[place]
            if primary == "person":
                if obj.person == user.username:
                    chain.append("self")
            elif obj.authors.get(primary) == actor:
                chain.append("author")
        if place in ds.objects and set(route.params) & ROOM_PARAMS:
            chain += room_relation(user, ds.objects[place].room)
        elif place in ds.objects and set(route.params) & {"user_id", "username"}:
            person = ds.users[ds.objects[place].person]
            if person.pk != user.pk:
                if has_blocked(person.pk, user.pk):
                    chain.append("blocked_by")
                chain += ["knows"] if in_address_book(user, person) else ["stranger"]
                chain.append("person")
        elif place in ("valid", "forged") and user.pk == ds.users["owner"].pk:
            chain.append("self")  # the route's token is alice's
        elif actor == "staff":
            chain.append("staff")
    for key in chain:
        keys += [f"{key}@{place}", key]
    return [*keys, f"*@{place}", "*"]


def room_relation(user: User, room_id: int) -> list[str]:
    if user.is_staff:
        return ["staff", "outsider"]
    membership = Membership.objects.filter(room_id=room_id, user=user).first()
    if membership is None:
        return ["outsider"]
    if has_blocked_in_direct(user, membership.room):
        return ["blocked"]
    roles = {Role.OWNER: ["owner", "admin", "member"], Role.ADMIN: ["admin", "member"]}
    return roles.get(membership.role, ["member"])


def has_blocked_in_direct(user: User, room: Room) -> bool:
    if not room.is_direct:
        return False
    other = Membership.objects.filter(room=room).exclude(user=user).first()
    return other is not None and has_blocked(other.user_id, user.pk)


def expected(call: Call, keys: list[str]) -> int | str:
    for key in keys:
        if key in call.expect:
            return call.expect[key]
    raise AssertionError(f"no expectation for any of {keys}")


# Checking one request ----------------------------------------------------------------------


def snapshot() -> str:
    """A hash of every row of every Parley table (raw SQL: this runs twice per refusal)."""
    digest = hashlib.sha256()
    with connection.cursor() as cursor:
        for table in TABLES:
            table_name = connection.ops.quote_name(table)  # from the models, not from input
            cursor.execute(f"SELECT * FROM {table_name} ORDER BY 1")  # noqa: S608
            for row in cursor.fetchall():
                clean = [bytes(v) if isinstance(v, memoryview) else v for v in row]
                digest.update(repr((table, clean)).encode())
    return digest.hexdigest()


TABLES = sorted(
    model._meta.db_table
    for label in CHECKED_APPS
    for model in apps.get_app_config(label).get_models(include_auto_created=True)
    if model._meta.managed
)


def body_of(response) -> bytes:
    data = b"".join(response.streaming_content) if response.streaming else response.content
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    return headers.encode() + b"\n" + data


def outcome(response) -> int | str:
    if response.status_code == 302 and response["Location"].startswith(reverse("login")):
        return LOGIN
    return response.status_code


def is_refusal(status: int | str) -> bool:
    return not (isinstance(status, int) and (200 <= status < 300 or status == 302))


def send(client: Client, method: str, url: str, data) -> object:
    if method == "GET":
        return client.get(url, data or {})
    if method == "POST":
        return client.post(url, data or {})
    if method == PUT:
        return client.put(url, data or b"", content_type="application/octet-stream")
    if method == DELETE:
        return client.delete(url)
    raise AssertionError(f"unknown method {method}")


def forbidden_markers(actor: str) -> list[bytes]:
    return [marker.encode() for marker, who in VISIBLE_TO.items() if actor not in who]


class KnownAccessBug(Exception):
    pass


def client_of(ds: Dataset, actor: str) -> Client:
    if actor == "anonymous":
        return Client()
    if actor == "suspended":
        return ds.suspended_client
    return client_for(ds.users[actor])


def cells(route: Route) -> list[tuple[str, str]]:
    spec = ROUTES.get(route.name, {})
    return [(place, method) for place in places_for(route) for method in spec]


def known_bug_params(route: Route) -> list:
    """The route's cells for all actors, with each (route, actor) that has a known bug apart."""
    buggy = sorted({actor for (name, actor, _, _) in KNOWN_BUGS if name == route.name})
    params = [pytest.param(route, tuple(a for a in ACTORS if a not in buggy), id=route.name)]
    for actor in buggy:
        why = {
            why for (name, a, _, _), why in KNOWN_BUGS.items() if (name, a) == (route.name, actor)
        }
        mark = pytest.mark.xfail(strict=True, raises=KnownAccessBug, reason="; ".join(sorted(why)))
        params.append(pytest.param(route, (actor,), id=f"{route.name}-{actor}", marks=mark))
    return params


PARAMS = [param for route in ALL_ROUTES for param in known_bug_params(route)]


# The tests ---------------------------------------------------------------------------------


def test_every_route_has_an_entry():
    missing = [f"{r.name} ({r.pattern})" for r in ALL_ROUTES if r.name not in ROUTES]
    assert not missing, f"Routes without an entry in the access matrix (ROUTES): {missing}"
    stale = sorted(set(ROUTES) - set(ROUTE_NAMES))
    assert not stale, f"Entries in ROUTES for routes that no longer exist: {stale}"
    for route in ALL_ROUTES:
        methods = set(ROUTES[route.name])
        assert {"GET", "POST"} <= methods, f"{route.name}: state both GET and POST"
    for name, actor, _place, method in KNOWN_BUGS:
        assert name in ROUTES and actor in ACTORS and method in ROUTES[name], (name, actor)


def test_every_websocket_route_has_an_entry():
    from rooms.routing import websocket_urlpatterns

    routes = [route.pattern for route in walk(websocket_urlpatterns)]
    missing = [r for r in routes if r not in WS_ROUTES]
    assert not missing, f"Websocket routes without an entry in WS_ROUTES: {missing}"
    assert not set(WS_ROUTES) - set(routes), "Entries in WS_ROUTES for routes that are gone"


@pytest.mark.parametrize(("route", "actors"), PARAMS)
def test_access(ds: Dataset, route: Route, actors: tuple[str, ...]):
    """Every actor, on every object the route takes, with every method: status, no writes
    where refused, no foreign content. Each request runs in a savepoint rolled back after it."""
    spec = ROUTES.get(route.name)
    assert spec is not None, (
        f"{route.name} ({route.pattern}) has no entry in the access matrix: say who may use it"
    )
    problems: list[str] = []
    bugs: list[str] = []
    for actor in actors:
        client = client_of(ds, actor)
        # Every request is rolled back, so each one starts from this state.
        baseline = snapshot()
        for place, method in cells(route):
            wrong = check_cell(ds, client, baseline, route, actor, place, method)
            if (route.name, actor, place, method) in KNOWN_BUGS:
                bugs += wrong
            else:
                problems += wrong
    assert not problems, "\n".join(problems)
    if bugs:
        raise KnownAccessBug("\n".join(bugs))


def check_cell(
    ds: Dataset, client: Client, baseline: str, route: Route, actor: str, place: str, method: str
) -> list[str]:
    """What is wrong with one cell: (route, actor, object, method)."""
    call = ROUTES[route.name][method]
    want = expected(call, relations(route, ds, actor, place))
    url = reverse(route.name, kwargs=kwargs_for(route, ds, place))
    data = call.data(ds, actor, place) if callable(call.data) else call.data
    forbidden = forbidden_markers(actor)
    wrong = []
    for query in [data, *call.more] if method == "GET" else [data]:
        where = f"{actor} {method} {url}" + (f" {query}" if query and method == "GET" else "")
        with transaction.atomic():
            response = send(client, method, url, query)
            got = outcome(response)
            body = body_of(response)
            if got != want:
                wrong.append(f"{where} ({place}): expected {want}, got {got}: {body[-300:]!r}")
            leaked = [m.decode() for m in forbidden if m in body]
            if leaked:
                wrong.append(f"{where} ({place}): leaked {leaked}")
            if is_refusal(want) and snapshot() != baseline:
                wrong.append(f"{where} ({place}): refused ({got}) but the database changed")
            transaction.set_rollback(True)
    return wrong


@pytest.mark.parametrize("actor", ACTORS)
def test_report_queue_in_admin_is_for_staff_only(ds: Dataset, actor: str):
    """Django admin is Django's, but the report queue must be shut to everyone but staff."""
    client = client_of(ds, actor)
    design, secret = ds.objects["design"].report, ds.objects["secret"].report
    # Each page, and what staff see on it: the reports, the reported message in its context.
    pages = {
        reverse("admin:moderation_report_changelist") + "?status__exact=open": [
            f'value="{design}"',
            f'value="{secret}"',
        ],
        reverse("admin:moderation_report_change", args=[design]): ["zqDesignReport", "zqDesignMsg"],
        reverse("admin:moderation_report_change", args=[secret]): ["zqSecretReport", "zqSecretMsg"],
    }
    baseline = snapshot()
    for url, shown in pages.items():
        response = client.get(url)
        body = body_of(response)
        if actor == "staff":
            assert response.status_code == 200, url
            assert all(text.encode() in body for text in shown), (url, shown)
        else:
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("admin:login")), url
            assert not [m for m in VISIBLE_TO if m.encode() in body], url
        assert snapshot() == baseline, url
    # An admin action is refused to anyone but staff, and changes nothing.
    response = client.post(
        reverse("admin:moderation_report_changelist"),
        {"action": "review_suspend", "_selected_action": [design]},
    )
    assert response.status_code == 302
    if actor == "staff":
        assert not User.objects.get(username="bob").is_active
        assert Report.objects.get(pk=design).status == "reviewed"
    else:
        assert response["Location"].startswith(reverse("admin:login"))
        assert snapshot() == baseline


# Websockets ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("actor", ACTORS)
async def test_websocket_access(settings, media_dir, actor):
    """Connect, replay everything from the start and type in every room: nothing foreign comes."""
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from messages_site.asgi import application

    data: Dataset = await database_sync_to_async(build_dataset)(settings, media_dir)
    for route, spec in WS_ROUTES.items():
        keys = {"anonymous": ["anon"], "suspended": ["suspended", "anon"]}.get(actor, [])
        want = next(spec[k] for k in [*keys, "*"] if k in spec)
        headers = [(b"origin", b"http://127.0.0.1")]
        if actor != "anonymous":
            client = await database_sync_to_async(client_of)(data, actor)
            headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
        socket = WebsocketCommunicator(application, f"/{route}", headers=headers)
        connected, code = await socket.connect()
        if want != "accepted":
            assert (connected, code) == (False, want), f"{route} {actor}"
            continue
        assert connected, f"{route} {actor}: refused with {code}"
        await socket.send_json_to({"type": "resume", "last_id": 0, "since": 0})
        got = []
        while True:
            text = await socket.receive_from(timeout=3)
            got.append(text)
            if json.loads(text)["type"] == "resume.done":
                break
        for place in PLACES:
            await socket.send_json_to({"type": "typing", "room": data.objects[place].room})
        while not await socket.receive_nothing(timeout=0.3):
            got.append(await socket.receive_from())
        await socket.disconnect()
        frames = [json.loads(text) for text in got]
        # Typing is refused in every room the person may not write in (a blocked direct room too).
        refused = [f["error"] for f in frames if f["type"] == "error"]
        relation = database_sync_to_async(room_relation)
        may_write = [
            place
            for place in PLACES
            if (await relation(data.users[actor], data.objects[place].room))[0]
            in ("owner", "admin", "member")
        ]
        assert refused == ["No such room."] * (len(PLACES) - len(may_write)), frames
        for marker in forbidden_markers(actor):
            assert not any(marker.decode() in text for text in got), (actor, marker, got)
        # The replay is not empty for want of trying: what they may read comes back.
        for marker in ("zqDesignMsg", "zqSecretMsg", "zqDirectMsg"):
            if actor in VISIBLE_TO[marker]:
                assert any(marker in text for text in got), (actor, marker, got)
