from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.urls import reverse

from .models import Report


@shared_task(acks_late=True)
def email_staff_about_report(report_id: int) -> int:
    """Tell staff a report arrived. Safe to run twice: at worst staff get the same note again."""
    report = Report.objects.filter(pk=report_id).select_related("reported").first()
    if report is None:
        return 0
    staff = list(
        get_user_model()
        .objects.filter(is_staff=True, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not staff:
        return 0
    link = settings.PARLEY_BASE_URL + reverse("admin:moderation_report_change", args=[report.pk])
    send_mail(
        subject=f"New report: {report.get_reason_display()[:60]}",
        message=f"A message from {report.reported.name} was reported.\n\nReview it: {link}\n",
        from_email=None,
        recipient_list=staff,
    )
    return len(staff)
