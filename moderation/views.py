from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from rooms.queries import access_message
from rooms.views import check, redirect_to

from . import actions, ratelimit
from .forms import ReportForm
from .queries import blocked_list


@login_required
@require_http_methods(["GET", "POST"])
@ratelimit.limit("report")
def report_message(request: HttpRequest, message_id: int) -> HttpResponse:
    message = access_message(request.user, message_id)
    if request.method == "POST":
        data = check(ReportForm(request.POST))
        actions.do_report_message(
            request.user, message=message, reason=data["reason"], description=data["description"]
        )
        return render(request, "moderation/report.html#reported", {"message": message})
    form = ReportForm()
    return render(request, "moderation/report.html#dialog", {"message": message, "form": form})


@login_required
@require_POST
def block(request: HttpRequest, user_id: int) -> HttpResponse:
    person = get_object_or_404(User, pk=user_id, is_active=True)
    actions.do_block_user(request.user, blocked=person)
    room = request.POST.get("room", "")
    return redirect_to(request, f"/rooms/{int(room)}/" if room.isdigit() else "/safety/blocked/")


@login_required
@require_POST
def unblock(request: HttpRequest, user_id: int) -> HttpResponse:
    actions.do_unblock_user(request.user, blocked=get_object_or_404(User, pk=user_id))
    return redirect_to(request, "/safety/blocked/")


@login_required
@require_GET
def blocked_people(request: HttpRequest) -> HttpResponse:
    return render(request, "moderation/blocked.html", {"blocks": blocked_list(request.user.pk)})


@login_required
@require_POST
def warnings_seen(request: HttpRequest) -> HttpResponse:
    actions.do_mark_warnings_seen(request.user)
    return HttpResponse(status=204)
