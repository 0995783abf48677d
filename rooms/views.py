from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.models import User
from accounts.queries import find_person
from messages_site.middleware import text_response
from messages_site.streamed_body import reads_body_as_stream
from moderation import ratelimit

from . import actions, files, giphy
from .formatting import emoji_names
from .forms import (
    AroundForm,
    AttachmentsForm,
    ClientTokenForm,
    FilesPageForm,
    FlagForm,
    GifChoiceForm,
    GifQueryForm,
    MessageForm,
    NewRoomForm,
    NoteForm,
    PageForm,
    PersonForm,
    ReactionForm,
    ReadForm,
    RoleForm,
    SearchForm,
    TitleForm,
    UploadForm,
)
from .fragments import message_html, with_message_html, with_room_item_html
from .models import Gif, Role, Upload, UploadChunk
from .queries import (
    CATEGORY_FILTERS,
    ListCursor,
    access_membership,
    access_message,
    access_note,
    address_book,
    archived_rooms,
    messages_after,
    messages_around,
    messages_before,
    note_for,
    room_list,
    room_members,
    room_page,
)
from .search import RESULT_LIMIT, SearchError, search_messages, search_people_and_rooms


def check(form) -> dict:
    """The cleaned data of a bound form, or a 400 whose body says what was wrong."""
    if not form.is_valid():
        raise ValidationError([e for errors in form.errors.values() for e in errors])
    return form.cleaned_data


def redirect_to(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    rooms = room_list(request.user, limit=1)
    if rooms:
        return redirect(rooms[0].room)
    return render(request, "rooms/home.html", {"rooms": rooms})


@login_required
@require_GET
def room(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    if membership.hidden:
        # Reaching a hidden room (a link, a search) brings it back to the list.
        actions.do_set_hidden(request.user, room=membership.room, hidden=False)
        membership.hidden = False
    around = check(AroundForm(request.GET))["around"]
    if around is not None:
        messages, has_more, has_newer = messages_around(membership.room, around=around)
    else:
        (messages, has_more), has_newer = messages_before(membership.room), False
    # Opening a room reads it; one already read to its end costs no transaction.
    if messages and not has_newer and membership.last_read_id < messages[-1].pk:
        actions.do_mark_read(request.user, room=membership.room, up_to=messages[-1].pk)
    return render(
        request,
        "rooms/room.html",
        {
            "membership": membership,
            "room": membership.room,
            "messages": with_message_html(messages),
            "has_more": has_more,
            "has_newer": has_newer,
            "around": around,
            "members": room_members(membership.room),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
@ratelimit.limit("send")
def room_messages(request: HttpRequest, room_id: int) -> HttpResponse:
    if request.method == "POST":
        attachments = check(AttachmentsForm(request.POST))["attachments"]
        # With files attached the text may be empty; the action checks it either way.
        form = MessageForm(request.POST)
        body = request.POST.get("body", "") if attachments else check(form)["body"]
        # The action checks membership under the room's lock; nothing else here needs it.
        message = actions.do_send_message(
            request.user,
            room=room_id,
            body=body,
            attachments=attachments,
            client_token=check(ClientTokenForm(request.POST))["client_token"],
        )
        # A retry of a message already stored gets it back with 200 instead of 201 Created.
        return HttpResponse(
            message_html(message), status=200 if getattr(message, "retried", False) else 201
        )
    membership = access_membership(request.user, room_id)
    page = check(PageForm(request.GET))
    if page["after"] is not None:
        messages, has_newer = messages_after(membership.room, after=page["after"])
        return render(
            request,
            "rooms/room.html#newer",
            {
                "room": membership.room,
                "messages": with_message_html(messages),
                "has_newer": has_newer,
            },
        )
    messages, has_more = messages_before(membership.room, before=page["before"])
    return render(
        request,
        "rooms/room.html#history",
        {"room": membership.room, "messages": with_message_html(messages), "has_more": has_more},
    )


@login_required
@require_POST
def room_read(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    actions.do_mark_read(
        request.user, room=membership.room, up_to=check(ReadForm(request.POST))["up_to"]
    )
    return HttpResponse(status=204)


@login_required
@require_http_methods(["GET", "POST"])
def message_edit(request: HttpRequest, message_id: int) -> HttpResponse:
    message = access_message(request.user, message_id)
    if request.method == "POST":
        body = check(MessageForm(request.POST))["body"]
        message = actions.do_edit_message(request.user, message=message, body=body)
        return HttpResponse(message_html(message))
    return render(request, "rooms/room.html#message_edit", {"message": message})


@login_required
@require_GET
def message_show(request: HttpRequest, message_id: int) -> HttpResponse:
    return HttpResponse(message_html(access_message(request.user, message_id)))


@login_required
@require_POST
def message_delete(request: HttpRequest, message_id: int) -> HttpResponse:
    message = access_message(request.user, message_id)
    message = actions.do_delete_message(request.user, message=message)
    return HttpResponse(message_html(message))


@login_required
@require_http_methods(["GET", "POST"])
@ratelimit.limit("create_room")
def room_new(request: HttpRequest) -> HttpResponse:
    form = NewRoomForm(request.POST or None, address_book=address_book(request.user))
    if request.method == "POST" and form.is_valid():
        try:
            new_room = actions.do_create_room(
                request.user,
                kind=form.cleaned_data["kind"],
                title=form.cleaned_data["title"],
                members=form.cleaned_data["members"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return redirect_to(request, new_room.get_absolute_url())
    status = 400 if form.errors else 200
    return render(request, "rooms/room_new.html", {"form": form}, status=status)


@login_required
@require_POST
def direct_open(request: HttpRequest, username: str) -> HttpResponse:
    other = get_object_or_404(User, username=username, is_active=True)
    direct = actions.do_open_direct(request.user, other=other)
    return redirect_to(request, direct.get_absolute_url())


def _members_panel(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    return render(
        request,
        "rooms/room.html#members",
        {
            "membership": membership,
            "room": membership.room,
            "members": room_members(membership.room),
        },
    )


@login_required
@require_GET
def room_members_panel(request: HttpRequest, room_id: int) -> HttpResponse:
    return _members_panel(request, room_id)


@login_required
@require_POST
@ratelimit.limit("invite")
def member_invite(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    person = find_person(check(PersonForm(request.POST))["person"])
    actions.do_invite_member(request.user, room=membership.room, user=person)
    return _members_panel(request, room_id)


@login_required
@require_POST
def member_remove(request: HttpRequest, room_id: int, user_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    person = get_object_or_404(User, pk=user_id)
    actions.do_remove_member(request.user, room=membership.room, user=person)
    if person.pk == request.user.pk:
        return redirect_to(request, "/")
    return _members_panel(request, room_id)


@login_required
@require_POST
def member_role(request: HttpRequest, room_id: int, user_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    person = get_object_or_404(User, pk=user_id)
    role = Role(check(RoleForm(request.POST))["role"])
    actions.do_set_role(request.user, room=membership.room, user=person, role=role)
    return _members_panel(request, room_id)


@login_required
@require_POST
def room_leave(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    actions.do_leave_room(request.user, room=membership.room)
    return redirect_to(request, "/")


@login_required
@require_POST
def room_rename(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    actions.do_rename_room(
        request.user, room=membership.room, title=check(TitleForm(request.POST))["title"]
    )
    return redirect_to(request, membership.room.get_absolute_url())


@login_required
@require_POST
def room_favorite(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    favorite = check(FlagForm(request.POST))["on"]
    actions.do_set_favorite(request.user, room=membership.room, favorite=favorite)
    return _room_menu(request, room_id)


@login_required
@require_POST
def room_hide(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    hidden = check(FlagForm(request.POST))["on"]
    actions.do_set_hidden(request.user, room=membership.room, hidden=hidden)
    if hidden:
        return redirect_to(request, "/")
    return _room_menu(request, room_id)


@login_required
@require_POST
def room_archive(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    if check(FlagForm(request.POST))["on"]:
        actions.do_archive_room(request.user, room=membership.room)
    else:
        actions.do_unarchive_room(request.user, room=membership.room)
    return redirect_to(request, membership.room.get_absolute_url())


def _room_menu(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    return render(
        request, "rooms/room.html#room_menu", {"membership": membership, "room": membership.room}
    )


@login_required
@require_GET
def hidden_rooms(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "rooms/hidden.html",
        {
            "hidden": room_list(request.user, hidden=True),
            "archived": archived_rooms(request.user),
        },
    )


@login_required
@require_POST
def message_unread(request: HttpRequest, message_id: int) -> HttpResponse:
    actions.do_mark_unread(request.user, message=access_message(request.user, message_id))
    return HttpResponse(status=204)


@login_required
@require_POST
def message_react(request: HttpRequest, message_id: int) -> HttpResponse:
    message = access_message(request.user, message_id)
    actions.do_toggle_reaction(
        request.user, message=message, emoji=check(ReactionForm(request.POST))["emoji"]
    )
    return HttpResponse(message_html(access_message(request.user, message_id)))


@login_required
@require_http_methods(["GET", "POST"])
@ratelimit.limit("send")
def room_giphy(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    gifs = giphy.provider()
    if request.method == "POST":
        choice = check(GifChoiceForm(request.POST))
        try:
            gif = gifs.get(choice["gif"])
        except giphy.GifProviderError as error:
            raise ValidationError(str(error)) from None
        if gif is None:
            raise ValidationError("That GIF is no longer available; shuffle for another.")
        message = actions.do_send_message(
            request.user,
            room=membership.room,
            body=f"/giphy {choice['q']}",
            gif_url=gif.url,
            gif_title=gif.title,
        )
        return HttpResponse(message_html(message), status=201)
    query = check(GifQueryForm(request.GET))
    try:
        results = gifs.search(query["q"], limit=giphy.SEARCH_LIMIT)
    except giphy.GifProviderError as error:
        raise ValidationError(str(error)) from None
    index = query["shuffle"] % len(results) if results else 0
    return render(
        request,
        "rooms/room.html#giphy",
        {
            "room": membership.room,
            "q": query["q"],
            "gif": results[index] if results else None,
            "next": query["shuffle"] + 1,
        },
    )


@login_required
@require_GET
def gif_file(request: HttpRequest, gif_id: int) -> HttpResponse:
    gif = get_object_or_404(Gif, pk=gif_id)
    response = FileResponse(gif.image.open("rb"), content_type="image/gif")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=86400"
    return response


@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Messages, or people & rooms, matching `q`; a query that cannot run gets a 400 saying why."""
    form = SearchForm(request.GET)
    context: dict = {"form": form, "searched": "q" in request.GET, "limit": RESULT_LIMIT}
    error = ""
    if not form.is_valid():
        error = " ".join(e for errors in form.errors.values() for e in errors)
    elif context["searched"]:
        text, scope = form.cleaned_data["q"], form.cleaned_data["scope"]
        try:
            if scope == SearchForm.PEOPLE:
                context["found"] = search_people_and_rooms(request.user, text)
            else:
                context["results"] = search_messages(request.user, text)
        except SearchError as problem:
            error = str(problem)
    if request.htmx:
        if error:
            # Like every refused htmx request: a plain-text reason, shown by the page's toast.
            return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
        return render(request, "rooms/search.html#results", context)
    context["error"] = error
    return render(request, "rooms/search.html", context, status=400 if error else 200)


@login_required
@require_GET
def room_list_fragment(request: HttpRequest) -> HttpResponse:
    """The conversation list, or with `after` the page of it that follows that place."""
    after = request.GET.get("after")
    if after is None:
        return render(request, "rooms/room_list.html")
    category = request.GET.get("category") or None
    if category is not None and category not in CATEGORY_FILTERS:
        raise ValidationError("There is no such category of conversations.")
    page = room_page(request.user, category=category, after=ListCursor.parse(after))
    with_room_item_html(page.memberships)
    context = {"page": page, "category": category}
    return render(request, "rooms/room_list.html#page_items", context)


@login_required
@require_GET
def emoji_catalogue(request: HttpRequest) -> HttpResponse:
    response = JsonResponse(emoji_names(), safe=False)
    response["Cache-Control"] = "private, max-age=86400"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def notepad(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    if request.method == "POST":
        data = check(NoteForm(request.POST))
        try:
            note = actions.do_save_note(
                request.user, room=membership.room, body=data["body"], version=data["version"]
            )
        except actions.NoteConflict as conflict:
            return text_response(conflict.messages[0], status=409)
        return JsonResponse(
            {"version": note.version, "html": note.body_html, "saved": note.updated.isoformat()}
        )
    note = note_for(request.user, membership.room)
    return render(request, "rooms/notepad.html#panel", {"note": note, "room": membership.room})


@login_required
@require_GET
def note_show(request: HttpRequest, note_id: int) -> HttpResponse:
    note = access_note(request.user, note_id)
    return render(request, "rooms/notepad.html#preview", {"note": note})


# Files & Links: the chunk API, the panel, previews and downloads -----------------------------


def _upload_state(upload: Upload) -> dict:
    if upload.attachment_id is not None:
        received = list(range(upload.chunk_count))
    else:
        received = list(UploadChunk.objects.filter(upload=upload).values_list("index", flat=True))
    return {
        "id": upload.pk,
        "room": upload.room_id,
        "name": upload.name,
        "size": upload.size,
        "chunk_size": upload.chunk_size,
        "chunk_count": upload.chunk_count,
        "received": received,
        "attachment": upload.attachment_id,
    }


@login_required
@require_POST
@ratelimit.limit("upload")
def upload_create(request: HttpRequest, room_id: int) -> HttpResponse:
    """Start an upload: name, size and declared type in; the upload's id and chunk size out."""
    membership = access_membership(request.user, room_id)
    data = check(UploadForm(request.POST))
    try:
        upload = actions.do_create_upload(
            request.user,
            room=membership.room,
            name=data["name"],
            size=data["size"],
            declared_type=data["type"],
        )
    except files.FileTooLarge as error:
        return text_response(" ".join(error.messages), status=413)
    return JsonResponse(_upload_state(upload), status=201)


@login_required
@require_http_methods(["GET", "DELETE"])
def upload_detail(request: HttpRequest, upload_id: int) -> HttpResponse:
    """GET: which chunks are stored (to resume). DELETE: cancel the upload."""
    upload = files.access_upload(request.user, upload_id)
    if request.method == "DELETE":
        actions.do_cancel_upload(request.user, upload=upload)
        return HttpResponse(status=204)
    return JsonResponse(_upload_state(upload))


@reads_body_as_stream
@login_required
@require_http_methods(["PUT"])
def upload_chunk(request: HttpRequest, upload_id: int, index: int) -> HttpResponse:
    """Store chunk `index`, the raw request body, read as a stream in bounded blocks.

    Session, CSRF token, rate limit, the upload's owner and room, and the chunk's index and
    Content-Length are all checked before a byte of the body is read. Under ASGI the body comes
    from the server's receive loop as it is copied (`reads_body_as_stream`), not spooled first.
    """
    ratelimit.check("upload_chunk", user_id=request.user.pk, ip=ratelimit.client_ip(request))
    upload = files.access_upload(request.user, upload_id)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return text_response("A chunk needs a Content-Length.", status=411)
    try:
        actions.check_chunk(upload, index, length)
    except files.FileTooLarge as error:
        return text_response(" ".join(error.messages), status=413)
    stored = actions.do_store_chunk(
        request.user, upload=upload, index=index, source=request, length=length
    )
    return JsonResponse({"index": index, "stored": True, "duplicate": not stored})


@login_required
@require_POST
def upload_finish(request: HttpRequest, upload_id: int) -> HttpResponse:
    upload = files.access_upload(request.user, upload_id)
    attachment = actions.do_finish_upload(request.user, upload=upload)
    return JsonResponse(
        {
            "id": upload.pk,
            "attachment": attachment.pk,
            "name": attachment.name,
            "size": attachment.size,
            "content_type": attachment.content_type,
            "kind": attachment.kind,
        }
    )


def _files_context(request: HttpRequest, room_id: int) -> dict:
    membership = access_membership(request.user, room_id)
    query = check(FilesPageForm(request.GET))
    found, more = files.files_page(room_id, q=query["q"], page=query["page"])
    return {
        "membership": membership,
        "room": membership.room,
        "files": found,
        "more_files": more,
        "next_page": query["page"] + 1,
        "q": query["q"],
    }


@login_required
@require_GET
def room_files(request: HttpRequest, room_id: int) -> HttpResponse:
    """The Files & Links panel: the newest files and links, with a search box for files."""
    context = _files_context(request, room_id)
    context["links"], context["more_links"] = files.links_page(room_id)
    context["next_links_page"] = 2
    return render(request, "rooms/files.html#panel", context)


@login_required
@require_GET
def room_file_list(request: HttpRequest, room_id: int) -> HttpResponse:
    return render(request, "rooms/files.html#file_items", _files_context(request, room_id))


@login_required
@require_GET
def room_link_list(request: HttpRequest, room_id: int) -> HttpResponse:
    membership = access_membership(request.user, room_id)
    page = check(FilesPageForm(request.GET))["page"]
    found, more = files.links_page(room_id, page=page)
    return render(
        request,
        "rooms/files.html#link_items",
        {"room": membership.room, "links": found, "more_links": more, "next_links_page": page + 1},
    )


@login_required
@require_GET
def file_preview(request: HttpRequest, file_id: int) -> HttpResponse:
    attachment, membership = files.access_attachment(request.user, file_id)
    return render(
        request,
        "rooms/files.html#preview",
        {"file": attachment, "can_delete": files.can_delete(request.user, attachment, membership)},
    )


@login_required
@require_GET
def file_download(request: HttpRequest, file_id: int) -> HttpResponse:
    attachment, _ = files.access_attachment(request.user, file_id)
    return files.download_response(request, attachment, inline=False)


@login_required
@require_GET
def file_view(request: HttpRequest, file_id: int) -> HttpResponse:
    """The file for a preview: inline for images, video, audio and PDF, else a download."""
    attachment, _ = files.access_attachment(request.user, file_id)
    return files.download_response(request, attachment, inline=True)


@login_required
@require_GET
def file_thumbnail(request: HttpRequest, file_id: int) -> HttpResponse:
    attachment, _ = files.access_attachment(request.user, file_id)
    return files.thumbnail_response(request, attachment)


@login_required
@require_POST
def file_delete(request: HttpRequest, file_id: int) -> HttpResponse:
    attachment, _ = files.access_attachment(request.user, file_id)
    actions.do_delete_attachment(request.user, attachment=attachment)
    response = HttpResponse()
    # The panel and an open preview drop the file; the message updates through the socket.
    response["HX-Trigger"] = json.dumps({"parley:file-deleted": {"id": attachment.pk}})
    return response
