"""Load what the SDTM datasets need and stream them as CSV (reporting/sdtm.py does the mapping).

Subjects are read in pages of :data:`CHUNK_SUBJECTS` (keyset on ``subject_id``, so the order is
USUBJID's), and for each page a fixed number of queries loads the domain's records of those
subjects only: memory and queries per page stay the same whatever the trial's size.

Scope and disclosure are the exports' (reports.md, Exports; workflow.md, Roles): subjects the
caller reaches through an export role, voided records left out, derived episodes no longer
derived (``voided``) left out, and with ``Disclosure.shift_dates`` every date of a subject moved
by its :class:`~reporting.models.DateShift`. Nothing typed about a person is read.
"""
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from django.apps import apps
from django.utils import timezone

from toxicity import ctcae_terms
from toxicity.course.load import load_courses
from toxicity.course.records import ANTICYTOKINE, STEROID, TOCILIZUMAB
from trials.models import Death, Infusion, Subject, Trial
from trials.selectors import scoped

from . import sdtm
from .deid import Disclosure, ensure_date_shifts
from .export_views import EXPORT_ROLES
from .exports import Export, _csv_field, _rebuffer, line_blocks
from toxicity.models import Episode

from .models import DateShift

CHUNK_SUBJECTS = 200
LINES_PER_BLOCK = 500

# What each domain reads besides the subjects themselves.
NEEDS = {
    "DM": {"infusions", "deaths"},
    "EX": {"infusions"},
    "AE": {"episodes", "adverse_events", "deaths"},
    "FA": {"episodes", "assessments"},
    "CM": {"doses", "assessments"},
    "PR": {"procedures", "assessments"},
}

EPISODE_FIELDS = ("subject_id", "kind", "episode_number", "term", "scale", "onset_date", "max_grade",
                  "resolution_date", "serious", "outcome", "seriousness", "relatedness")
DOSE_KINDS = {TOCILIZUMAB: "tocilizumab", STEROID: "corticosteroid", ANTICYTOKINE: "anticytokine"}
# the observed fields SDTM maps (FA, PR, QS); the rest of the day's observations stay in the course
SDTM_OBSERVATIONS = tuple(name for name in sdtm.Assessment.__dataclass_fields__
                          if name not in ("day", "crs_grade", "icans_grade"))


def _assessment(a) -> sdtm.Assessment:
    """SDTM's view of one daily assessment of the course: the stored grades and the observations."""
    stored = a.stored
    values = {name: a.get(name) for name in SDTM_OBSERVATIONS}
    values["vasopressors"] = tuple(values["vasopressors"] or ())
    for name in ("intubation_reason", "ice_not_assessable", "consciousness"):
        values[name] = values[name] or ""
    return sdtm.Assessment(day=a.day, crs_grade=stored.crs_grade_derived if stored else None,
                           icans_grade=stored.icans_grade_derived if stored else None, **values)


def adverse_event_model():
    """The typed-in CTCAE adverse event, when the model is installed."""
    try:
        return apps.get_model("toxicity", "AdverseEvent")
    except LookupError:  # pragma: no cover - older schema without typed-in AEs
        return None


def study_of(trial: Trial) -> sdtm.Study:
    cohorts = tuple(trial.cohorts.order_by("name").values_list("name", "dose_level_cells_per_kg"))
    return sdtm.Study(protocol_code=trial.protocol_code, crs_scale=trial.crs_scale, icans_scale=trial.icans_scale,
                      title=trial.title, cohorts=cohorts)


def subject_pages(*, user, trial: Trial, size: int = CHUNK_SUBJECTS) -> Iterator[list[Subject]]:
    """The caller's subjects of the trial in ``subject_id`` order, ``size`` at a time (one query each)."""
    qs = scoped(user, Subject.objects.filter(trial=trial, voided=False), EXPORT_ROLES)
    qs = qs.select_related("site", "cohort").order_by("subject_id")
    last = None
    while True:
        page = list((qs if last is None else qs.filter(subject_id__gt=last))[:size])
        if page:
            yield page
        if len(page) < size:
            return
        last = page[-1].subject_id


def _local(moment: datetime | None, tz: ZoneInfo) -> datetime | None:
    """Site-local clock time without offset (SDTM --DTC)."""
    return None if moment is None else timezone.localtime(moment, tz).replace(tzinfo=None)


def _shifts(trial: Trial, ids: list[int]) -> dict[int, int]:
    offsets = dict(DateShift.objects.filter(subject_id__in=ids).values_list("subject_id", "days"))
    if len(offsets) < len(ids):  # a subject enrolled since the export began
        ensure_date_shifts(trial.pk)
        offsets = dict(DateShift.objects.filter(subject_id__in=ids).values_list("subject_id", "days"))
    return offsets


def load_subjects(domain: str, page: list[Subject], *, trial: Trial, disclosure: Disclosure) -> list[sdtm.Subject]:
    """One page of subjects with the records ``domain`` needs, as plain ``sdtm`` dataclasses."""
    needs = NEEDS[domain]
    ids = [s.pk for s in page]
    zones = {s.pk: ZoneInfo(s.site.timezone) for s in page}
    live = {"subject_id__in": ids, "voided": False}
    parts: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    deaths: dict[int, object] = {}

    if "infusions" in needs:
        for sid, number, product, lot, at, dose in Infusion.objects.filter(**live).values_list(
            "subject_id", "infusion_number", "product", "lot_number", "infused_at", "dose_cells_per_kg"
        ).order_by("subject_id", "infused_at", "infusion_number"):
            parts["infusions"][sid].append(sdtm.Infusion(number, product, lot, _local(at, zones[sid]), dose))
    if "deaths" in needs:
        deaths = dict(Death.objects.filter(**live).values_list("subject_id", "death_date"))
    if "episodes" in needs:
        for e in Episode.objects.filter(subject_id__in=ids, voided=False).only(*EPISODE_FIELDS):
            parts["episodes"][e.subject_id].append(sdtm.Episode(
                kind=e.kind, number=e.episode_number, term=e.term, scale=e.scale, onset_date=e.onset_date,
                max_grade=e.max_grade, resolution_date=e.resolution_date, serious=e.serious, outcome=e.outcome,
                seriousness=tuple(e.seriousness or ()), relatedness=e.relatedness,
            ))
    adverse_event = adverse_event_model() if "adverse_events" in needs else None
    if adverse_event is not None:
        for a in adverse_event.objects.filter(**live).order_by("subject_id", "onset_date", "pk"):
            parts["adverse_events"][a.subject_id].append(sdtm.AdverseEvent(
                key=a.pk, term=a.ctcae_term, soc=ctcae_terms.soc(a.ctcae_version, a.ctcae_term),
                ctcae_version=a.ctcae_version, grade=a.grade, onset_date=a.onset_date,
                resolution_date=a.resolution_date, serious=a.serious, seriousness=tuple(a.seriousness or ()),
                relatedness=a.relatedness, outcome=a.outcome,
            ))
    if needs & {"assessments", "doses", "procedures"}:  # the one loader of a subject's course
        for sid, course in load_courses(ids).items():
            zone = zones[sid]
            if "assessments" in needs:
                parts["assessments"][sid] = [_assessment(a) for a in course.assessments]
            if "doses" in needs:
                parts["doses"][sid] = [
                    sdtm.Dose(DOSE_KINDS[d.kind], d.drug, _local(d.at, zone), d.dose_mg,
                              "" if d.kind == TOCILIZUMAB else d.route, d.indication)
                    for d in course.doses]
            if "procedures" in needs:
                parts["plasma_exchanges"][sid] = [
                    sdtm.PlasmaExchange(_local(p.at, zone), _local(p.ended_at, zone), p.exchanged_ml)
                    for p in course.plasma_exchanges]
                parts["hemofiltrations"][sid] = [
                    sdtm.Hemofiltration(h.modality, _local(h.at, zone), _local(h.ended_at, zone), h.effluent_rate_ml_h)
                    for h in course.hemofiltrations]

    offsets = _shifts(trial, ids) if disclosure.shift_dates else {}
    return [
        sdtm.Subject(
            subject_id=s.subject_id, site_number=s.site.site_number, country=s.site.country, sex=s.sex,
            age_years=s.age_years, reference_date=s.day0, cohort_name=s.cohort.name,
            cohort_dose_cells_per_kg=s.cohort.dose_level_cells_per_kg, death_date=deaths.get(s.pk),
            shift_days=offsets.get(s.pk, 0),
            **{name: tuple(by_subject.get(s.pk, ())) for name, by_subject in parts.items()},
        )
        for s in page
    ]


def sdtm_subjects(domain: str, *, user, trial: Trial, disclosure: Disclosure,
                  chunk: int = CHUNK_SUBJECTS) -> Iterator[sdtm.Subject]:
    """Every subject of the caller's scope, in USUBJID order, loaded for ``domain``."""
    domain = domain.upper()
    if disclosure.shift_dates:
        ensure_date_shifts(trial.pk)
    for page in subject_pages(user=user, trial=trial, size=chunk):
        yield from load_subjects(domain, page, trial=trial, disclosure=disclosure)


def sdtm_csv(domain: str, *, user, trial: Trial, disclosure: Disclosure, chunk: int = CHUNK_SUBJECTS) -> Export:
    """The domain as CSV chunks (header = ``sdtm.VARIABLES[domain]``, as in define.json)."""
    domain = domain.upper()
    columns = sdtm.header(domain)
    export = Export(header=columns, chunks=iter(()))
    study = study_of(trial)

    def lines() -> Iterator[str]:
        subjects = sdtm_subjects(domain, user=user, trial=trial, disclosure=disclosure, chunk=chunk)
        for record in sdtm.records(domain, study, subjects):
            yield ",".join(_csv_field(text) if text else "" for text in sdtm.row_texts(domain, record))

    export.chunks = _rebuffer((",".join(columns) + "\n").encode(), line_blocks(lines(), export, LINES_PER_BLOCK))
    return export


def define(trial: Trial, *, disclosure: Disclosure) -> dict:
    return sdtm.define_document(study_of(trial), shift_dates=disclosure.shift_dates)
