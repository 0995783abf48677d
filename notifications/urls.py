from django.urls import path

from . import views

urlpatterns = [
    path("notifications/", views.notification_settings, name="notification_settings"),
    path("notifications/off/", views.notifications_off, name="notifications_off"),
    path("notifications/rooms/<int:room_id>/mute/", views.room_mute, name="room_mute"),
    path("notifications/desktop.json", views.desktop_settings, name="desktop_settings"),
    path("out-of-office/", views.out_of_office, name="out_of_office"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
