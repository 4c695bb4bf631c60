"""The rescue-therapy logs and typed-in CTCAE adverse events (data-dictionary.md): many per subject."""
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from trials.models import Subject, weight_field

from ..choices import (
    AeOutcome,
    Anticytokine,
    Corticosteroid,
    CtcaeVersion,
    HemofiltrationModality,
    IcuReason,
    Indication,
    Relatedness,
    ReplacementFluid,
    Route,
    Seriousness,
)
from .daily import SubjectRecord


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
    route = models.CharField(max_length=12, choices=Route.choices,
                             help_text="Intrathecal never masks fever and is outside the per-kg systemic limits.")
    indication = models.CharField(max_length=12, choices=Indication.choices)
    weight_kg = weight_field(
        null=True, blank=True,
        help_text="kg (0.5-350), optional: per-kg checks use it, else the latest weight recorded on or before the dose date.",
    )

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
    route = models.CharField(max_length=12, choices=Route.choices)
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


