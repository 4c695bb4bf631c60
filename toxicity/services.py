"""Writes of daily assessments and rescue-therapy logs; derivation of grades.

Every save of an assessment stores the engine's grades, flags and reasons with the engine
version. The grading context comes from the subject's own records (data-dictionary.md,
"Grading input"): ``crs_ongoing`` from the earlier days' derived grades,
``anticytokine_or_antipyretic_since_onset`` from the drug logs and earlier antipyretics,
``age_years``/``developmental_delay``/``capd_baseline`` from the subject, and the death record.
Because each day depends on the days before it, any change to a subject's assessments, drug
logs, death or day 0 re-derives all of that subject's days, in date order, in the same
transaction; rows whose derived values change get a system audit row.
"""
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from toxicity.grading import GradingInputError, collect_input_errors, grade
from trials.audit import audited_create, audited_update, audited_void, system_update
from trials.models import Death, Subject
from trials.notifications import notify_data_managers
from trials.roles import DATA_ENTRY_ROLES
from trials.services import require_roles, site_local_date
from trials.study_day import study_day

from . import ctcae_terms, validation
from .signals import subject_grades_changed
from .grading.dosing import effluent_dose_ml_kg_h, estimated_plasma_volume_ml, plasma_volumes_exchanged
from .models import (
    AdverseEvent,
    AnticytokineDose,
    CorticosteroidDose,
    DailyAssessment,
    HemofiltrationSession,
    IcuStay,
    PlasmaExchange,
    TocilizumabDose,
)

# Assessment fields fed to the grading engine, named as in the grading input contract.
GRADING_FIELDS = (
    "temperature_max_c", "fever_other_cause", "antipyretic_given", "hypotension", "hypotension_other_cause",
    "vasopressors", "vasopressin_other_indication", "hypoxia", "hypoxia_other_cause", "oxygen_device",
    "oxygen_flow_l_min", "fio2_percent", "intubation_reason", "ice_score", "ice_not_assessable", "capd_score",
    "capd_unable", "consciousness", "consciousness_other_cause", "seizure", "seizure_other_cause",
    "motor_weakness", "motor_other_cause", "cerebral_edema", "cerebral_edema_other_cause",
    "crs_grade_reported", "icans_grade_reported",
)
DERIVED_FIELDS = (
    "study_day", "crs_grade_derived", "icans_grade_derived", "ctcae_crs_grade_derived",
    "crs_scale", "icans_scale", "engine_version", "flags", "reasons",
)
SYSTEMIC_STEROID_ROUTES = ("iv", "oral")


def _now():
    return timezone.now()


# Decimal places of the stored columns: grade what will be stored (39.5 is stored as 39.50).
_SCALE = {
    f.name: Decimal(1).scaleb(-f.decimal_places)
    for f in DailyAssessment._meta.fields
    if f.get_internal_type() == "DecimalField"
}


def _as_input_value(name, value):
    if value == "":
        return None
    if isinstance(value, (Decimal, int, float)) and name in _SCALE and not isinstance(value, bool):
        try:
            return Decimal(str(value)).quantize(_SCALE[name])
        except InvalidOperation:  # absurd magnitudes: let the engine name the field
            return str(value)
    return value


def _grade_or_ne(value):
    return None if value == "NE" else value


# --- the grading chain ----------------------------------------------------------------------


# Grading contexts already loaded in the current write, by subject id (see subject_write).
_CONTEXTS: ContextVar[dict | None] = ContextVar("grading_contexts", default=None)


@dataclass(frozen=True)
class SubjectContext:
    """What grading needs from a subject's other records, loaded once per derivation."""

    subject: Subject
    death: Death | None
    trigger_dates: tuple[date, ...]  # site-local dates of tocilizumab, anti-cytokine, systemic steroid

    @classmethod
    def load(cls, subject: Subject) -> "SubjectContext":
        """Loaded once per subject within one write (``subject_write``), else every call."""
        cache = _CONTEXTS.get()
        if cache is not None and subject.pk in cache:
            return cache[subject.pk]
        ctx = cls._load(subject)
        if cache is not None:
            cache[subject.pk] = ctx
        return ctx

    @classmethod
    def _load(cls, subject: Subject) -> "SubjectContext":
        site = subject.site
        moments = [
            *TocilizumabDose.objects.filter(subject=subject, voided=False).values_list("administered_at", flat=True),
            *AnticytokineDose.objects.filter(subject=subject, voided=False).values_list("administered_at", flat=True),
            *CorticosteroidDose.objects.filter(
                subject=subject, voided=False, route__in=SYSTEMIC_STEROID_ROUTES
            ).values_list("administered_at", flat=True),
        ]
        return cls(
            subject=subject,
            death=Death.objects.filter(subject=subject, voided=False).first(),
            trigger_dates=tuple(sorted(site_local_date(m, site) for m in moments)),
        )


def grading_input(a: DailyAssessment, ctx: SubjectContext, *, crs_ongoing: bool, since_onset: bool) -> dict[str, Any]:
    subject, trial = ctx.subject, ctx.subject.trial
    data = {name: _as_input_value(name, getattr(a, name)) for name in GRADING_FIELDS}
    data.update(
        age_years=subject.age_years,
        developmental_delay=subject.developmental_delay,
        capd_baseline=subject.capd_baseline,
        crs_ongoing=crs_ongoing,
        anticytokine_or_antipyretic_since_onset=since_onset,
        death_primary_cause=(
            ctx.death.death_primary_cause if ctx.death and ctx.death.death_date == a.assessment_date else None
        ),
        crs_scale=trial.crs_scale,
        icans_scale=trial.icans_scale,
    )
    return data


@dataclass
class EpisodeState:
    """Where the subject's CRS episode stands before a day (reports.md episodes; R-CRS-2)."""

    onset: date | None = None
    antipyretic: bool = False  # an antipyretic on an earlier day of this episode

    def context(self, day: date, trigger_dates) -> tuple[bool, bool]:
        """(crs_ongoing, anticytokine_or_antipyretic_since_onset) for grading ``day``."""
        ongoing = self.onset is not None
        return ongoing, ongoing and (self.antipyretic or any(self.onset <= d <= day for d in trigger_dates))

    def after(self, day: date, crs_grade, antipyretic_given: bool) -> None:
        """Past a graded day: grade >= 1 opens or continues the episode, 0 ends it, NE continues it."""
        if crs_grade is None or crs_grade == "NE":
            return
        if crs_grade >= 1:
            if self.onset is None:
                self.onset, self.antipyretic = day, False
            self.antipyretic = self.antipyretic or antipyretic_given
        else:
            self.onset, self.antipyretic = None, False


def derive_chain(rows: list[DailyAssessment], ctx: SubjectContext) -> dict[int, dict[str, Any] | None]:
    """Derived values for each row (keyed by ``id(row)``), walking the days in date order.

    An episode starts on a day with CRS grade >= 1 and ends on a grade-0 day; NE days continue
    it (reports.md). ``crs_ongoing`` is true when an earlier day opened the episode; the R-CRS-2
    exemption applies when a trigger drug was given from the onset date to this date, or an
    antipyretic on an earlier day of the episode. Rows whose input is invalid map to None.
    """
    derived: dict[int, dict[str, Any] | None] = {}
    state = EpisodeState()
    day0 = ctx.subject.day0
    for row in sorted(rows, key=lambda r: r.assessment_date):
        day = row.assessment_date
        ongoing, since_onset = state.context(day, ctx.trigger_dates)
        try:
            result = grade(grading_input(row, ctx, crs_ongoing=ongoing, since_onset=since_onset))
        except GradingInputError:
            derived[id(row)] = None
            continue
        derived[id(row)] = {
            "study_day": study_day(day, day0) if day0 else None,
            "crs_grade_derived": _grade_or_ne(result.crs_grade),
            "icans_grade_derived": _grade_or_ne(result.icans_grade),
            "ctcae_crs_grade_derived": _grade_or_ne(result.ctcae_crs_grade),
            "crs_scale": result.crs_scale,
            "icans_scale": result.icans_scale,
            "engine_version": result.engine_version,
            "flags": list(result.flags),
            "reasons": list(result.reasons),
        }
        state.after(day, result.crs_grade, row.antipyretic_given)
    return derived


def grading_context_for(subject: Subject, day: date, *, exclude_pk=None) -> dict[str, Any]:
    """The context a save of ``day`` will be graded with (the CRF screen's live preview uses it)."""
    probe = DailyAssessment(subject=subject, assessment_date=day, pk=exclude_pk)
    ctx = SubjectContext.load(subject)
    state = EpisodeState()
    for row in sorted((r for r in _other_rows(probe) if r.assessment_date < day), key=lambda r: r.assessment_date):
        state.after(row.assessment_date, row.crs_grade_derived, row.antipyretic_given)
    ongoing, since = state.context(day, ctx.trigger_dates)
    data = grading_input(probe, ctx, crs_ongoing=ongoing, since_onset=since)
    return {k: data[k] for k in ("age_years", "developmental_delay", "capd_baseline", "crs_ongoing",
                                 "anticytokine_or_antipyretic_since_onset", "death_primary_cause",
                                 "crs_scale", "icans_scale")}


def _other_rows(a: DailyAssessment) -> list[DailyAssessment]:
    return list(DailyAssessment.objects.filter(subject_id=a.subject_id, voided=False).exclude(pk=a.pk))


def _derive_assessment(a: DailyAssessment) -> None:
    """Set this assessment's derived values in memory, in the context of the subject's other days."""
    ctx = SubjectContext.load(a.subject)
    earlier = [r for r in _other_rows(a) if r.assessment_date < a.assessment_date] if a.assessment_date else []
    values = derive_chain([*earlier, a], ctx).get(id(a)) if a.assessment_date else None
    for name, value in (values or {}).items():
        setattr(a, name, value)


def regrade_subject(subject: Subject, *, user, because: str) -> int:
    """Re-derive every day of the subject; store the rows that changed. Returns how many changed."""
    with transaction.atomic():
        subject = Subject.objects.select_for_update().select_related("site", "trial").get(pk=subject.pk)
        rows = list(DailyAssessment.objects.select_for_update().filter(subject=subject, voided=False))
        derived = derive_chain(rows, SubjectContext.load(subject))
        changed = 0
        for row in rows:
            values = derived[id(row)]
            if values is not None and system_update(row, user=user, reason=f"grades re-derived after {because}", changes=values):
                changed += 1
    return changed


# --- after every write: save-time checks and alerts -----------------------------------------

HIGH_GRADE = 4


def _high_grade_days(subject: Subject) -> set[tuple[str, date, int]]:
    rows = DailyAssessment.objects.filter(subject=subject, voided=False).values_list(
        "assessment_date", "crs_grade_derived", "icans_grade_derived"
    )
    return {(kind, day, g) for day, crs, icans in rows for kind, g in (("CRS", crs), ("ICANS", icans))
            if g is not None and g >= HIGH_GRADE}


def after_subject_write(subject: Subject, *, high_before: set) -> None:
    """Soft rules for the subject at once (the coordinator sees the query), and alert the data
    managers of any new derived grade >= 4."""
    from toxicity.queries import check_subject  # the query module imports these services' models

    check_subject(subject)
    subject_grades_changed.send(Subject, subject=subject)
    for kind, day, grade in sorted(_high_grade_days(subject) - high_before):
        notify_data_managers(subject=subject, text=f"derived {kind} grade {grade} on {day}")


# --- daily assessments ----------------------------------------------------------------------


def _assessment_rules(a: DailyAssessment) -> dict[str, list[str]]:
    subject = a.subject
    death = SubjectContext.load(subject).death
    errors = validation.assessment_errors(
        {"assessment_date": a.assessment_date},
        today=site_local_date(_now(), subject.site),
        death_date=death.death_date if death else None,
        subject_voided=subject.voided,
    )
    ctx = SubjectContext(subject=subject, death=death, trigger_dates=())
    for field, messages in collect_input_errors(grading_input(a, ctx, crs_ongoing=False, since_onset=False)).items():
        errors.setdefault(field, []).extend(messages)
    if a.assessment_date:
        clash = DailyAssessment.objects.filter(subject=subject, assessment_date=a.assessment_date, voided=False)
        if clash.exclude(pk=a.pk).exists():
            errors.setdefault("assessment_date", []).append(
                f"An assessment for {a.assessment_date} already exists for this subject: correct that one instead."
            )
    return errors


def _lock_subject(subject: Subject) -> Subject:
    return Subject.objects.select_for_update().select_related("site", "trial").get(pk=subject.pk)


@dataclass
class SubjectWrite:
    """What a write did, for the steps that follow it (set by the caller inside ``subject_write``)."""

    subject: Subject
    because: str = ""
    changed: bool = True
    regrade: bool = True
    fresh_context: bool = False  # a trigger drug changed: the cached grading context is stale


_BATCH: ContextVar[dict | None] = ContextVar("after_write_batch", default=None)


@contextmanager
def batched_after_writes():
    """For a bulk import: the save-time checks, episode refresh and grade >= 4 alerts run once per
    subject when the batch ends, in the same transaction, instead of after every row (each row
    is still validated, audited and graded by the same service as a form save)."""
    batch: dict[int, tuple[Subject, set]] = {}
    token = _BATCH.set(batch)
    try:
        yield
    finally:
        _BATCH.reset(token)
    for subject, high_before in batch.values():
        after_subject_write(subject, high_before=high_before)


@contextmanager
def subject_write(subject: Subject, *, user):
    """Lock the subject; after the caller's write, re-derive its grades (when the write can change
    them), run the save-time checks and alert on new grades >= 4, all in the same transaction."""
    require_roles(user, DATA_ENTRY_ROLES, subject.trial_id, subject.site_id)
    token = _CONTEXTS.set({})
    try:
        with transaction.atomic():
            write = SubjectWrite(_lock_subject(subject))
            high_before = _high_grade_days(write.subject)
            yield write
            if write.changed:
                if write.fresh_context:
                    _CONTEXTS.get().clear()
                if write.regrade:
                    regrade_subject(write.subject, user=user, because=write.because)
                batch = _BATCH.get()
                if batch is None:
                    after_subject_write(write.subject, high_before=high_before)
                else:
                    batch.setdefault(write.subject.pk, (write.subject, high_before))
    finally:
        _CONTEXTS.reset(token)


def assessment_create(*, user, subject: Subject, reason: str = "", **fields) -> DailyAssessment:
    with subject_write(subject, user=user) as write:
        assessment = audited_create(
            DailyAssessment(subject=write.subject, **fields), user=user, reason=reason,
            validate=_assessment_rules, derive=_derive_assessment,
        )
        write.because = f"the assessment of {assessment.assessment_date} was entered"
    return assessment


def assessment_update(*, assessment: DailyAssessment, user, version, reason, changes: dict) -> DailyAssessment:
    changes.pop("subject", None)
    with subject_write(assessment.subject, user=user) as write:
        assessment, write.changed = audited_update(
            DailyAssessment, assessment.pk, user=user, version=version, reason=reason, changes=changes,
            validate=_assessment_rules, derive=_derive_assessment,
        )
        write.because = f"the assessment of {assessment.assessment_date} was corrected"
    return assessment


def assessment_void(*, assessment: DailyAssessment, user, version, reason) -> DailyAssessment:
    with subject_write(assessment.subject, user=user) as write:
        assessment = audited_void(DailyAssessment, assessment.pk, user=user, version=version, reason=reason)
        write.because = f"the assessment of {assessment.assessment_date} was voided"
    return assessment


# --- rescue-therapy logs --------------------------------------------------------------------


def _others(record, *fields):
    qs = type(record).objects.filter(subject_id=record.subject_id, voided=False).exclude(pk=record.pk)
    return list(qs.values_list(*fields)) if len(fields) > 1 else list(qs.values_list(fields[0], flat=True))


def _values(record, names):
    return {name: getattr(record, name) for name in names}


def _latest_weight(subject: Subject) -> Decimal:
    """The most recent recorded weight (infusion or drug logs), else the baseline weight."""
    candidates = [(i.infused_at, i.weight_kg) for i in subject.infusions.filter(voided=False)]
    for model, at in ((TocilizumabDose, "administered_at"), (AnticytokineDose, "administered_at")):
        candidates += list(model.objects.filter(subject=subject, voided=False).values_list(at, "weight_kg"))
    return max(candidates)[1] if candidates else subject.baseline_weight_kg


def _toci_rules(r: TocilizumabDose):
    return validation.tocilizumab_errors(
        _values(r, ("dose_mg", "weight_kg", "administered_at")), now=_now(), other_starts=_others(r, "administered_at")
    )


def _steroid_rules(r: CorticosteroidDose):
    return validation.corticosteroid_errors(
        _values(r, ("drug", "dose_mg", "administered_at")), now=_now(), weight_kg=_latest_weight(r.subject)
    )


def _anticytokine_rules(r: AnticytokineDose):
    same_drug = AnticytokineDose.objects.filter(subject_id=r.subject_id, voided=False, drug=r.drug).exclude(pk=r.pk)
    return validation.anticytokine_errors(
        _values(r, ("drug", "dose_mg", "weight_kg", "administered_at")),
        now=_now(),
        other_doses=list(same_drug.values_list("administered_at", "dose_mg")),
    )


def _tpe_rules(r: PlasmaExchange):
    return validation.plasma_exchange_errors(
        _values(r, ("started_at", "ended_at", "plasma_volume_exchanged_ml", "weight_kg", "hematocrit_fraction")), now=_now()
    )


def _tpe_derive(r: PlasmaExchange):
    r.estimated_plasma_volume_ml = r.plasma_volumes_exchanged = None
    if r.weight_kg and r.hematocrit_fraction and Decimal("0.10") <= r.hematocrit_fraction <= Decimal("0.70"):
        r.estimated_plasma_volume_ml = estimated_plasma_volume_ml(r.weight_kg, r.hematocrit_fraction)
        if r.plasma_volume_exchanged_ml:
            r.plasma_volumes_exchanged = plasma_volumes_exchanged(r.plasma_volume_exchanged_ml, r.estimated_plasma_volume_ml)


def _crrt_rules(r: HemofiltrationSession):
    return validation.hemofiltration_errors(
        _values(r, ("started_at", "ended_at", "effluent_rate_ml_h", "weight_kg")),
        now=_now(),
        other_sessions=_others(r, "started_at", "ended_at"),
    )


def _crrt_derive(r: HemofiltrationSession):
    ok = r.effluent_rate_ml_h is not None and r.weight_kg
    r.effluent_dose_ml_kg_h = effluent_dose_ml_kg_h(r.effluent_rate_ml_h, r.weight_kg) if ok else None


def _icu_rules(r: IcuStay):
    return validation.icu_stay_errors(_values(r, ("admitted_at", "discharged_at")), now=_now())


def _ae_rules(r: AdverseEvent):
    subject = r.subject
    death = SubjectContext.load(subject).death
    return validation.adverse_event_errors(
        _values(r, ("ctcae_term", "ctcae_version", "grade", "onset_date", "resolution_date", "serious", "seriousness",
                    "relatedness", "outcome")),
        today=site_local_date(_now(), subject.site),
        enrolled_on=subject.enrolled_on,
        death_date=death.death_date if death else None,
    )


def _ae_derive(r: AdverseEvent):
    """Store the list's spelling of the term, and the seriousness codes once each in a fixed order."""
    if isinstance(r.ctcae_term, str):
        r.ctcae_term = ctcae_terms.canonical(r.ctcae_version, r.ctcae_term) or " ".join(r.ctcae_term.split())
    if isinstance(r.seriousness, list) and all(isinstance(c, str) for c in r.seriousness):
        order = {code: n for n, code in enumerate(validation.SERIOUSNESS_CODES)}
        r.seriousness = sorted(set(r.seriousness), key=lambda c: (order.get(c, len(order)), c))


@dataclass(frozen=True)
class LogRules:
    validate: Callable
    derive: Callable | None = None
    regrades: bool = False  # R-CRS-2 trigger drugs change the grading context


LOG_RULES: dict[type, LogRules] = {
    TocilizumabDose: LogRules(_toci_rules, regrades=True),
    CorticosteroidDose: LogRules(_steroid_rules, regrades=True),
    AnticytokineDose: LogRules(_anticytokine_rules, regrades=True),
    PlasmaExchange: LogRules(_tpe_rules, _tpe_derive),
    HemofiltrationSession: LogRules(_crrt_rules, _crrt_derive),
    IcuStay: LogRules(_icu_rules),
    AdverseEvent: LogRules(validate=_ae_rules, derive=_ae_derive, regrades=False),  # no effect on the grading
}


def _log_validate(record):
    errors = LOG_RULES[type(record)].validate(record)
    if record.subject.voided:
        errors.setdefault("subject", []).append("This subject was marked entered in error.")
    return errors


def log_create(model: type, *, user, subject: Subject, **fields):
    """Create a rescue-therapy log entry (tocilizumab, steroid, anti-cytokine, TPE, CRRT, ICU).

    The first save needs no reason for change (``fields`` may hold the ICU stay's own ``reason``).
    """
    rules = LOG_RULES[model]
    with subject_write(subject, user=user) as write:
        record = audited_create(model(subject=write.subject, **fields), user=user,
                                validate=_log_validate, derive=rules.derive)
        write.because, write.regrade = f"a {model._meta.verbose_name} was entered", rules.regrades
        write.fresh_context = rules.regrades
    return record


def log_update(record, *, user, version, reason, changes: dict):
    model = type(record)
    rules = LOG_RULES[model]
    changes.pop("subject", None)
    with subject_write(record.subject, user=user) as write:
        record, write.changed = audited_update(model, record.pk, user=user, version=version, reason=reason,
                                               changes=changes, validate=_log_validate, derive=rules.derive)
        write.because, write.regrade = f"a {model._meta.verbose_name} was corrected", rules.regrades
        write.fresh_context = rules.regrades
    return record


def log_void(record, *, user, version, reason):
    model = type(record)
    with subject_write(record.subject, user=user) as write:
        record = audited_void(model, record.pk, user=user, version=version, reason=reason)
        write.because, write.regrade = f"a {model._meta.verbose_name} was voided", LOG_RULES[model].regrades
        write.fresh_context = LOG_RULES[model].regrades
    return record
