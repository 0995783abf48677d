from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("contacts/", views.contacts, name="contacts"),
    path("preferences/", views.preferences, name="preferences"),
    path("contacts/<int:user_id>/remove/", views.contact_remove, name="contact_remove"),
]
