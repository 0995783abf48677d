from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "rooms"

    def ready(self) -> None:
        # Registers the Celery tasks (thumbnails, stale-upload purge) in every process, so beat
        # and eager runs find them as a worker's autodiscovery would.
        from . import tasks  # noqa: F401
