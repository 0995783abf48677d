from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.actions import do_add_contact, do_create_user
from accounts.models import User
from rooms.actions import do_create_room, do_send_message
from rooms.models import Room, RoomKind

DEMO_PASSWORD = "parley-demo"
PEOPLE = [
    ("alice", "Alice Adams"),
    ("bob", "Bob Jones"),
    ("carol", "Carol Chen"),
    ("dave", "Dave Diaz"),
]
ROOMS = [
    (RoomKind.GROUP, "Design", ["bob", "carol", "dave"], [
        ("alice", "Welcome to **Design** :wave: — the brief is in the pinned doc."),
        ("bob", "Thanks! I'll share _first sketches_ tomorrow.\nAny ~~deadline~~ target date?"),
        ("carol", "> the brief is in the pinned doc\n\nFound it: https://example.com/brief"),
    ]),
    (RoomKind.INTERVIEW, "Interview: Dave", ["dave"], [
        ("alice", "Hi @dave, thanks for applying. Can you walk me through `deploy.sh`?"),
        ("dave", "Sure:\n```\n./deploy.sh --env staging\n```"),
    ]),
    (RoomKind.CONTRACT, "Contract: Website", ["bob"], [
        ("alice", "Contract started :tada: Milestone 1 is the landing page."),
    ]),
    (RoomKind.DIRECT, "", ["bob"], [
        ("bob", "Quick question about the invoice — do you need it as **PDF**?"),
        ("alice", "Yes please :+1:"),
    ]),
]


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

        names = ", ".join(username for username, _ in PEOPLE)
        self.stdout.write(f"Demo people: {names} — password: {DEMO_PASSWORD}")
