from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from rooms.actions import archive_inactive_rooms


class Command(BaseCommand):
    help = "Archive group rooms with no message in N days. Safe to run twice; for schedules."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--inactive-days", type=int, required=True)
        parser.add_argument("--dry-run", action="store_true", help="list, change nothing")

    def handle(self, *args, inactive_days: int, dry_run: bool, **options) -> None:
        if inactive_days < 1:
            raise CommandError("--inactive-days must be at least 1.")
        rooms = archive_inactive_rooms(inactive_days=inactive_days, dry_run=dry_run)
        verb = "Would archive" if dry_run else "Archived"
        for room in rooms:
            last = f"{room.last_activity:%Y-%m-%d}"
            self.stdout.write(f"{verb} room {room.pk} {room.title!r} (last activity {last})")
        self.stdout.write(f"{verb} {len(rooms)} room(s) inactive for {inactive_days}+ days.")
