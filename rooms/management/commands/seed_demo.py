from __future__ import annotations

import io

from django.core.management.base import BaseCommand
from django.db import transaction
from PIL import Image, ImageDraw

from accounts.actions import do_add_contact, do_create_user
from accounts.models import User
from rooms.actions import do_add_library_gif, do_create_room, do_send_message
from rooms.models import Gif, Room, RoomKind

DEMO_PASSWORD = "parley-demo"  # noqa: S105 - printed for people trying the demo
PEOPLE = [
    ("alice", "Alice Adams"),
    ("bob", "Bob Jones"),
    ("carol", "Carol Chen"),
    ("dave", "Dave Diaz"),
]
ROOMS = [
    (
        RoomKind.GROUP,
        "Design",
        ["bob", "carol", "dave"],
        [
            ("alice", "Welcome to **Design** :wave: — the brief is in the pinned doc."),
            ("bob", "Thanks! I'll share _first sketches_ tomorrow.\nAny ~~deadline~~ target date?"),
            ("carol", "> the brief is in the pinned doc\n\nFound it: https://example.com/brief"),
        ],
    ),
    (
        RoomKind.INTERVIEW,
        "Interview: Dave",
        ["dave"],
        [
            ("alice", "Hi @dave, thanks for applying. Can you walk me through `deploy.sh`?"),
            ("dave", "Sure:\n```\n./deploy.sh --env staging\n```"),
        ],
    ),
    (
        RoomKind.CONTRACT,
        "Contract: Website",
        ["bob"],
        [
            ("alice", "Contract started :tada: Milestone 1 is the landing page."),
        ],
    ),
    (
        RoomKind.DIRECT,
        "",
        ["bob"],
        [
            ("bob", "Quick question about the invoice — do you need it as **PDF**?"),
            ("alice", "Yes please :+1:"),
        ],
    ),
]


GIFS = [
    ("Party", "party celebrate yay tada", ["#ff5f6d", "#ffc371", "#47cacc"]),
    ("Thumbs up", "ok yes thumbs up agree", ["#1f6feb", "#58a6ff"]),
    ("Happy cat", "cat happy kitten", ["#f2cc8f", "#e07a5f", "#81b29a"]),
]


def animated_gif(colors: list[str], size: int = 96) -> bytes:
    """A small looping GIF that cycles through `colors`, made with Pillow."""
    frames = []
    for index, color in enumerate(colors):
        frame = Image.new("RGB", (size, size), color)
        draw = ImageDraw.Draw(frame)
        inset = 12 + 8 * index
        draw.ellipse((inset, inset, size - inset, size - inset), outline="white", width=6)
        frames.append(frame)
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=250, loop=0)
    return out.getvalue()


class Command(BaseCommand):
    help = "Create the demo people and one room of each kind. Safe to run twice."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        people = {}
        for username, name in PEOPLE:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = do_create_user(
                    username=username,
                    password=DEMO_PASSWORD,
                    email=f"{username}@example.com",
                    display_name=name,
                )
            people[username] = user
        alice = people["alice"]
        for person in people.values():
            if person != alice:
                do_add_contact(alice, person=person)

        for kind, title, members, lines in ROOMS:
            if kind != RoomKind.DIRECT and Room.objects.filter(kind=kind, title=title).exists():
                continue
            room = do_create_room(
                alice,
                kind=kind,
                title=title,
                members=[people[m] for m in members],
                contract_active=kind == RoomKind.CONTRACT,
            )
            if room.messages.exists():
                continue
            for username, body in lines:
                do_send_message(people[username], room=room, body=body)

        for title, keywords, colors in GIFS:
            if not Gif.objects.filter(title=title).exists():
                do_add_library_gif(title=title, keywords=keywords, data=animated_gif(colors))

        names = ", ".join(username for username, _ in PEOPLE)
        self.stdout.write(f"Demo people: {names} — password: {DEMO_PASSWORD}")
