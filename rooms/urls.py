from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("rooms/new/", views.room_new, name="room_new"),
    path("rooms/<int:room_id>/", views.room, name="room"),
    path("rooms/<int:room_id>/messages/", views.room_messages, name="room_messages"),
    path("rooms/<int:room_id>/read/", views.room_read, name="room_read"),
    path("rooms/<int:room_id>/members/", views.room_members_panel, name="room_members"),
    path("rooms/<int:room_id>/members/invite/", views.member_invite, name="member_invite"),
    path(
        "rooms/<int:room_id>/members/<int:user_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path("rooms/<int:room_id>/members/<int:user_id>/role/", views.member_role, name="member_role"),
    path("rooms/<int:room_id>/leave/", views.room_leave, name="room_leave"),
    path("rooms/<int:room_id>/rename/", views.room_rename, name="room_rename"),
    path("rooms/<int:room_id>/favorite/", views.room_favorite, name="room_favorite"),
    path("rooms/<int:room_id>/hide/", views.room_hide, name="room_hide"),
    path("rooms/<int:room_id>/archive/", views.room_archive, name="room_archive"),
    path("rooms/hidden/", views.hidden_rooms, name="hidden_rooms"),
    path("rooms/list/", views.room_list_fragment, name="room_list"),
    path("rooms/<int:room_id>/notepad/", views.notepad, name="notepad"),
    path("notes/<int:note_id>/", views.note_show, name="note_show"),
    path("emoji/", views.emoji_catalogue, name="emoji"),
    path("rooms/<int:room_id>/giphy/", views.room_giphy, name="room_giphy"),
    path("gifs/<int:gif_id>/", views.gif_file, name="gif_file"),
    path("messages/<int:message_id>/unread/", views.message_unread, name="message_unread"),
    path("messages/<int:message_id>/react/", views.message_react, name="message_react"),
    path("messages/<int:message_id>/", views.message_show, name="message_show"),
    path("messages/<int:message_id>/edit/", views.message_edit, name="message_edit"),
    path("messages/<int:message_id>/delete/", views.message_delete, name="message_delete"),
    path("direct/<str:username>/", views.direct_open, name="direct_open"),
    path("search/", views.search, name="search"),
]
