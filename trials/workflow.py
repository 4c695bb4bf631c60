"""Source-data verification, locks and casebook signatures (workflow.md).

A form is any clinical record, named by its model label and id. Verification holds for the
version it verified: any later change to the form (a new version) clears it. Locks refuse
writes (HTTP 423) to a form, a subject's casebook or a whole trial until unlocked with a reason.
A signature covers a subject's casebook; any later change to the subject's data voids it.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from .audit import AuditedQuerySet


class SourceVerification(models.Model):
    subject = models.ForeignKey("trials.Subject", on_delete=models.PROTECT, related_name="verifications")
    record_type = models.CharField(max_length=40)
    record_id = models.PositiveBigIntegerField()
    verified_version = models.PositiveIntegerField(help_text="The form version the monitor verified.")
    verified_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verified_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True, db_index=True)
    history = HistoricalRecords()
    objects = AuditedQuerySet.as_manager()  # no update()/bulk writes/queryset delete: they bypass the history

    scope_trial, scope_site = "subject__trial", "subject__site"

    class Meta:
        ordering = ["-verified_at", "-id"]
        indexes = [models.Index(fields=["record_type", "record_id"], name="sdv_record_idx")]


class LockScope(models.TextChoices):
    FORM = "form", "One form"
    CASEBOOK = "casebook", "A subject's casebook"
    TRIAL = "trial", "The whole trial"


class Lock(models.Model):
    scope = models.CharField(max_length=8, choices=LockScope.choices)
    trial = models.ForeignKey("trials.Trial", on_delete=models.PROTECT, related_name="locks")
    site = models.ForeignKey("trials.Site", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    subject = models.ForeignKey("trials.Subject", null=True, blank=True, on_delete=models.PROTECT, related_name="locks")
    record_type = models.CharField(max_length=40, blank=True)
    record_id = models.PositiveBigIntegerField(null=True, blank=True)
    locked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    locked_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True, db_index=True)
    lock_reason = models.TextField(blank=True)
    unlocked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    unlocked_at = models.DateTimeField(null=True, blank=True)
    unlock_reason = models.TextField(blank=True)
    history = HistoricalRecords()
    objects = AuditedQuerySet.as_manager()  # no update()/bulk writes/queryset delete: they bypass the history

    scope_trial, scope_site = "trial", "site"

    class Meta:
        ordering = ["-locked_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "trial", "subject", "record_type", "record_id"],
                condition=Q(unlocked_at__isnull=True) & Q(subject__isnull=False) & Q(record_id__isnull=False),
                name="lock_one_active_per_form",
            ),
            models.UniqueConstraint(
                fields=["trial", "subject"],
                condition=Q(unlocked_at__isnull=True, scope="casebook"),
                name="lock_one_active_per_casebook",
            ),
            models.UniqueConstraint(
                fields=["trial"], condition=Q(unlocked_at__isnull=True, scope="trial"), name="lock_one_active_per_trial"
            ),
        ]

    @property
    def active(self) -> bool:
        return self.unlocked_at is None


class CasebookSignature(models.Model):
    """21 CFR Part 11 style: the signer's name, the date-time and the meaning of the signature."""

    MEANING = "reviewed and approved"

    subject = models.ForeignKey("trials.Subject", on_delete=models.PROTECT, related_name="signatures")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signer_name = models.CharField(max_length=200)
    meaning = models.CharField(max_length=60, default=MEANING)
    signed_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True, db_index=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True)
    history = HistoricalRecords()
    objects = AuditedQuerySet.as_manager()  # no update()/bulk writes/queryset delete: they bypass the history

    scope_trial, scope_site = "subject__trial", "subject__site"

    class Meta:
        ordering = ["-signed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject"], condition=Q(voided_at__isnull=True), name="signature_one_active_per_casebook"
            ),
        ]

    @property
    def valid(self) -> bool:
        return self.voided_at is None
