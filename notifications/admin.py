from __future__ import annotations

from django.contrib import admin

from .models import (
    AutoReply,
    EmailBatch,
    InboundReply,
    MutedRoom,
    NotificationSettings,
    OutOfOffice,
    ReplyToken,
)


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin):
    list_display = ["user", "frequency", "scope", "desktop", "all_off", "updated"]
    list_filter = ["frequency", "scope", "all_off"]
    search_fields = ["user__username", "user__email"]
    raw_id_fields = ["user"]


@admin.register(EmailBatch)
class EmailBatchAdmin(admin.ModelAdmin):
    list_display = ["user", "room", "frequency", "due", "claimed", "sent", "message_count"]
    list_filter = ["frequency"]
    raw_id_fields = ["user", "room"]
    readonly_fields = [f.name for f in EmailBatch._meta.fields]


@admin.register(ReplyToken)
class ReplyTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "room", "created", "expires"]
    raw_id_fields = ["user", "room"]
    exclude = ["token"]  # a secret: whoever has it can post as the user


@admin.register(InboundReply)
class InboundReplyAdmin(admin.ModelAdmin):
    list_display = ["token", "message", "received"]
    raw_id_fields = ["token", "message"]


@admin.register(OutOfOffice)
class OutOfOfficeAdmin(admin.ModelAdmin):
    list_display = ["user", "enabled", "start", "end"]
    raw_id_fields = ["user"]


admin.site.register(MutedRoom, raw_id_fields=["user", "room"])
admin.site.register(AutoReply, raw_id_fields=["responder", "answered", "room", "message"])
