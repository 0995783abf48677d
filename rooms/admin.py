from __future__ import annotations

from django import forms
from django.contrib import admin

from .actions import do_add_library_gif
from .models import Gif, Membership, Message, Room


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)
    readonly_fields = ("joined", "last_read_id")


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "contract_active", "archived", "last_activity")
    list_filter = ("kind", "contract_active")
    search_fields = ("title",)
    inlines = [MembershipInline]
    readonly_fields = ("last_message", "direct_key", "created", "last_activity")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "room", "sender", "created", "edited", "deleted")
    raw_id_fields = ("room", "sender")
    search_fields = ("body",)
    readonly_fields = ("body_html", "created", "edited", "deleted", "changed")


class GifUploadForm(forms.ModelForm):
    upload = forms.FileField(help_text="A GIF file.")

    class Meta:
        model = Gif
        fields = ("title", "keywords")


@admin.register(Gif)
class GifAdmin(admin.ModelAdmin):
    """The built-in /giphy library; uploads go through the same action as the demo seed."""

    list_display = ("title", "keywords", "width", "height", "created")
    search_fields = ("title", "keywords")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = GifUploadForm
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        upload = form.cleaned_data["upload"]
        gif = do_add_library_gif(
            title=form.cleaned_data["title"],
            keywords=form.cleaned_data["keywords"],
            data=upload.read(),
        )
        obj.pk = gif.pk
