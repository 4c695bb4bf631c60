"""Writes of daily assessments, rescue-therapy logs and typed-in adverse events.

Each service runs inside ``toxicity.course.write.subject_write``: the subject is locked and its
course loaded once; the hard rules are checked against that course (validation.py); the row is
written with its audit row (the derived grades of a new or corrected assessment set before the
save, so an entry is one history row); the course in memory is updated; and the write ends with
the one sequence ``after_subject_write`` (re-derive the grades, store them and the episodes, run
the save-time checks, enqueue the alerts).
"""
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from toxicity.grading import collect_input_errors
from trials.audit import audited_create, audited_update, audited_void
from trials.models import Subject
from trials.services import site_local_date

from . import ctcae_terms, validation
from .course import records as r
from .course.derive import grading_input
from .course.load import record_of
from .course.write import SubjectWrite, subject_write
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


def _now():
    return timezone.now()


# --- daily assessments ----------------------------------------------------------------------


def _assessment_rules(write: SubjectWrite) -> Callable:
    def validate(a: DailyAssessment) -> dict[str, list[str]]:
        course, subject = write.course, write.subject
        death = course.death
        errors = validation.assessment_errors(
            {"assessment_date": a.assessment_date},
            today=site_local_date(_now(), subject.site),
            death_date=death.day if death else None,
            subject_voided=subject.voided,
        )
        probe = record_of(a, course)
        for field, messages in collect_input_errors(
                grading_input(course, probe, crs_ongoing=False, fever_masked_by=None)).items():
            errors.setdefault(field, []).extend(messages)
        if a.assessment_date and any(x.day == a.assessment_date and x.id != a.pk for x in course.assessments):
            errors.setdefault("assessment_date", []).append(
                f"An assessment for {a.assessment_date} already exists for this subject: correct that one instead."
            )
        return errors
    return validate


def assessment_create(*, user, subject: Subject, reason: str = "", **fields) -> DailyAssessment:
    with subject_write(subject, user=user) as write:
        assessment = audited_create(
            DailyAssessment(subject=write.subject, **fields), user=user, reason=reason,
            validate=_assessment_rules(write), derive=write.derive_into, savepoint=False,
        )
        write.record(assessment)
        write.because = f"the assessment of {assessment.assessment_date} was entered"
    return assessment


def assessment_update(*, assessment: DailyAssessment, user, version, reason, changes: dict) -> DailyAssessment:
    changes.pop("subject", None)
    with subject_write(assessment.subject, user=user) as write:
        assessment, changed = audited_update(
            DailyAssessment, assessment.pk, user=user, version=version, reason=reason, changes=changes,
            validate=_assessment_rules(write), derive=write.derive_into, savepoint=False,
        )
        if changed:
            write.record(assessment)
            write.because = f"the assessment of {assessment.assessment_date} was corrected"
    return assessment


def assessment_void(*, assessment: DailyAssessment, user, version, reason) -> DailyAssessment:
    with subject_write(assessment.subject, user=user) as write:
        assessment = audited_void(DailyAssessment, assessment.pk, user=user, version=version, reason=reason,
                                  savepoint=False)
        write.record(assessment, removed=True)
        write.because = f"the assessment of {assessment.assessment_date} was voided"
    return assessment


# --- rescue-therapy logs and typed-in adverse events -------------------------------------------


def _values(record, names):
    return {name: getattr(record, name) for name in names}


def _others(write: SubjectWrite, record, kind: str, drug: str | None = None) -> list[r.Dose]:
    return [d for d in write.course.doses_of(kind, drug) if d.id != record.pk]


def _toci_rules(write: SubjectWrite, rec: TocilizumabDose):
    return validation.tocilizumab_errors(
        _values(rec, ("dose_mg", "weight_kg", "administered_at")), now=_now(),
        other_starts=[d.at for d in _others(write, rec, r.TOCILIZUMAB)],
    )


def _steroid_rules(write: SubjectWrite, rec: CorticosteroidDose):
    weight = rec.weight_kg
    if weight is None and rec.administered_at is not None:
        day = site_local_date(rec.administered_at, write.subject.site)
        weight = write.course.weight_on(day, excluding=(r.STEROID, rec.pk))
    return validation.corticosteroid_errors(
        _values(rec, ("drug", "dose_mg", "administered_at", "route")), now=_now(), weight_kg=weight)


def _anticytokine_rules(write: SubjectWrite, rec: AnticytokineDose):
    return validation.anticytokine_errors(
        _values(rec, ("drug", "dose_mg", "weight_kg", "administered_at")), now=_now(),
        other_doses=[(d.at, d.dose_mg) for d in _others(write, rec, r.ANTICYTOKINE, rec.drug)],
    )


def _tpe_rules(write: SubjectWrite, rec: PlasmaExchange):
    return validation.plasma_exchange_errors(
        _values(rec, ("started_at", "ended_at", "plasma_volume_exchanged_ml", "weight_kg", "hematocrit_fraction")),
        now=_now())


def _tpe_derive(rec: PlasmaExchange):
    rec.estimated_plasma_volume_ml = rec.plasma_volumes_exchanged = None
    if rec.weight_kg and rec.hematocrit_fraction and Decimal("0.10") <= rec.hematocrit_fraction <= Decimal("0.70"):
        rec.estimated_plasma_volume_ml = estimated_plasma_volume_ml(rec.weight_kg, rec.hematocrit_fraction)
        if rec.plasma_volume_exchanged_ml:
            rec.plasma_volumes_exchanged = plasma_volumes_exchanged(rec.plasma_volume_exchanged_ml,
                                                                    rec.estimated_plasma_volume_ml)


def _crrt_rules(write: SubjectWrite, rec: HemofiltrationSession):
    return validation.hemofiltration_errors(
        _values(rec, ("started_at", "ended_at", "effluent_rate_ml_h", "weight_kg")), now=_now(),
        other_sessions=[(h.at, h.ended_at) for h in write.course.hemofiltrations if h.id != rec.pk],
    )


def _crrt_derive(rec: HemofiltrationSession):
    ok = rec.effluent_rate_ml_h is not None and rec.weight_kg
    rec.effluent_dose_ml_kg_h = effluent_dose_ml_kg_h(rec.effluent_rate_ml_h, rec.weight_kg) if ok else None


def _icu_rules(write: SubjectWrite, rec: IcuStay):
    return validation.icu_stay_errors(_values(rec, ("admitted_at", "discharged_at")), now=_now())


def _ae_rules(write: SubjectWrite, rec: AdverseEvent):
    subject, death = write.subject, write.course.death
    return validation.adverse_event_errors(
        _values(rec, ("ctcae_term", "ctcae_version", "grade", "onset_date", "resolution_date", "serious", "seriousness",
                      "relatedness", "outcome")),
        today=site_local_date(_now(), subject.site),
        enrolled_on=subject.enrolled_on,
        death_date=death.day if death else None,
    )


def _ae_derive(rec: AdverseEvent):
    """Store the list's spelling of the term, and the seriousness codes once each in a fixed order."""
    if isinstance(rec.ctcae_term, str):
        rec.ctcae_term = ctcae_terms.canonical(rec.ctcae_version, rec.ctcae_term) or " ".join(rec.ctcae_term.split())
    if isinstance(rec.seriousness, list) and all(isinstance(c, str) for c in rec.seriousness):
        rec.seriousness = validation.ordered_seriousness(rec.seriousness)


@dataclass(frozen=True)
class LogRules:
    validate: Callable  # (write, record) -> errors
    derive: Callable | None = None


LOG_RULES: dict[type, LogRules] = {
    TocilizumabDose: LogRules(_toci_rules),
    CorticosteroidDose: LogRules(_steroid_rules),
    AnticytokineDose: LogRules(_anticytokine_rules),
    PlasmaExchange: LogRules(_tpe_rules, _tpe_derive),
    HemofiltrationSession: LogRules(_crrt_rules, _crrt_derive),
    IcuStay: LogRules(_icu_rules),
    AdverseEvent: LogRules(_ae_rules, _ae_derive),
}


def _log_validate(write: SubjectWrite) -> Callable:
    def validate(record):
        errors = LOG_RULES[type(record)].validate(write, record)
        if write.subject.voided:
            errors.setdefault("subject", []).append("This subject was marked entered in error.")
        return errors
    return validate


def log_create(model: type, *, user, subject: Subject, **fields):
    """Create a rescue-therapy log entry (tocilizumab, steroid, anti-cytokine, TPE, CRRT, ICU) or a
    typed-in adverse event. The first save needs no reason for change (``fields`` may hold the ICU
    stay's own ``reason``)."""
    rules = LOG_RULES[model]
    with subject_write(subject, user=user) as write:
        record = audited_create(model(subject=write.subject, **fields), user=user,
                                validate=_log_validate(write), derive=rules.derive, savepoint=False)
        write.record(record)
        write.because = f"a {model._meta.verbose_name} was entered"
    return record


def log_update(record, *, user, version, reason, changes: dict):
    model = type(record)
    changes.pop("subject", None)
    with subject_write(record.subject, user=user) as write:
        record, changed = audited_update(model, record.pk, user=user, version=version, reason=reason,
                                         changes=changes, validate=_log_validate(write),
                                         derive=LOG_RULES[model].derive, savepoint=False)
        if changed:
            write.record(record)
            write.because = f"a {model._meta.verbose_name} was corrected"
    return record


def log_void(record, *, user, version, reason):
    model = type(record)
    with subject_write(record.subject, user=user) as write:
        record = audited_void(model, record.pk, user=user, version=version, reason=reason, savepoint=False)
        write.record(record, removed=True)
        write.because = f"a {model._meta.verbose_name} was voided"
    return record
