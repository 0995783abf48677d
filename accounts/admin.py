from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import Contact, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Parley", {"fields": ("display_name",)}))
    list_display = ("username", "display_name", "email", "is_active", "is_staff")


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("owner", "person", "created")
    raw_id_fields = ("owner", "person")
