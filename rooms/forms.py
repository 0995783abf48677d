from __future__ import annotations

from django import forms

from accounts.models import User

from .formatting import MAX_MESSAGE_LENGTH
from .models import Role, RoomKind


class NewRoomForm(forms.Form):
    kind = forms.ChoiceField(choices=RoomKind.choices, initial=RoomKind.GROUP)
    title = forms.CharField(max_length=200, required=False)
    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, address_book, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = address_book


class NewlineCharField(forms.CharField):
    """Counts a line break as one character, however the browser encoded it."""

    def to_python(self, value):
        value = super().to_python(value)
        return value.replace("\r\n", "\n").replace("\r", "\n")


class MessageForm(forms.Form):
    # The action trims and checks the length too; this gives the same message before any write.
    body = NewlineCharField(
        max_length=MAX_MESSAGE_LENGTH,
        strip=True,
        error_messages={
            "required": "A message cannot be empty.",
            "max_length": f"A message can be at most {MAX_MESSAGE_LENGTH:,} characters.",
        },
    )


class ClientTokenForm(forms.Form):
    """The token a tab sends with each message, so that a retried request posts it once; the
    action checks its shape."""

    client_token = forms.CharField(required=False, strip=False)

    def clean_client_token(self) -> str:
        if len(self.data.getlist("client_token")) > 1:
            raise forms.ValidationError("Send one client token per message.")
        return self.cleaned_data["client_token"]


class TitleForm(forms.Form):
    title = forms.CharField(max_length=200)


class PersonForm(forms.Form):
    person = forms.CharField(max_length=254, label="Username or email")


class RoleForm(forms.Form):
    role = forms.TypedChoiceField(
        choices=[(Role.ADMIN, "Admin"), (Role.MEMBER, "Member")], coerce=int
    )


MAX_ID = 2**63 - 1  # a database bigint
# Ids a message may name as its files (the action then checks each one).
MAX_ATTACHMENT_IDS = 100


class PageForm(forms.Form):
    before = forms.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    after = forms.IntegerField(min_value=0, max_value=MAX_ID, required=False)


class AroundForm(forms.Form):
    around = forms.IntegerField(min_value=1, max_value=MAX_ID - 1, required=False)


class ReadForm(forms.Form):
    up_to = forms.IntegerField(min_value=1, max_value=MAX_ID)


class FlagForm(forms.Form):
    on = forms.TypedChoiceField(choices=[("1", "on"), ("0", "off")], coerce=lambda v: v == "1")


class ReactionForm(forms.Form):
    emoji = forms.CharField(max_length=32)


class GifQueryForm(forms.Form):
    q = forms.CharField(max_length=50, error_messages={"required": "Type what the GIF is about."})
    shuffle = forms.IntegerField(min_value=0, max_value=1000, required=False)

    def clean_shuffle(self) -> int:
        return self.cleaned_data["shuffle"] or 0


class GifChoiceForm(forms.Form):
    q = forms.CharField(max_length=50)
    gif = forms.CharField(max_length=64)


class SearchForm(forms.Form):
    MESSAGES = "messages"
    PEOPLE = "people"

    # Length and emptiness are checked by rooms.search, which words the message for people.
    q = forms.CharField(required=False, strip=True)
    scope = forms.ChoiceField(
        choices=[(MESSAGES, "Messages"), (PEOPLE, "People & Rooms")], required=False
    )

    def clean_scope(self) -> str:
        return self.cleaned_data["scope"] or self.MESSAGES


class NoteForm(forms.Form):
    # The action measures the size in bytes and says how big it was.
    body = forms.CharField(required=False, strip=False)
    version = forms.IntegerField(min_value=0, max_value=2**31)


class UploadForm(forms.Form):
    """A chunked upload to start: the file's name, size and the type the browser declared."""

    # Long or odd names are cleaned and shortened by rooms.files, not refused here.
    name = forms.CharField(
        max_length=4096, strip=False, error_messages={"required": "This file has no name."}
    )
    size = forms.IntegerField(min_value=0, max_value=2**62)
    type = forms.CharField(max_length=200, required=False)


class AttachmentsForm(forms.Form):
    """The finished uploads sent with a message; with any, the message may have no text."""

    attachments = forms.Field(required=False, widget=forms.MultipleHiddenInput)

    def clean_attachments(self) -> list[int]:
        values = self.cleaned_data["attachments"] or []
        try:
            ids = [int(value) for value in values]
        except (TypeError, ValueError):
            raise forms.ValidationError("Those are not files that can be sent.") from None
        if len(ids) > MAX_ATTACHMENT_IDS or not all(0 < pk <= MAX_ID for pk in ids):
            raise forms.ValidationError("Those are not files that can be sent.")
        return ids


class FilesPageForm(forms.Form):
    q = forms.CharField(max_length=200, required=False, strip=True)
    page = forms.IntegerField(min_value=1, max_value=10_000, required=False)

    def clean_page(self) -> int:
        return self.cleaned_data["page"] or 1
