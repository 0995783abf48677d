from __future__ import annotations

from django.conf import settings
from django.db import models


class Reason(models.TextChoices):
    SPEND_MONEY = (
        "spend_money",
        "Asks you to spend money to submit a proposal (gift cards, background checks, equipment)",
    )
    CONTACT_INFO = (
        "contact_info",
        "Asks for your contact information (email, phone) before a contract starts",
    )
    OFF_PLATFORM_PAYMENT = (
        "off_platform_payment",
        "Asks you to accept a payment upfront or outside the platform",
    )
    BUY_ACCOUNT = "buy_account", "Wants to purchase your account"
    MISREPRESENTING = "misrepresenting", "Is misrepresenting their skills or skill level"
    SCAM_LINK = "scam_link", "Sent a suspicious link or something that looks like a scam"
    ABUSE = "abuse", "Sent threatening or abusive messages"
    OTHER = "other", "Something else"


class ReportStatus(models.TextChoices):
    OPEN = "open", "Open"
    REVIEWED = "reviewed", "Reviewed"


class Decision(models.TextChoices):
    DISMISS = "dismiss", "Dismissed"
    REMOVE_MESSAGE = "remove_message", "Message removed"
    WARN = "warn", "User warned"
    SUSPEND = "suspend", "User suspended"
    END_CONTRACT = "end_contract", "Contract ended"


class Report(models.Model):
    message = models.ForeignKey("rooms.Message", on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports_filed"
    )
    # Denormalised so the queue can search and filter by the reported person.
    reported = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports_against"
    )
    # The text as it was when reported, kept for staff even after the message is removed.
    message_text = models.TextField(blank=True)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    description = models.TextField(blank=True, max_length=2000)
    status = models.CharField(
        max_length=16, choices=ReportStatus.choices, default=ReportStatus.OPEN, db_index=True
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created"]
        constraints = [
            # Reporting the same message again updates the open report instead.
            models.UniqueConstraint(
                fields=["message", "reporter"],
                condition=models.Q(status="open"),
                name="report_one_open_per_reporter",
            ),
        ]

    def __str__(self) -> str:
        return f"Report {self.pk}: {self.get_reason_display()}"


class ReviewAction(models.Model):
    """What staff did about a report, and who did it when."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="actions")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=32, choices=Decision.choices)
    note = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created"]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.staff} on report {self.report_id}"


class Block(models.Model):
    blocker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks_made"
    )
    blocked = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks_received"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="block_unique_pair"),
            models.CheckConstraint(
                condition=~models.Q(blocker=models.F("blocked")), name="block_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocks {self.blocked_id}"


class Warning(models.Model):
    """A private warning from staff, shown to the warned person only."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="warnings"
    )
    report = models.ForeignKey(Report, null=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True)
    seen = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"Warning to {self.user_id}"
