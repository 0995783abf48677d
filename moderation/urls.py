from django.urls import path

from . import views

urlpatterns = [
    path("messages/<int:message_id>/report/", views.report_message, name="report_message"),
    path("people/<int:user_id>/block/", views.block, name="block"),
    path("people/<int:user_id>/unblock/", views.unblock, name="unblock"),
    path("blocked/", views.blocked_people, name="blocked_people"),
    path("warnings/seen/", views.warnings_seen, name="warnings_seen"),
]
