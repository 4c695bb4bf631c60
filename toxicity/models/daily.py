"""The daily CRS/ICANS assessment (data-dictionary.md, "Daily toxicity assessment").

An assessment stores the raw observations of the worst moment of one site-local calendar day
and, derived on every write of the subject's course (``toxicity.course``), the grades on the
trial's scales, the minimum grades of an NE day, the fever-masking therapy, the flags and the
reasons, with the engine version. Raw components are kept so any scale can be recomputed
(grading.md, "Older scales").
"""
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from trials.audit import ClinicalModel
from trials.models import Subject

from ..choices import (
    CerebralEdema,
    Consciousness,
    IceNotAssessable,
    IntubationReason,
    MotorWeakness,
    OxygenDevice,
    Seizure,
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
    inotropes = models.JSONField(
        default=list, blank=True,
        help_text="Inotropes running (milrinone, dobutamine, other): recorded, never graded (R-CRS-8).",
    )
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
    minimum_crs_grade = grade_field("The floor an NE CRS grade provably has (R-CRS-15); empty otherwise.")
    minimum_icans_grade = grade_field("The floor an NE ICANS grade provably has (R-CRS-15); empty otherwise.")
    fever_masked_by = models.JSONField(
        null=True, editable=False,
        help_text='R-CRS-2: {"drug", "date"} of the therapy whose masking window covers the day; empty otherwise.',
    )
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


# The observed fields of a day, in data-dictionary order: what a coordinator enters, what the
# grading input reads, what the course records carry. Declared once, by the model's fields.
OBSERVATIONS = tuple(
    f.name for f in DailyAssessment._meta.fields
    if f.editable and not f.primary_key and f.name not in ("subject", "assessment_date")
)
# The values the platform derives and stores with the row (toxicity.course.records.Grades).
DERIVED = ("study_day", "crs_grade_derived", "icans_grade_derived", "ctcae_crs_grade_derived", "minimum_crs_grade",
           "minimum_icans_grade", "fever_masked_by", "crs_scale", "icans_scale", "engine_version", "flags", "reasons")
DailyAssessment.OBSERVATIONS, DailyAssessment.DERIVED = OBSERVATIONS, DERIVED


