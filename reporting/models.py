"""Per-subject export date shifts, the sponsor access log and report runs.

None of these is typed in: date shifts are drawn once per subject, the access log only grows,
and a report run is the bookkeeping of one job. (Derived episodes live with the course they are
derived from: ``toxicity.models.Episode``.)
"""
from django.conf import settings
from django.db import models
from django.db.models import Q

from trials.models import Subject, Trial


class DateShift(models.Model):
    """The per-subject offset added to every date of the subject in de-identified output.

    Drawn at random once and never shown to sponsor or DSMB roles (data-dictionary.md,
    ``export_date_shift``); the same subject is shifted alike in every dataset and every pull.
    """

    subject = models.OneToOneField(Subject, on_delete=models.CASCADE, related_name="date_shift")
    days = models.SmallIntegerField()

    scope_trial, scope_site = "subject__trial", "subject__site"

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(days=0), name="date_shift_nonzero")]


class AccessLogEntry(models.Model):
    """Who read what, when, and how many rows: every export, and every API read by sponsor or DSMB."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, null=True, related_name="+")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    query = models.CharField(max_length=1000, blank=True)
    resource = models.CharField(max_length=60, help_text="API resource or export dataset.")
    status_code = models.PositiveSmallIntegerField()
    row_count = models.PositiveIntegerField(null=True, help_text="Rows sent; empty when the transfer broke off.")
    completed = models.BooleanField(default=True, help_text="False when a streamed export was interrupted.")

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "access log entries"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.user} {self.method} {self.path} ({self.row_count} rows)"


class ReportKind(models.TextChoices):
    AE_REPORT = "ae_report", "Adverse-event report"
    DSMB_OPEN = "dsmb_open", "DSMB report, open (arms pooled)"
    DSMB_CLOSED = "dsmb_closed", "DSMB report, closed (by cohort; DSMB only)"


class ReportRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ReportRun(models.Model):
    """One build of a report PDF at a data cut (reports.md, "DSMB report"); the UI and API show this row.

    Not audited: it is bookkeeping of a job, written with plain updates while the job runs. The
    report itself is frozen by ``data_cut`` and ``data_hash`` (the SHA-256 of the data it used), and
    the PDF is kept in the row so a download is always the bytes that were built.
    """

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="report_runs")
    kind = models.CharField(max_length=12, choices=ReportKind.choices)
    data_cut = models.DateTimeField(help_text="The report uses the data as they stood at this moment (UTC).")
    status = models.CharField(max_length=8, choices=ReportRunStatus.choices, default=ReportRunStatus.QUEUED)
    progress_done = models.PositiveIntegerField(default=0, help_text="Steps finished.")
    progress_total = models.PositiveIntegerField(default=0, help_text="Steps in all (known once the job runs).")
    step = models.CharField(max_length=200, blank=True, help_text="What the job is doing now.")
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    data_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 (hex) of the data the report used.")
    file = models.BinaryField(null=True, blank=True, editable=False, help_text="The PDF.")
    filename = models.CharField(max_length=200, blank=True)
    size_bytes = models.PositiveIntegerField(null=True, blank=True)

    scope_trial, scope_site = "trial", None

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["trial", "kind"], name="report_run_trial_kind")]

    def __str__(self):
        return f"{self.get_kind_display()} of {self.trial} at {self.data_cut:%Y-%m-%d %H:%M} ({self.status})"
