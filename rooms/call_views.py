"""The HTTP side of calls: the room's call banner, ending a call, posting its recording.

Starting, joining and leaving go over the websocket (a seat belongs to a socket): see
rooms/call_socket.py.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from . import calls
from .forms import MAX_ID
from .fragments import message_html
from .queries import access_membership


class RecordingForm(forms.Form):
    attachment = forms.IntegerField(min_value=1, max_value=MAX_ID)
    seconds = forms.IntegerField(min_value=0, max_value=calls.MAX_RECORDING_SECONDS)


@login_required
@require_GET
def call_banner(request: HttpRequest, room_id: int) -> HttpResponse:
    room = access_membership(request.user, room_id).room
    call = calls.live_call(room)
    return HttpResponse(calls.banner_html(room, call, calls.peers(call) if call else []))


@login_required
@require_POST
def call_end(request: HttpRequest, call_id: int) -> HttpResponse:
    calls.do_end_call(request.user, call_id=call_id)
    return HttpResponse(status=204)


@login_required
@require_POST
def call_recording(request: HttpRequest, call_id: int) -> HttpResponse:
    calls.access_call(request.user, call_id)  # an outsider hears 404 before any form error
    form = RecordingForm(request.POST)
    if not form.is_valid():
        raise ValidationError([e for errors in form.errors.values() for e in errors])
    message = calls.do_post_recording(
        request.user,
        call_id=call_id,
        attachment_id=form.cleaned_data["attachment"],
        seconds=form.cleaned_data["seconds"],
    )
    return HttpResponse(message_html(message), status=201)


urlpatterns = [
    path("rooms/<int:room_id>/call/", call_banner, name="call_banner"),
    path("calls/<int:call_id>/end/", call_end, name="call_end"),
    path("calls/<int:call_id>/recordings/", call_recording, name="call_recording"),
]
