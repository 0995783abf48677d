from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from rooms.queries import access_membership, room_list

from . import actions
from .emails import user_for_unsubscribe_token
from .forms import FlagForm, NotificationSettingsForm, OutOfOfficeForm
from .models import OutOfOffice
from .queries import muted_room_ids, out_of_office_until, settings_for

SETTING_FIELDS = list(NotificationSettingsForm.base_fields)


def check(form) -> dict:
    """The cleaned data of a bound form, or a 400 whose body says what was wrong."""
    if not form.is_valid():
        raise ValidationError([e for errors in form.errors.values() for e in errors])
    return form.cleaned_data


def _page(
    request: HttpRequest,
    *,
    settings_form: NotificationSettingsForm | None = None,
    away_form: OutOfOfficeForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    prefs = settings_for(user)
    if settings_form is None:
        settings_form = NotificationSettingsForm(
            initial={name: getattr(prefs, name) for name in SETTING_FIELDS}
        )
    if away_form is None:
        away = OutOfOffice.objects.filter(user=user).first()
        today = timezone.localdate()
        away_form = OutOfOfficeForm(
            initial={
                "enabled": away.enabled if away else False,
                "message": away.message if away else "",
                "start": away.start if away else today,
                "end": away.end if away else today,
            }
        )
    rooms = room_list(user)
    return render(
        request,
        "notifications/settings.html",
        {
            "prefs": prefs,
            "settings_form": settings_form,
            "away_form": away_form,
            "rooms": rooms,
            "muted": muted_room_ids(user),
            "away_until": out_of_office_until(user),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def notification_settings(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request)
    form = NotificationSettingsForm(request.POST)
    if not form.is_valid():
        return _page(request, settings_form=form, status=400)
    actions.do_update_notification_settings(request.user, **form.cleaned_data)
    messages.success(request, "Notification settings saved.")
    return redirect("notification_settings")


@login_required
@require_POST
def notifications_off(request: HttpRequest) -> HttpResponse:
    off = check(FlagForm(request.POST))["on"]
    actions.do_set_all_notifications_off(request.user, off=off)
    messages.success(request, "All notifications are off." if off else "Notifications are back on.")
    return redirect("notification_settings")


@login_required
@require_POST
def room_mute(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    muted = check(FlagForm(request.POST))["on"]
    actions.do_set_room_muted(request.user, room=membership.room, muted=muted)
    if request.htmx:
        return HttpResponse(status=204)
    return redirect("notification_settings")


@login_required
@require_GET
def desktop_settings(request: HttpRequest) -> JsonResponse:
    """What static/js/notifications.js needs to decide whether to show a desktop notification."""
    prefs = settings_for(request.user)
    return JsonResponse(
        {
            "enabled": prefs.desktop and not prefs.all_off,
            "muted_rooms": sorted(muted_room_ids(request.user)),
        }
    )


@login_required
@require_http_methods(["GET", "POST"])
def out_of_office(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request)
    form = OutOfOfficeForm(request.POST)
    if not form.is_valid():
        return _page(request, away_form=form, status=400)
    data = form.cleaned_data
    actions.do_update_out_of_office(
        request.user,
        enabled=data["enabled"],
        message=data["message"],
        start=data["start"],
        end=data["end"],
    )
    messages.success(request, "Out-of-Office Responder saved.")
    return redirect("out_of_office")


@csrf_exempt  # The signed token is the credential; mail clients POST without a session.
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks (link scanners must not unsubscribe anyone); POST is the one-click unsubscribe."""
    user_id = user_for_unsubscribe_token(token)
    if user_id is None:
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=400)
    user = get_object_or_404(User, pk=user_id)
    if request.method == "POST":
        actions.do_unsubscribe(user)
        return render(request, "notifications/unsubscribe.html", {"done": True, "person": user})
    return render(request, "notifications/unsubscribe.html", {"person": user, "token": token})
