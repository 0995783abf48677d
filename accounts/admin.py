from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm

from rooms.events import close_sockets_on_commit

from .models import Contact, User


class PasswordChangeByStaffForm(AdminPasswordChangeForm):
    """Staff setting (or unsetting) someone's password ends that person's sessions, and so
    closes their open tabs, as the person's own change does."""

    def save(self, commit: bool = True) -> User:
        user = super().save(commit)
        close_sockets_on_commit(user.pk)
        return user


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Parley", {"fields": ("display_name",)}))
    list_display = ("username", "display_name", "email", "is_active", "is_staff")
    change_password_form = PasswordChangeByStaffForm

    # Django ends an inactive or deleted person's sessions at their next request; their open
    # tabs would go on receiving their rooms' messages, so they close, as on a suspension.
    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            close_sockets_on_commit(obj.pk)

    def delete_model(self, request, obj) -> None:
        close_sockets_on_commit(obj.pk)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for user_id in queryset.values_list("pk", flat=True):
            close_sockets_on_commit(user_id)
        super().delete_queryset(request, queryset)


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("owner", "person", "created")
    raw_id_fields = ("owner", "person")
