"""Staff review of reports: a queue (oldest open first) and one action per decision."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.html import format_html, format_html_join

from rooms.models import Message

from .actions import do_review_report
from .models import Block, Decision, Report, ReviewAction, Warning

CONTEXT = 2


class ReviewActionInline(admin.TabularInline):
    model = ReviewAction
    extra = 0
    can_delete = False
    readonly_fields = ("decision", "staff", "note", "created")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _review(decision: str, label: str):
    def action(modeladmin, request, queryset):
        done = 0
        for report in queryset.select_related("message__room"):
            try:
                do_review_report(request.user, report=report, decision=decision)
                done += 1
            except (ValidationError, PermissionDenied) as error:
                text = " ".join(getattr(error, "messages", [str(error)]))
                modeladmin.message_user(request, f"Report {report.pk}: {text}", messages.ERROR)
        if done:
            modeladmin.message_user(request, f"{label}: {done} report(s).", messages.SUCCESS)

    action.short_description = label
    action.__name__ = f"review_{decision}"
    return action


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ("id", "created", "status", "reason", "reported", "reporter")
    list_filter = ("status", "reason", "created")
    date_hierarchy = "created"
    search_fields = (
        "reported__username",
        "reported__display_name",
        "reporter__username",
        "reporter__display_name",
    )
    ordering = ("status", "created")  # "open" sorts before "reviewed": oldest open first
    list_select_related = ("reported", "reporter")
    readonly_fields = (
        "conversation",
        "message_text",
        "reason",
        "description",
        "reporter",
        "reported",
        "status",
        "created",
    )
    exclude = ("message",)
    inlines = [ReviewActionInline]
    actions = [
        _review(Decision.DISMISS, "Dismiss"),
        _review(Decision.REMOVE_MESSAGE, "Remove message"),
        _review(Decision.WARN, "Warn"),
        _review(Decision.SUSPEND, "Suspend user"),
        _review(Decision.END_CONTRACT, "End contract"),
    ]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="The message, with two before and after it")
    def conversation(self, report: Report) -> str:
        message = report.message
        room = Message.objects.filter(room_id=message.room_id).select_related("sender")
        before = list(room.filter(id__lt=message.pk).order_by("-id")[:CONTEXT])[::-1]
        after = list(room.filter(id__gt=message.pk).order_by("id")[:CONTEXT])
        rows = [
            (
                "reported" if m.pk == message.pk else "",
                m.sender.name,
                m.created.strftime("%Y-%m-%d %H:%M"),
                "(deleted)" if m.is_deleted else m.body,
            )
            for m in [*before, message, *after]
        ]
        return format_html(
            "<div class='report-context'>{}</div>",
            format_html_join(
                "",
                "<p class='{}'><b>{}</b> <small>{}</small><br>{}</p>",
                rows,
            ),
        )


@admin.register(Block)
class BlockAdmin(admin.ModelAdmin):
    list_display = ("blocker", "blocked", "created")
    raw_id_fields = ("blocker", "blocked")


@admin.register(Warning)
class WarningAdmin(admin.ModelAdmin):
    list_display = ("user", "created", "seen")
    raw_id_fields = ("user", "report")
