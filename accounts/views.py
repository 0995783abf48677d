from __future__ import annotations

import hashlib
from functools import partial

from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods, require_POST

from messages_site.middleware import text_response
from moderation import ratelimit
from rooms.forms import PersonForm
from rooms.queries import address_book
from rooms.views import check

from . import actions, email_change, emails
from .forms import (
    AskForResetForm,
    LoginForm,
    PreferencesForm,
    ProfileForm,
    ResetPasswordForm,
    SignupForm,
)
from .models import User
from .queries import find_person, login_name


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        # As the login page does: someone signed in is taken to their conversations.
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = actions.do_create_user(
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password1"],
            display_name=form.cleaned_data["display_name"],
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if form.cleaned_data["email"]:
            # Like any new address, it is the person's once they open the link sent to it.
            message = _change_email(user, form.cleaned_data["email"])
            messages.success(request, f"Welcome to Parley. {message}")
            return redirect("profile")
        return redirect("home")
    return render(
        request, "accounts/signup.html", {"form": form}, status=400 if form.errors else 200
    )


def _contacts_page(request: HttpRequest, *, status: int = 200) -> HttpResponse:
    return render(
        request,
        "accounts/contacts.html",
        {"people": address_book(request.user)},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def contacts(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        person = find_person(check(PersonForm(request.POST))["person"])
        actions.do_add_contact(request.user, person=person)
        if not request.htmx:
            return redirect("contacts")
    return _contacts_page(request)


@login_required
@require_POST
def contact_remove(request: HttpRequest, user_id: int) -> HttpResponse:
    actions.do_remove_contact(request.user, person=get_object_or_404(User, pk=user_id))
    return redirect("contacts")


@login_required
@require_POST
def preferences(request: HttpRequest) -> HttpResponse:
    """Change one or more personal preferences; a new conversation view reloads the page."""
    form = PreferencesForm(request.POST)
    changes = {name: value for name, value in check(form).items() if name in request.POST}
    if not changes:
        return text_response("Nothing to change.", status=400)
    actions.do_set_preferences(request.user, **changes)
    response = HttpResponse(status=204)
    if "conversation_view" in changes:
        response["HX-Refresh"] = "true"
    return response


def _guesses_of(user: User) -> str:
    """Wrong passwords typed while signed in count as failed logins of that username (as the
    login page counts them): a session left open must not become a way to guess the password."""
    return f"name:{user.username.lower()}"


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    # A copy: a refused form must not leave its values on the person the page shows.
    form = ProfileForm(request.POST or None, instance=User.objects.get(pk=request.user.pk))
    if request.method == "POST":
        ratelimit.check_key("login_failure", _guesses_of(request.user), peek=True)
        if form.is_valid():
            email = form.cleaned_data["email"]
            if email and email != request.user.email:
                ratelimit.check("email_change", user_id=request.user.pk)
            actions.do_update_profile(request.user, display_name=form.cleaned_data["display_name"])
            changed = _change_email(request.user, email)
            messages.success(request, f"Profile saved. {changed}".rstrip())
            return redirect("profile")
        if form.has_error("password") and form.data.get("password"):
            ratelimit.check_key("login_failure", _guesses_of(request.user))
    return render(
        request, "accounts/profile.html", {"form": form}, status=400 if form.errors else 200
    )


def _change_email(user: User, email: str) -> str:
    """Start changing the person's address to `email`, and say what happens: a new address is
    theirs once they open the link sent to it; no address at all at once."""
    if email == user.email:
        return ""
    if not email:
        actions.do_change_email(user, email="")
        return "Parley has no email address for you now: no emails, no reset links."
    transaction.on_commit(partial(emails.queue_email_confirmation, user.pk, email))
    return f"Open the link we sent to {email} to make it your email address."


@login_required
@require_http_methods(["GET", "POST"])
def email_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The page a new address's link opens: one button makes it the person's (a GET changes
    nothing, as mail scanners open links)."""
    try:
        email = email_change.address_asked(token, request.user)
    except ValidationError as error:
        context = {"error": error.message}
        return render(request, "accounts/email_confirm.html", context, status=400)
    if request.method == "POST":
        actions.do_change_email(request.user, email=email)
        messages.success(request, f"Your email address is now {email}.")
        return redirect("profile")
    return render(request, "accounts/email_confirm.html", {"new_email": email})


@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    """A new password; every other session of the person ends and its tabs close."""
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST":
        ratelimit.check_key("login_failure", _guesses_of(request.user), peek=True)
        if form.is_valid():
            actions.do_change_password(
                request.user,
                password=form.cleaned_data["new_password1"],
                keep_session=request.session.session_key,
            )
            # This session goes on under the new password (and a new key).
            update_session_auth_hash(request, request.user)
            messages.success(request, "Password changed. You are signed out everywhere else.")
            return redirect("password_change")
        if "old_password" in form.errors:
            ratelimit.check_key("login_failure", _guesses_of(request.user))
    return render(
        request, "accounts/password_change.html", {"form": form}, status=400 if form.errors else 200
    )


class PasswordResetView(auth_views.PasswordResetView):
    """The "Forgot your password?" page: a link by email, to an active person with that address.
    It says the same whether or not anyone has it; requests are limited per address and IP."""

    template_name = "accounts/password_reset.html"
    form_class = AskForResetForm
    success_url = reverse_lazy("password_reset_sent")

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        ratelimit.check("password_reset", ip=ratelimit.client_ip(request))
        email = request.POST.get("email", "").strip().lower()
        if email:
            # Hashed: the key stays short and printable whatever was typed.
            digest = hashlib.blake2b(email.encode(errors="replace"), digest_size=16).hexdigest()
            ratelimit.check_key("password_reset", f"email:{digest}")
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=400)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """The page a reset link opens: a new password, then sign in with it."""

    template_name = "accounts/password_reset_confirm.html"
    form_class = ResetPasswordForm
    success_url = reverse_lazy("password_reset_done")

    def form_invalid(self, form) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=400)


class LoginView(auth_views.LoginView):
    """Django's login, refused for a while after repeated failures (per username and per IP)."""

    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # Guesses count against the account, whether its username or its email was typed.
        username = login_name(request.POST.get("username", "")[:254]).lower()
        ip = ratelimit.client_ip(request)
        ratelimit.check("login_failure", ip=ip, peek=True)
        ratelimit.check_key("login_failure", f"name:{username}", peek=True)
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:  # the form came back: wrong username or password
            ratelimit.check("login_failure", ip=ip)
            ratelimit.check_key("login_failure", f"name:{username}")
        return response
