"""Daily CRS/ICANS assessments, the rescue-therapy logs and typed-in adverse events (data-dictionary.md).

An assessment stores the raw observations of the worst moment of one site-local calendar day
and, derived on every save by the grading engine, the grades on the trial's scales, the flags
and the reasons, with the engine version. Raw components are kept so any scale can be
recomputed (grading.md, "Older scales").
"""
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from trials.audit import ClinicalModel
from trials.models import Subject, weight_field

from .choices import (
    AeOutcome,
    Anticytokine,
    CerebralEdema,
    Consciousness,
    Corticosteroid,
    CtcaeVersion,
    HemofiltrationModality,
    IceNotAssessable,
    IcuReason,
    Indication,
    IntubationReason,
    MotorWeakness,
    OxygenDevice,
    Relatedness,
    ReplacementFluid,
    Route,
    Seizure,
    Seriousness,
)


def grade_field(help_text):
    """A derived grade 0-5; NULL is "NE" (not evaluable), which always comes with a flag."""
    return models.PositiveSmallIntegerField(null=True, editable=False, help_text=help_text)


def reported_grade_field(help_text):
    return models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(5)], help_text=help_text)


class SubjectRecord(ClinicalModel):
    """A clinical record of one subject, scoped by the subject's trial and site.

    ``subject_trial`` repeats the subject's trial so that a trial's rows are one index range
    (``(subject_trial, id)``): through the join, the first page of a trial's list walked the whole
    primary key when another trial held a million earlier rows. It is derived and immutable, so
    the audit history does not record it (``trials.audit``); history tables scope through the
    subject (``history_scope_trial``).
    """

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="+")
    subject_trial = models.ForeignKey(
        "trials.Trial", on_delete=models.PROTECT, related_name="+", editable=False, db_index=False,
        help_text="The subject's trial, copied at creation for indexed scoping "
                  "(a subject never changes trial; a record never changes subject)",
    )
    scope_trial, scope_site = "subject_trial", "subject__site"
    history_scope_trial = "subject__trial"

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self._state.adding and self.subject_trial_id is None:
            self.subject_trial_id = self.subject.trial_id
        super().save(*args, **kwargs)

    @classmethod
    def before_bulk_insert(cls, objs: list["SubjectRecord"]) -> None:
        """``trials.bulk.bulk_insert`` writes rows without ``save()``: fill ``subject_trial`` as
        ``save()`` does, from the subjects in memory, else in one query for the others."""
        subject = cls._meta.get_field("subject")
        todo = [o for o in objs if o.subject_trial_id is None]
        for o in todo:
            if subject.is_cached(o):
                o.subject_trial_id = o.subject.trial_id
        rest = {o.subject_id for o in todo if o.subject_trial_id is None}
        if rest:
            trial_of = dict(Subject.objects.filter(pk__in=rest).values_list("pk", "trial_id"))
            for o in todo:
                if o.subject_trial_id is None:
                    o.subject_trial_id = trial_of.get(o.subject_id)


class DailyAssessment(SubjectRecord):
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="assessments")
    assessment_date = models.DateField(help_text="Site-local calendar date; the worst state of the day.")
    study_day = models.SmallIntegerField(null=True, editable=False, help_text="Derived: date - day 0.")
    # CRS
    temperature_max_c = models.DecimalField(
        max_digits=4, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal("25.0")), MaxValueValidator(Decimal("45.0"))],
        help_text="Highest temperature of the day in °C (25.0-45.0); empty = not measured.",
    )
    fever_other_cause = models.BooleanField(default=False, help_text="Fever attributed to another cause (R-CRS-12).")
    antipyretic_given = models.BooleanField(default=False, help_text="Antipyretic given this day (R-CRS-2).")
    hypotension = models.BooleanField(default=False)
    hypotension_other_cause = models.BooleanField(default=False)
    vasopressors = models.JSONField(
        default=list, blank=True,
        help_text="Agents for hypotension running at the same time at the worst moment of the day.",
    )
    vasopressin_other_indication = models.BooleanField(default=False, help_text="Vasopressin given for another reason (R-CRS-7).")
    hypoxia = models.BooleanField(default=False, help_text="Supplemental O2 needed for a deficit (R-CRS-6).")
    hypoxia_other_cause = models.BooleanField(default=False)
    oxygen_device = models.CharField(max_length=24, choices=OxygenDevice.choices, default=OxygenDevice.NONE,
                                     help_text="The highest support of the day.")
    oxygen_flow_l_min = models.DecimalField(
        max_digits=4, decimal_places=1, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("80"))],
        help_text="L/min; required for nasal cannula and high-flow cannula (0-80).",
    )
    fio2_percent = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(21), MaxValueValidator(100)], help_text="21-100 %"
    )
    intubation_reason = models.CharField(max_length=20, choices=IntubationReason.choices, blank=True)
    # ICANS
    ice_score = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(10)],
                                                 help_text="ICE 0-10; empty when not assessable.")
    ice_not_assessable = models.CharField(max_length=12, choices=IceNotAssessable.choices, blank=True)
    capd_score = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(32)],
                                                  help_text="CAPD 0-32: children under 12 or developmental delay.")
    capd_unable = models.BooleanField(default=False, help_text="Unable to perform CAPD.")
    consciousness = models.CharField(max_length=24, choices=Consciousness.choices, blank=True)
    consciousness_other_cause = models.BooleanField(default=False)
    seizure = models.CharField(max_length=24, choices=Seizure.choices, default=Seizure.NONE)
    seizure_other_cause = models.BooleanField(default=False)
    motor_weakness = models.CharField(max_length=12, choices=MotorWeakness.choices, default=MotorWeakness.NONE)
    motor_other_cause = models.BooleanField(default=False)
    cerebral_edema = models.CharField(max_length=20, choices=CerebralEdema.choices, default=CerebralEdema.NONE)
    cerebral_edema_other_cause = models.BooleanField(default=False, help_text="Includes intracranial hemorrhage (R-ICANS-5).")
    crs_grade_reported = reported_grade_field("The investigator's CRS grade on the trial's CRS scale.")
    icans_grade_reported = reported_grade_field("The investigator's ICANS grade on the trial's ICANS scale.")
    # Derived by the grading engine on every save
    crs_grade_derived = grade_field("On the trial's CRS scale; empty = NE.")
    icans_grade_derived = grade_field("On the trial's ICANS scale; empty = NE.")
    ctcae_crs_grade_derived = grade_field("Always CTCAE v5.0; empty = NE.")
    crs_scale = models.CharField(max_length=12, editable=False, blank=True)
    icans_scale = models.CharField(max_length=12, editable=False, blank=True)
    engine_version = models.CharField(max_length=20, editable=False, blank=True)
    flags = models.JSONField(default=list, editable=False)
    reasons = models.JSONField(default=list, editable=False)

    class Meta:
        ordering = ["subject", "assessment_date"]
        indexes = [models.Index(fields=["subject_trial", "id"], name="assessment_trial_id_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "assessment_date"], condition=Q(voided=False), name="assessment_one_per_subject_day"
            ),
            models.CheckConstraint(
                condition=Q(temperature_max_c__isnull=True) | Q(temperature_max_c__gte=25, temperature_max_c__lte=45),
                name="assessment_temperature_max_c_range",
            ),
            models.CheckConstraint(
                condition=Q(oxygen_flow_l_min__isnull=True) | Q(oxygen_flow_l_min__gte=0, oxygen_flow_l_min__lte=80),
                name="assessment_oxygen_flow_l_min_range",
            ),
            models.CheckConstraint(
                condition=Q(fio2_percent__isnull=True) | Q(fio2_percent__gte=21, fio2_percent__lte=100),
                name="assessment_fio2_percent_range",
            ),
            models.CheckConstraint(condition=Q(ice_score__isnull=True) | Q(ice_score__lte=10), name="assessment_ice_score_range"),
            models.CheckConstraint(condition=Q(capd_score__isnull=True) | Q(capd_score__lte=32), name="assessment_capd_score_range"),
            models.CheckConstraint(
                condition=Q(crs_grade_reported__isnull=True) | Q(crs_grade_reported__lte=5), name="assessment_crs_grade_reported_range"
            ),
            models.CheckConstraint(
                condition=Q(icans_grade_reported__isnull=True) | Q(icans_grade_reported__lte=5),
                name="assessment_icans_grade_reported_range",
            ),
        ]

    def __str__(self):
        return f"{self.subject} assessment {self.assessment_date}"


def dose_mg_field(**kwargs):
    return models.DecimalField(max_digits=8, decimal_places=2, help_text="mg", **kwargs)


class TocilizumabDose(SubjectRecord):
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="tocilizumab_doses")
    administered_at = models.DateTimeField(help_text="Start of the infusion.")
    dose_mg = dose_mg_field()
    weight_kg = weight_field(help_text="kg (0.5-350), required to check the dose")
    indication = models.CharField(max_length=12, choices=Indication.choices)

    class Meta:
        ordering = ["subject", "administered_at"]
        indexes = [models.Index(fields=["subject_trial", "id"], name="toci_trial_id_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(dose_mg__gt=0, dose_mg__lte=1600), name="toci_dose_mg_range"),
        ]


class CorticosteroidDose(SubjectRecord):
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="corticosteroid_doses")
    drug = models.CharField(max_length=20, choices=Corticosteroid.choices)
    administered_at = models.DateTimeField()
    dose_mg = dose_mg_field()
    route = models.CharField(max_length=8, choices=Route.choices)
    indication = models.CharField(max_length=12, choices=Indication.choices)

    class Meta:
        ordering = ["subject", "administered_at"]
        indexes = [models.Index(fields=["subject_trial", "id"], name="steroid_trial_id_idx")]
        constraints = [models.CheckConstraint(condition=Q(dose_mg__gt=0), name="steroid_dose_mg_positive")]


class AnticytokineDose(SubjectRecord):
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="anticytokine_doses")
    drug = models.CharField(max_length=12, choices=Anticytokine.choices)
    administered_at = models.DateTimeField()
    dose_mg = dose_mg_field()
    weight_kg = weight_field()
    route = models.CharField(max_length=8, choices=Route.choices)
    indication = models.CharField(max_length=12, choices=Indication.choices)

    class Meta:
        ordering = ["subject", "administered_at"]
        indexes = [models.Index(fields=["subject_trial", "id"], name="anticytokine_trial_id_idx")]
        constraints = [models.CheckConstraint(condition=Q(dose_mg__gt=0), name="anticytokine_dose_mg_positive")]


class PlasmaExchange(SubjectRecord):
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="plasma_exchanges")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    plasma_volume_exchanged_ml = models.PositiveIntegerField(help_text="mL exchanged")
    replacement_fluid = models.CharField(max_length=16, choices=ReplacementFluid.choices)
    hematocrit_fraction = models.DecimalField(
        max_digits=3, decimal_places=2,
        validators=[MinValueValidator(Decimal("0.10")), MaxValueValidator(Decimal("0.70"))],
        help_text="0.10-0.70 (a fraction, not %)",
    )
    weight_kg = weight_field()
    estimated_plasma_volume_ml = models.PositiveIntegerField(
        editable=False, null=True, help_text="Derived: 65 x weight_kg x (1 - hematocrit)."
    )
    plasma_volumes_exchanged = models.DecimalField(
        max_digits=4, decimal_places=2, editable=False, null=True, help_text="Derived: exchanged / estimated plasma volume."
    )

    class Meta:
        ordering = ["subject", "started_at"]
        indexes = [models.Index(fields=["subject_trial", "id"], name="tpe_trial_id_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(hematocrit_fraction__gte=Decimal("0.10"), hematocrit_fraction__lte=Decimal("0.70")),
                name="tpe_hematocrit_fraction_range",
            ),
            models.CheckConstraint(
                condition=Q(plasma_volume_exchanged_ml__gt=0, plasma_volume_exchanged_ml__lte=12000),
                name="tpe_plasma_volume_exchanged_ml_range",
            ),
            models.CheckConstraint(condition=Q(ended_at__gt=models.F("started_at")), name="tpe_ends_after_start"),
        ]


class HemofiltrationSession(SubjectRecord):
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="hemofiltration_sessions")
    modality = models.CharField(max_length=16, choices=HemofiltrationModality.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Empty while running.")
    effluent_rate_ml_h = models.PositiveIntegerField(help_text="mL/h")
    weight_kg = weight_field()
    effluent_dose_ml_kg_h = models.DecimalField(
        max_digits=5, decimal_places=1, editable=False, null=True, help_text="Derived: effluent rate / weight."
    )

    class Meta:
        ordering = ["subject", "started_at"]
        indexes = [models.Index(fields=["subject_trial", "id"], name="crrt_trial_id_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gt=models.F("started_at")), name="crrt_ends_after_start"
            ),
        ]


class IcuStay(SubjectRecord):
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="icu_stays")
    admitted_at = models.DateTimeField()
    discharged_at = models.DateTimeField(null=True, blank=True, help_text="Empty while in the ICU.")
    reason = models.CharField(max_length=8, choices=IcuReason.choices)

    class Meta:
        ordering = ["subject", "admitted_at"]
        indexes = [models.Index(fields=["subject_trial", "id"], name="icu_trial_id_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(discharged_at__isnull=True) | Q(discharged_at__gte=models.F("admitted_at")),
                name="icu_discharged_after_admitted",
            ),
        ]


class AdverseEvent(SubjectRecord):
    """A typed-in CTCAE adverse event (data-dictionary.md, "Other adverse events").

    CRS and ICANS are never typed in: their episodes are derived from the daily assessments
    (reports.md). Cross-field rules are in ``validation.adverse_event_errors``.
    """

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="adverse_events")
    ctcae_term = models.CharField(
        max_length=120, verbose_name="CTCAE term",
        help_text="A term of the shipped CTCAE list for the version (toxicity/data/ctcae_terms.csv).",
    )
    ctcae_version = models.CharField(
        max_length=8, choices=CtcaeVersion.choices, default=CtcaeVersion.V5_0, verbose_name="CTCAE version",
        help_text="The CTCAE release the term and grade are taken from.",
    )
    grade = models.PositiveSmallIntegerField(
        help_text="CTCAE grade 1-5 at the worst severity; 5 = death related to the event."
    )
    onset_date = models.DateField(help_text="Site-local date; not before enrolment.")
    resolution_date = models.DateField(null=True, blank=True, help_text="Empty while the event is ongoing.")
    serious = models.BooleanField(default=False, help_text="Serious adverse event (ICH E2A).")
    seriousness = models.JSONField(
        default=list, blank=True,
        help_text="Every seriousness criterion that applies (codes); required when serious, empty otherwise.",
    )
    relatedness = models.CharField(
        max_length=12, choices=Relatedness.choices, help_text="Relationship to the study treatment (investigator)."
    )
    outcome = models.CharField(max_length=24, choices=AeOutcome.choices)

    class Meta:
        ordering = ["subject", "onset_date", "id"]
        indexes = [models.Index(fields=["subject_trial", "id"], name="ae_trial_id_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(grade__gte=1, grade__lte=5), name="ae_grade_range"),
            models.CheckConstraint(
                condition=Q(resolution_date__isnull=True) | Q(resolution_date__gte=models.F("onset_date")),
                name="ae_resolution_after_onset",
            ),
            models.CheckConstraint(
                condition=Q(grade=5, outcome=AeOutcome.FATAL) | (~Q(grade=5) & ~Q(outcome=AeOutcome.FATAL)),
                name="ae_grade_5_iff_fatal",
            ),
        ]

    def __str__(self):
        return f"{self.subject} {self.ctcae_term} grade {self.grade} from {self.onset_date}"

    def get_seriousness_display(self) -> str:
        """The criteria in words, for the CRF log table."""
        labels = dict(Seriousness.choices)
        return ", ".join(str(labels.get(code, code)) for code in self.seriousness or [])


CONSTRAINT_FIELDS = {
    "assessment_one_per_subject_day": "assessment_date",
    "assessment_temperature_max_c_range": "temperature_max_c",
    "assessment_oxygen_flow_l_min_range": "oxygen_flow_l_min",
    "assessment_fio2_percent_range": "fio2_percent",
    "assessment_ice_score_range": "ice_score",
    "assessment_capd_score_range": "capd_score",
    "assessment_crs_grade_reported_range": "crs_grade_reported",
    "assessment_icans_grade_reported_range": "icans_grade_reported",
    "toci_dose_mg_range": "dose_mg",
    "steroid_dose_mg_positive": "dose_mg",
    "anticytokine_dose_mg_positive": "dose_mg",
    "tpe_hematocrit_fraction_range": "hematocrit_fraction",
    "tpe_plasma_volume_exchanged_ml_range": "plasma_volume_exchanged_ml",
    "tpe_ends_after_start": "ended_at",
    "crrt_ends_after_start": "ended_at",
    "icu_discharged_after_admitted": "discharged_at",
    "ae_grade_range": "grade",
    "ae_resolution_after_onset": "resolution_date",
    "ae_grade_5_iff_fatal": "outcome",
    "query_one_open_per_rule_record_field": "field",
}


# --- discrepancy management (workflow.md, checks.md) ----------------------------------------


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
