from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "rooms"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        # Registers the Celery tasks (thumbnails, stale-upload purge) in every process, so beat
        # and eager runs find them as a worker's autodiscovery would.
        from . import tasks  # noqa: F401
        from .events import close_signed_out_tabs

        user_logged_out.connect(close_signed_out_tabs, dispatch_uid="rooms.close_signed_out_tabs")
