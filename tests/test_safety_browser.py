"""Safety in a real browser (issue 7): reporting, staff review in Django admin, blocking, limits.

alice owns the group room, bob is a member (and the one reported or blocked), carol an admin,
sam is staff. What must arrive live is done in a browser: the staff actions run in the server
process, whose channel layer reaches the other pages. Data that only has to be there before a
page loads is made with the actions directly.
"""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import Page, expect

from accounts.models import User
from conftest import FAST_HASHERS, GENEROUS_RATE_LIMITS, PASSWORD, befriend
from moderation.actions import do_block_user, do_report_message, do_review_report
from moderation.models import Block, Decision, Reason, Report, ReportStatus
from moderation.ratelimit import forget_all
from rooms.actions import do_create_room, do_send_message
from rooms.models import Message, RoomKind
from tests.live import AppServer
from tests.test_browser import message, message_menu, send

pytestmark = pytest.mark.browser

SOMETHING_ELSE = Reason.OTHER.label


@pytest.fixture
def staff(transactional_db) -> User:
    """sam reviews reports: staff, with the permissions the report queue needs."""
    sam = User.objects.create_user(
        username="sam", password=PASSWORD, email="sam@example.com", is_staff=True
    )
    sam.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_report", "change_report"])
    )
    return sam


def report_dialog(page: Page):
    return page.locator("#report-dialog")


def open_report(page: Page, text: str):
    """Open the Report Message dialog of the message that says `text`."""
    message_menu(message(page, text)).get_by_role("menuitem", name="Report Message").click()
    dialog = report_dialog(page)
    expect(dialog.get_by_role("heading", name="Report Message")).to_be_visible()
    return dialog


def members_panel(page: Page):
    page.get_by_role("button", name="Members", exact=True).click()
    panel = page.locator("#members-panel")
    expect(panel).to_be_visible()
    return panel


def block_button(page: Page, person: User):
    return (
        members_panel(page)
        .locator(f'li[data-user="{person.pk}"]')
        .get_by_role("button", name="Block", exact=True)
    )


def admin_login(page: Page, user: User) -> None:
    """Log in to Django admin through its own form."""
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


def apply_admin_action(page: Page, report: Report, label: str) -> None:
    """From the report queue: tick the report, pick the action from the dropdown and run it."""
    page.goto("/admin/moderation/report/")
    page.locator(f'input[name="_selected_action"][value="{report.pk}"]').check()
    page.get_by_label("Action:").select_option(label=label)
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist")).to_contain_text(f"{label}: 1 report(s).")


# Report Message ------------------------------------------------------------------------------


def test_report_a_message_for_each_reason_through_the_options_menu(open_page, room, alice, bob):
    scam = do_send_message(bob, room=room, body="Buy a $200 gift card to apply")
    mine = do_send_message(alice, room=room, body="my own words")
    page = open_page(alice, room.get_absolute_url())
    # Your own messages offer no report.
    own_menu = message_menu(message(page, "my own words"))
    expect(own_menu.get_by_role("menuitem", name="Report Message")).to_be_hidden()
    page.get_by_role("heading", level=1).click()  # a click elsewhere closes the menu
    expect(own_menu).to_be_hidden()

    for reason in [r for r in Reason if r != Reason.OTHER]:
        dialog = open_report(page, "gift card")
        expect(dialog).to_contain_text("They will not be told who reported it.")
        dialog.get_by_role("radio", name=reason.label).check()
        dialog.get_by_role("button", name="Submit").click()
        confirmation = page.get_by_role("status").filter(has_text="we got your report")
        expect(confirmation.get_by_role("heading")).to_have_text("Thanks — we got your report")
        assert Report.objects.get(message=scam).reason == reason  # one open report, updated
        confirmation.get_by_role("button", name="Close").click()
        expect(report_dialog(page)).to_have_count(0)
    assert Report.objects.filter(reporter=alice).count() == 1
    assert not Report.objects.filter(message=mine).exists()


def test_something_else_needs_a_description(open_page, room, alice, bob):
    do_send_message(bob, room=room, body="Send me your password")
    page = open_page(alice, room.get_absolute_url())

    dialog = open_report(page, "your password")
    dialog.get_by_role("radio", name=SOMETHING_ELSE).check()
    dialog.get_by_role("button", name="Submit").click()
    refusal = dialog.get_by_role("alert")
    expect(refusal).to_have_text(re.compile("a description is required for “Something else”"))
    expect(dialog.get_by_role("radio", name=SOMETHING_ELSE)).to_be_checked()
    assert not Report.objects.exists()

    dialog.get_by_label("Description").fill("Asked for my password to 'verify' me")
    dialog.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("heading", name="Thanks — we got your report")).to_be_visible()
    report = Report.objects.get()
    assert (report.reason, report.description) == (
        Reason.OTHER,
        "Asked for my password to 'verify' me",
    )


# Staff review in Django admin ----------------------------------------------------------------


def test_staff_filter_the_queue_open_a_report_and_remove_the_message_live(
    open_page, room, alice, bob, carol, staff
):
    for n in range(1, 6):
        do_send_message(carol, room=room, body=f"earlier {n}")
    scam = do_send_message(bob, room=room, body="Pay me outside Parley, it is cheaper")
    for n in range(1, 6):
        do_send_message(carol, room=room, body=f"later {n}")
    done = do_report_message(alice, message=scam, reason=Reason.OFF_PLATFORM_PAYMENT)
    old = do_send_message(bob, room=room, body="an older scam")
    reviewed = do_report_message(carol, message=old, reason=Reason.SCAM_LINK)
    do_review_report(staff, report=reviewed, decision=Decision.DISMISS)

    carol_page = open_page(carol, room.get_absolute_url())
    expect(message(carol_page, "outside Parley")).to_be_visible()
    admin = open_page(None, "/admin/")
    admin_login(admin, staff)

    admin.goto("/admin/moderation/report/")
    rows = admin.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    filters = admin.locator("#changelist-filter")
    filters.get_by_role("link", name="Open", exact=True).click()
    expect(admin).to_have_url(re.compile(r"status__exact=open"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Bob Jones")
    expect(rows.first).to_contain_text(Reason.OFF_PLATFORM_PAYMENT.label)

    rows.first.get_by_role("link", name=str(done.pk), exact=True).click()
    context = admin.locator(".report-context")
    expect(context.locator("p")).to_have_count(5)
    expect(context.locator("p.reported")).to_contain_text("Pay me outside Parley")
    expect(context).to_contain_text("earlier 4")
    expect(context).to_contain_text("earlier 5")
    expect(context).to_contain_text("later 1")
    expect(context).to_contain_text("later 2")
    expect(context).not_to_contain_text("earlier 3")
    expect(context).not_to_contain_text("later 3")
    expect(admin.locator("#content")).to_contain_text(Reason.OFF_PLATFORM_PAYMENT.label)

    apply_admin_action(admin, done, "Remove message")
    removed = carol_page.locator(f"#msg-{scam.pk}")
    expect(removed.locator(".msg-body")).to_have_text("This message was deleted")
    expect(carol_page.get_by_text("outside Parley")).to_have_count(0)
    assert Message.objects.get(pk=scam.pk).is_deleted
    done.refresh_from_db()
    assert done.status == ReportStatus.REVIEWED
    assert done.actions.get().staff == staff


def test_suspend_user_ends_their_open_page_within_five_seconds(open_page, room, alice, bob, staff):
    scam = do_send_message(bob, room=room, body="I will buy your account")
    report = do_report_message(alice, message=scam, reason=Reason.BUY_ACCOUNT)
    bob_page = open_page(bob, room.get_absolute_url())
    admin = open_page(None, "/admin/")
    admin_login(admin, staff)

    apply_admin_action(admin, report, "Suspend user")
    suspended_at = time.monotonic()
    expect(bob_page).to_have_url(re.compile(r"/accounts/login/"), timeout=5_000)
    assert time.monotonic() - suspended_at <= 5
    expect(bob_page.get_by_role("heading", name="Log in to Parley")).to_be_visible()
    assert not User.objects.get(pk=bob.pk).is_active

    # And they cannot come back in.
    bob_page.get_by_label("Username").fill("bob")
    bob_page.get_by_label("Password").fill(PASSWORD)
    bob_page.get_by_role("button", name="Log in").click()
    expect(bob_page).to_have_url(re.compile(r"/accounts/login/"))
    expect(bob_page.get_by_role("heading", name="Log in to Parley")).to_be_visible()


# Block -------------------------------------------------------------------------------------


def test_block_from_the_member_list_collapses_their_messages_and_unblock_restores_them(
    open_page, room, alice, bob
):
    do_send_message(bob, room=room, body="Hey, check my profile elsewhere")
    alice_page = open_page(alice, room.get_absolute_url())
    bob_page = open_page(bob, room.get_absolute_url())
    theirs = message(alice_page, "check my profile")
    expect(theirs.locator(".msg-body")).to_be_visible()

    asked = []

    def accept(dialog):
        asked.append(dialog.message)
        dialog.accept()

    alice_page.once("dialog", accept)
    block_button(alice_page, bob).click()
    collapsed = alice_page.locator(f'#messages .msg[data-sender="{bob.pk}"]')
    expect(
        collapsed.get_by_role("button", name=re.compile("Message from a blocked person"))
    ).to_be_visible()
    assert asked == ["Block Bob Jones? They will not be told."]
    assert Block.objects.filter(blocker=alice, blocked=bob).exists()
    expect(theirs.locator(".msg-body")).to_be_hidden()
    expect(alice_page.locator("#messages").get_by_text("check my profile")).to_be_hidden()

    # A new message from them arrives collapsed too; a click reveals it.
    expect(alice_page.locator("body")).to_have_attribute("data-live", "connected")
    send(bob_page, "Are you still there?")
    later = message(alice_page, "still there")
    expect(later).to_have_count(1)
    expect(later.locator(".msg-body")).to_be_hidden()
    note = later.get_by_role("button", name=re.compile("Message from a blocked person"))
    expect(note).to_be_visible()
    note.click()
    expect(later.locator(".msg-body")).to_have_text("Are you still there?")
    expect(note).to_be_hidden()
    expect(theirs.locator(".msg-body")).to_be_hidden()  # only the one clicked

    sidebar = alice_page.get_by_role("navigation", name="Conversations")
    sidebar.get_by_label("Settings").click()
    sidebar.get_by_role("menuitem", name="Blocked people").click()
    blocked = alice_page.locator(".people li")
    expect(blocked).to_have_count(1)
    expect(blocked).to_contain_text("Bob Jones")
    blocked.get_by_role("button", name="Unblock").click()
    expect(alice_page.get_by_text("You have not blocked anyone.")).to_be_visible()
    assert not Block.objects.exists()

    alice_page.goto(room.get_absolute_url())
    expect(message(alice_page, "check my profile").locator(".msg-body")).to_be_visible()
    expect(alice_page.get_by_role("button", name=re.compile("blocked person"))).to_have_count(0)


def test_block_is_refused_while_a_contract_is_active(open_page, alice, bob):
    befriend(alice, bob)
    contract = do_create_room(
        alice, kind=RoomKind.CONTRACT, title="Logo design", members=[bob], contract_active=True
    )
    page = open_page(alice, contract.get_absolute_url())

    page.once("dialog", lambda dialog: dialog.accept())
    block_button(page, bob).click()
    toast = page.locator("#toast")
    expect(toast).to_be_visible()
    expect(toast).to_have_text(
        "You can't block Bob Jones while your contract with them is active (“Logo design”). "
        "End the contract first, or report a message to Parley staff."
    )
    assert not Block.objects.exists()
    expect(page).to_have_url(re.compile(rf"/rooms/{contract.pk}/$"))


def test_blocked_people_page_lists_and_unblocks(open_page, room, alice, bob, carol):
    do_block_user(alice, blocked=bob)
    do_block_user(alice, blocked=carol)
    page = open_page(alice, "/safety/blocked/")
    rows = page.locator(".people li")
    expect(rows).to_have_count(2)
    rows.filter(has_text="Carol Chen").get_by_role("button", name="Unblock").click()
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Bob Jones")
    assert list(Block.objects.values_list("blocked__username", flat=True)) == ["bob"]


# Rate limits -------------------------------------------------------------------------------


@pytest.fixture
def strict_server(test_database_url, app_server):
    """A server process of its own that lets a person send 3 messages per 10 seconds."""
    forget_all()
    env = {
        "DATABASE_URL": test_database_url,
        "PASSWORD_HASHERS": ",".join(FAST_HASHERS),
        **GENEROUS_RATE_LIMITS,
        "RATE_LIMIT_SEND": "3",
        # The browser fixture lifts Django's async-safety check in this process only.
        "DJANGO_ALLOW_ASYNC_UNSAFE": "",
    }
    with AppServer(env=env) as server:
        yield server
    forget_all()


def test_sending_too_fast_says_slow_down_in_the_page(open_page, room, alice, strict_server):
    page = open_page(alice, "/")
    # Cookies ignore the port: the same session works on the second server.
    page.goto(f"{strict_server.url}{room.get_absolute_url()}")
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    box = page.get_by_role("textbox", name="Message")
    error = page.locator("#composer").get_by_role("alert")

    # The limit counts in fixed 10-second windows: 7 quick sends put 4 in one window.
    for n in range(1, 8):
        box.fill(f"quick {n}")
        box.press("Enter")
        page.wait_for_function(
            "() => !document.querySelector('#composer-body').value"
            " || !document.querySelector('#composer .composer-error').hidden"
        )
        if error.is_visible():
            break
    expect(error).to_have_text(re.compile(r"^Slow down — try again in \d+ seconds\.$"))
    seconds = int(re.search(r"\d+", error.inner_text()).group())
    assert 1 <= seconds <= 11
    expect(box).to_have_value(f"quick {n}")  # nothing typed is lost
    sent = Message.objects.filter(room=room).count()
    assert 3 <= sent == n - 1
    expect(page.locator("#messages .msg")).to_have_count(sent)
