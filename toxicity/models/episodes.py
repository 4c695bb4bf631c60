"""Derived CRS/ICANS episodes and the investigator's review of each (reports.md, episodes and
seriousness; data-dictionary.md, episode_review)."""
from django.db import models
from django.db.models import Q

from trials.models import Subject

from ..choices import AeOutcome, Relatedness
from .daily import SubjectRecord


class EpisodeKind(models.TextChoices):
    CRS = "crs", "CRS"
    ICANS = "icans", "ICANS"


class ReviewStatus(models.TextChoices):
    MISSING = "missing", "Not reviewed"
    CURRENT = "current", "Reviewed"
    OUTDATED = "outdated", "Changed since the review"


class EpisodeReview(SubjectRecord):
    """The investigator's review of one derived episode: seriousness criteria, relatedness and
    outcome (ICH E2A). Keyed by subject, kind and onset date, so it survives re-derivation while
    the onset date holds; ``reviewed_episode`` keeps the episode as it stood when reviewed, and
    the episode shows the review as outdated when it changes."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="episode_reviews")
    kind = models.CharField(max_length=5, choices=EpisodeKind.choices)
    onset_date = models.DateField(help_text="Onset date of the derived episode reviewed.")
    serious = models.BooleanField(default=False, help_text="The investigator considers the episode serious.")
    seriousness = models.JSONField(
        default=list, blank=True,
        help_text="Seriousness criteria the investigator records (codes); required when serious, empty otherwise.",
    )
    relatedness = models.CharField(max_length=12, choices=Relatedness.choices,
                                   help_text="Relationship to the study treatment (investigator).")
    outcome = models.CharField(max_length=24, choices=AeOutcome.choices)
    comment = models.TextField(blank=True)
    reviewed_episode = models.JSONField(
        default=dict, editable=False,
        help_text="The episode as it stood when reviewed (max grade, resolution, derived seriousness).",
    )

    class Meta:
        ordering = ["subject", "kind", "onset_date"]
        indexes = [models.Index(fields=["subject_trial", "id"], name="episode_review_trial_id_idx")]
        constraints = [
            models.UniqueConstraint(fields=["subject", "kind", "onset_date"], condition=Q(voided=False),
                                    name="episode_review_one_per_episode"),
        ]

    def __str__(self):
        return f"{self.subject} {self.kind} episode from {self.onset_date}: review"


class Episode(models.Model):
    """A CRS or ICANS episode derived from the daily grades (reports.md), and its adverse-event view.

    Never typed in: ``toxicity.course.store`` writes these rows in the same transaction as every
    write of the subject's course. Rows are kept, not replaced, when a subject is re-derived, so
    incremental pulls see changes: an episode that no longer exists after a correction is
    marked ``voided``.
    """

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="episodes")
    kind = models.CharField(max_length=5, choices=EpisodeKind.choices)
    episode_number = models.PositiveSmallIntegerField(help_text="1, 2, ... per subject and kind, in onset order.")
    term = models.CharField(max_length=80)
    scale = models.CharField(max_length=12, help_text="The trial's grading scale for this kind.")
    onset_date = models.DateField()
    onset_study_day = models.SmallIntegerField(null=True)
    max_grade = models.PositiveSmallIntegerField(
        help_text="NE days count by their minimum grade; a floor while has_incomplete_days.")
    max_grade_date = models.DateField()
    resolution_date = models.DateField(null=True, help_text="First resolution day after the episode; empty while ongoing.")
    duration_days = models.PositiveSmallIntegerField(help_text="Resolution - onset; ongoing: up to the last assessment.")
    ongoing = models.BooleanField()
    last_assessment_date = models.DateField()
    has_incomplete_days = models.BooleanField(
        default=False, help_text="An NE day lies inside the episode: max_grade is a floor (shown as '>= n').")
    tocilizumab_doses = models.PositiveSmallIntegerField(default=0)
    corticosteroid_given = models.BooleanField(default=False)
    dexamethasone_equivalent_mg = models.DecimalField(max_digits=9, decimal_places=2, default=0)
    anakinra_doses = models.PositiveSmallIntegerField(default=0)
    siltuximab_doses = models.PositiveSmallIntegerField(default=0)
    plasma_exchange_sessions = models.PositiveSmallIntegerField(default=0)
    plasma_exchange_volume_ml = models.PositiveIntegerField(default=0)
    hemofiltration_sessions = models.PositiveSmallIntegerField(default=0)
    hemofiltration_hours = models.DecimalField(max_digits=7, decimal_places=1, default=0)
    icu_days = models.PositiveSmallIntegerField(default=0)
    seriousness_derived = models.JSONField(
        default=list, help_text="ICH E2A criteria the data prove: death, life_threatening (grade 4), hospitalization (ICU).")
    seriousness = models.JSONField(default=list, help_text="The derived criteria and those the investigator recorded.")
    serious = models.BooleanField(help_text="Any seriousness criterion holds (ICH E2A; not severity).")
    relatedness = models.CharField(max_length=12, blank=True, help_text="The investigator's, from the review.")
    outcome = models.CharField(max_length=24, help_text="recovered, not_recovered, fatal, or the review's.")
    review = models.ForeignKey(EpisodeReview, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    review_status = models.CharField(max_length=8, choices=ReviewStatus.choices, default=ReviewStatus.MISSING)
    voided = models.BooleanField(default=False, help_text="No longer derived from the current data.")
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True, db_index=True)

    scope_trial, scope_site = "subject__trial", "subject__site"

    class Meta:
        ordering = ["subject", "kind", "episode_number"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "kind", "episode_number"], name="episode_number_unique"),
        ]

    def __str__(self):
        return f"{self.subject} {self.kind} episode {self.episode_number}"
