"""Template tags for the attach controls: the upload and screen recording limits, Dropbox."""

from __future__ import annotations

from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def max_upload_bytes() -> int:
    return settings.MAX_UPLOAD_BYTES


@register.simple_tag
def dropbox_app_key() -> str:
    return settings.DROPBOX_APP_KEY


@register.simple_tag
def screen_recording_max_seconds() -> int:
    return settings.SCREEN_RECORDING_MAX_SECONDS
