"""Discrepancy management (workflow.md, checks.md): queries, their threads, consistency-job runs."""
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from trials.models import Subject

class QueryStatus(models.TextChoices):
    OPEN = "open", "Open"
    ANSWERED = "answered", "Answered"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"


class QueryOrigin(models.TextChoices):
    RULE = "rule", "Raised by a rule"
    MANUAL = "manual", "Raised by a person"


ACTIVE_QUERY_STATUSES = (QueryStatus.OPEN, QueryStatus.ANSWERED)


class CheckRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class CheckRun(models.Model):
    """One run of the consistency job over a trial; the UI and API show this row, not Celery."""

    trial = models.ForeignKey("trials.Trial", on_delete=models.PROTECT, related_name="check_runs")
    status = models.CharField(max_length=10, choices=CheckRunStatus.choices, default=CheckRunStatus.QUEUED)
    total = models.PositiveIntegerField(default=0, help_text="Subjects to check.")
    done = models.PositiveIntegerField(default=0, help_text="Subjects checked.")
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.JSONField(default=list, help_text="Indexes of finished chunks (a re-delivered chunk counts once).")
    opened = models.PositiveIntegerField(default=0)
    auto_closed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    scope_trial, scope_site = "trial", None

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"check run {self.pk} of {self.trial} ({self.status})"


class Query(models.Model):
    """A question on one field of one record, raised by a rule or a person (workflow.md)."""

    trial = models.ForeignKey("trials.Trial", on_delete=models.PROTECT, related_name="queries")
    site = models.ForeignKey("trials.Site", on_delete=models.PROTECT, related_name="queries")
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="queries")
    record_type = models.CharField(max_length=40, help_text='The record\'s model label, e.g. "toxicity.dailyassessment".')
    record_id = models.PositiveBigIntegerField()
    field = models.CharField(max_length=60)
    origin = models.CharField(max_length=6, choices=QueryOrigin.choices)
    rule_id = models.CharField(max_length=40, blank=True, db_index=True)
    status = models.CharField(max_length=10, choices=QueryStatus.choices, default=QueryStatus.OPEN, db_index=True)
    text = models.TextField(help_text="The question, in words a coordinator understands.")
    values = models.JSONField(default=dict, help_text="The value(s) at raise time.")
    assignee_role = models.CharField(max_length=16, default="coordinator")
    raised_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    raised_in_run = models.ForeignKey(CheckRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    closed_in_run = models.ForeignKey(CheckRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    suppressed_values = models.JSONField(
        null=True, blank=True,
        help_text="Closed by a monitor with justification while the rule failed: the rule does not reopen it for these values.",
    )
    opened_at = models.DateTimeField(auto_now_add=True, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    modified_at = models.DateTimeField(auto_now=True, db_index=True)
    history = HistoricalRecords()

    scope_trial, scope_site = "trial", "site"

    class Meta:
        ordering = ["-opened_at", "-id"]
        verbose_name_plural = "queries"
        constraints = [
            models.UniqueConstraint(
                fields=["rule_id", "record_type", "record_id", "field"],
                condition=Q(origin="rule", status__in=["open", "answered"]),
                name="query_one_open_per_rule_record_field",
            ),
        ]
        indexes = [models.Index(fields=["record_type", "record_id"], name="query_record_idx")]

    def __str__(self):
        return f"query {self.pk} {self.rule_id or 'manual'} on {self.record_type}:{self.record_id}.{self.field}"


class QueryMessage(models.Model):
    """One entry of a query's thread; transitions leave one too (append-only)."""

    query = models.ForeignKey(Query, on_delete=models.PROTECT, related_name="messages")
    author = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                               help_text="Empty for the system (rule raised or auto-closed).")
    role = models.CharField(max_length=16, help_text='The author\'s role, or "system".')
    action = models.CharField(max_length=10, default="message",
                              help_text="message, raise, answer, close, reopen, cancel or auto_close")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    scope_trial, scope_site = "query__trial", "query__site"

    class Meta:
        ordering = ["created_at", "id"]
