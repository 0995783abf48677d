from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("settings/", include("notifications.urls")),
    path("safety/", include("moderation.urls")),
    path("", include("rooms.urls")),
]
