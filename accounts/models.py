from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class ConversationView(models.TextChoices):
    RECENT = "recent", "Recent"
    CATEGORIZED = "categorized", "Categorized"


class User(AbstractUser):
    display_name = models.CharField(max_length=150, blank=True)
    conversation_view = models.CharField(
        max_length=16, choices=ConversationView.choices, default=ConversationView.RECENT
    )
    # False swaps the composer's keys: Enter adds a line and Ctrl+Enter sends.
    enter_sends = models.BooleanField(default=True)

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.display_name or self.get_full_name() or self.username


class Contact(models.Model):
    """An entry someone added to their address book by hand.

    People who share a room are in each other's address book without a row here.
    """

    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="contact_entries")
    person = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "person"], name="contact_unique_person"),
            models.CheckConstraint(
                condition=~models.Q(owner=models.F("person")), name="contact_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner} → {self.person}"
