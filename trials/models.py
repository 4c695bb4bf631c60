"""Trial set-up, memberships, subjects, deaths and CAR-T infusions (data-dictionary.md).

Day 0 is the calendar date, at the site, of the subject's index infusion (infusion_number 1);
``Subject.day0`` and ``Subject.age_years`` are derived and stored by the services.
"""
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from .audit import AuditedModel, ClinicalModel
from .choices import (
    CrsScale,
    DeathCause,
    Diagnosis,
    IcansScale,
    LymphodepletionRegimen,
    Phase,
    Product,
    Sex,
    SubjectStatus,
    TrialStatus,
)
from .roles import SITE_ROLES, Role

WEIGHT_MIN_KG, WEIGHT_MAX_KG = Decimal("0.5"), Decimal("350")
INFUSION_DOSE_MAX_CELLS_PER_KG = 1e9


def weight_field(**kwargs):
    """Body weight in kg, hard limits 0.5-350 (data-dictionary.md)."""
    kwargs.setdefault("help_text", "kg (0.5-350)")
    return models.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(WEIGHT_MIN_KG), MaxValueValidator(WEIGHT_MAX_KG)],
        **kwargs,
    )


def validate_timezone(value):
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"'{value}' is not an IANA time zone such as 'Europe/Berlin'.")


class Trial(AuditedModel):
    protocol_code = models.CharField(max_length=40, unique=True, help_text='e.g. "CART-19-001"')
    title = models.CharField(max_length=300)
    phase = models.CharField(max_length=3, choices=Phase.choices)
    sponsor = models.CharField(max_length=200)
    crs_scale = models.CharField(max_length=12, choices=CrsScale.choices, default=CrsScale.ASTCT_2019)
    icans_scale = models.CharField(max_length=12, choices=IcansScale.choices, default=IcansScale.ASTCT_2019)
    daily_assessment_until_day = models.PositiveSmallIntegerField(
        default=14, help_text="A daily assessment is expected for every study day 0..N."
    )
    followup_days = models.PositiveSmallIntegerField(default=28)
    tocilizumab_response_hours = models.PositiveSmallIntegerField(
        default=24, help_text="Protocol algorithm window (ALGORITHM-TOCI-DELAY); 0 turns the check off."
    )
    stopping_toxicity_threshold = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.300"),
        validators=[MinValueValidator(Decimal("0.001")), MaxValueValidator(Decimal("0.999"))],
    )
    stopping_posterior_cutoff = models.DecimalField(
        max_digits=4, decimal_places=3, default=Decimal("0.900"),
        validators=[MinValueValidator(Decimal("0.500")), MaxValueValidator(Decimal("0.999"))],
    )
    stopping_prior_a = models.DecimalField(
        max_digits=6, decimal_places=3, default=Decimal("1"), validators=[MinValueValidator(Decimal("0.001"))]
    )
    stopping_prior_b = models.DecimalField(
        max_digits=6, decimal_places=3, default=Decimal("1"), validators=[MinValueValidator(Decimal("0.001"))]
    )
    export_date_shift = models.BooleanField(
        default=False, help_text="Shift every date of a subject by a per-subject offset in sponsor and DSMB exports."
    )
    status = models.CharField(max_length=8, choices=TrialStatus.choices, default=TrialStatus.SETUP)

    scope_trial, scope_site = "pk", None

    class Meta:
        ordering = ["protocol_code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(stopping_toxicity_threshold__gt=0, stopping_toxicity_threshold__lt=1),
                name="trial_stopping_threshold_0_1",
            ),
            models.CheckConstraint(
                condition=Q(stopping_posterior_cutoff__gt=0, stopping_posterior_cutoff__lt=1),
                name="trial_posterior_cutoff_0_1",
            ),
            models.CheckConstraint(
                condition=Q(stopping_prior_a__gt=0, stopping_prior_b__gt=0), name="trial_prior_positive"
            ),
        ]

    def __str__(self):
        return self.protocol_code


class Site(AuditedModel):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="sites")
    site_number = models.CharField(max_length=10, help_text='unique in the trial, e.g. "101"')
    name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code, e.g. DE")
    timezone = models.CharField(
        max_length=64, default="UTC", validators=[validate_timezone],
        help_text="IANA time zone of the site: calendar dates (day 0, assessment dates) are local dates.",
    )

    scope_trial, scope_site = "trial", "pk"

    class Meta:
        ordering = ["trial", "site_number"]
        constraints = [models.UniqueConstraint(fields=["trial", "site_number"], name="site_number_unique_in_trial")]

    def __str__(self):
        return f"{self.trial.protocol_code} site {self.site_number}"


class Cohort(AuditedModel):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="cohorts")
    name = models.CharField(max_length=40, help_text='e.g. "DL2"')
    dose_level_cells_per_kg = models.FloatField(
        validators=[MinValueValidator(1.0), MaxValueValidator(INFUSION_DOSE_MAX_CELLS_PER_KG)],
        help_text="CAR-T cells per kg, e.g. 1.0e6",
    )

    scope_trial, scope_site = "trial", None

    class Meta:
        ordering = ["trial", "name"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "name"], name="cohort_name_unique_in_trial"),
            models.CheckConstraint(
                condition=Q(dose_level_cells_per_kg__gt=0, dose_level_cells_per_kg__lte=INFUSION_DOSE_MAX_CELLS_PER_KG),
                name="cohort_dose_level_range",
            ),
        ]

    def __str__(self):
        return f"{self.trial.protocol_code} {self.name}"


class Membership(models.Model):
    """A user's role in a trial; site roles also name the site (workflow.md, Roles)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="memberships")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, null=True, blank=True, related_name="memberships")
    role = models.CharField(max_length=16, choices=[(r.value, r.value.replace("_", " ")) for r in Role])
    granted_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["trial", "user", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "trial", "role", "site"], condition=Q(site__isnull=False), name="membership_unique_site_role"
            ),
            models.UniqueConstraint(
                fields=["user", "trial", "role"], condition=Q(site__isnull=True), name="membership_unique_trial_role"
            ),
            models.CheckConstraint(
                condition=(Q(role__in=sorted(SITE_ROLES)) & Q(site__isnull=False))
                | (~Q(role__in=sorted(SITE_ROLES)) & Q(site__isnull=True)),
                name="membership_site_iff_site_role",
            ),
        ]

    def clean(self):
        if self.role in SITE_ROLES and self.site_id is None:
            raise ValidationError({"site": f"The {self.role} role is granted per site: choose a site."})
        if self.role not in SITE_ROLES and self.site_id is not None:
            raise ValidationError({"site": f"The {self.role} role covers the whole trial: leave the site empty."})
        if self.site_id is not None and self.trial_id is not None and self.site.trial_id != self.trial_id:
            raise ValidationError({"site": "This site belongs to another trial."})

    def __str__(self):
        where = f" site {self.site.site_number}" if self.site_id else ""
        return f"{self.user} {self.role} in {self.trial}{where}"


class Subject(ClinicalModel):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="subjects")
    subject_id = models.CharField(max_length=40, help_text='unique in the trial, e.g. "101-0003"')
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="subjects")
    cohort = models.ForeignKey(Cohort, on_delete=models.PROTECT, related_name="subjects")
    enrolled_on = models.DateField()
    sex = models.CharField(max_length=8, choices=Sex.choices)
    date_of_birth = models.DateField(help_text="Site only: never exported; age_years is exported instead.")
    age_years = models.PositiveSmallIntegerField(
        null=True, editable=False,
        help_text="Derived: completed years at the index infusion (at enrolment until infused).",
    )
    diagnosis = models.CharField(max_length=8, choices=Diagnosis.choices)
    baseline_weight_kg = weight_field()
    developmental_delay = models.BooleanField(default=False)
    capd_baseline = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(32)],
        help_text="Pre-infusion CAPD score 0-32; children under 12 or developmental delay only.",
    )
    status = models.CharField(max_length=10, choices=SubjectStatus.choices, default=SubjectStatus.ENROLLED)
    day0 = models.DateField(
        null=True, editable=False, help_text="Derived: site-local date of the index infusion (study day 0)."
    )

    scope_trial, scope_site = "trial", "site"

    class Meta:
        ordering = ["trial", "subject_id"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "subject_id"], name="subject_id_unique_in_trial"),
            models.CheckConstraint(
                condition=Q(baseline_weight_kg__gte=WEIGHT_MIN_KG, baseline_weight_kg__lte=WEIGHT_MAX_KG),
                name="subject_baseline_weight_kg_range",
            ),
            models.CheckConstraint(
                condition=Q(capd_baseline__isnull=True) | Q(capd_baseline__gte=0, capd_baseline__lte=32),
                name="subject_capd_baseline_range",
            ),
            models.CheckConstraint(condition=Q(date_of_birth__lte=models.F("enrolled_on")), name="subject_born_before_enrolment"),
        ]

    def __str__(self):
        return self.subject_id


class Death(ClinicalModel):
    # One live record per subject (death_one_per_subject); a record voided in error may be re-entered.
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="deaths")
    death_date = models.DateField()
    death_primary_cause = models.CharField(max_length=20, choices=DeathCause.choices)
    death_cause_other_text = models.TextField(blank=True, help_text="Required when the primary cause is 'other'.")

    scope_trial, scope_site = "subject__trial", "subject__site"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subject"], condition=Q(voided=False), name="death_one_per_subject"),
        ]

    def __str__(self):
        return f"death of {self.subject}"


class Infusion(ClinicalModel):
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="infusions")
    infusion_number = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1)], help_text="1 = index infusion, which defines day 0"
    )
    product = models.CharField(max_length=32, choices=Product.choices)
    lot_number = models.CharField(max_length=60)
    infused_at = models.DateTimeField()
    dose_cells_per_kg = models.FloatField(
        validators=[MaxValueValidator(INFUSION_DOSE_MAX_CELLS_PER_KG)], help_text="CAR-T cells per kg (> 0, <= 1e9)"
    )
    weight_kg = weight_field()
    lymphodepletion_regimen = models.CharField(max_length=12, choices=LymphodepletionRegimen.choices)
    lymphodepletion_start_date = models.DateField(null=True, blank=True)

    scope_trial, scope_site = "subject__trial", "subject__site"

    class Meta:
        ordering = ["subject", "infusion_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "infusion_number"], condition=Q(voided=False), name="infusion_number_unique_per_subject"
            ),
            models.CheckConstraint(condition=Q(infusion_number__gte=1), name="infusion_number_positive"),
            models.CheckConstraint(
                condition=Q(dose_cells_per_kg__gt=0, dose_cells_per_kg__lte=INFUSION_DOSE_MAX_CELLS_PER_KG),
                name="infusion_dose_cells_per_kg_range",
            ),
            models.CheckConstraint(
                condition=Q(weight_kg__gte=WEIGHT_MIN_KG, weight_kg__lte=WEIGHT_MAX_KG), name="infusion_weight_kg_range"
            ),
        ]

    @property
    def is_index(self) -> bool:
        return self.infusion_number == 1

    def __str__(self):
        return f"{self.subject} infusion {self.infusion_number}"


# Database constraint -> the field a 400 response names when the database rejects a row.
CONSTRAINT_FIELDS = {
    "trial_stopping_threshold_0_1": "stopping_toxicity_threshold",
    "trial_posterior_cutoff_0_1": "stopping_posterior_cutoff",
    "trial_prior_positive": "stopping_prior_a",
    "site_number_unique_in_trial": "site_number",
    "cohort_name_unique_in_trial": "name",
    "cohort_dose_level_range": "dose_level_cells_per_kg",
    "membership_site_iff_site_role": "site",
    "subject_id_unique_in_trial": "subject_id",
    "subject_baseline_weight_kg_range": "baseline_weight_kg",
    "subject_capd_baseline_range": "capd_baseline",
    "subject_born_before_enrolment": "date_of_birth",
    "death_one_per_subject": "subject",
    "infusion_number_unique_per_subject": "infusion_number",
    "infusion_number_positive": "infusion_number",
    "infusion_dose_cells_per_kg_range": "dose_cells_per_kg",
    "infusion_weight_kg_range": "weight_kg",
}

from .workflow import CasebookSignature, Lock, LockScope, SourceVerification  # noqa: E402,F401  (registered with the app)
