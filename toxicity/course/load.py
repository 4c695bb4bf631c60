"""The one loader of a subject's course: live, or as it stood at a data cut, one query per table.

``load_courses(ids)`` reads the current, non-voided rows; ``load_courses(ids, as_of=cut)`` rebuilds
each table from its audit history (per record the latest history row at or before the cut,
unless that row deletes or voids it), so a report for the same cut always reads the same rows.
Either way a batch of subjects costs one query per table, whatever its size, and rows are read
as plain tuples (no model instances; JSON columns decoded once per distinct text).

``record_of(instance, course)`` turns one model instance into its record, so that a write can
update the course it loaded instead of loading it again (``Course.with_record``).
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Max, Subquery, TextField
from django.db.models.functions import Cast

from toxicity.grading.inputs import FeverMask
from toxicity.models import (
    OBSERVATIONS,
    AnticytokineDose,
    CorticosteroidDose,
    DailyAssessment,
    EpisodeReview,
    HemofiltrationSession,
    IcuStay,
    PlasmaExchange,
    TocilizumabDose,
)
from trials.models import Death, Infusion, Subject

from . import records as r

JSON_OBSERVATIONS = tuple(f.name for f in DailyAssessment._meta.fields
                          if f.name in OBSERVATIONS and f.get_internal_type() == "JSONField")


# --- row sources ------------------------------------------------------------------------------


def _live(model, ids: list[int], key: str):
    return model.objects.filter(**{f"{key}__in": ids, "voided": False}).order_by()


def _as_of(cut: datetime):
    def rows(model, ids: list[int], key: str):
        history = model.history.model
        before = history.objects.filter(history_date__lte=cut, **{f"{key}__in": ids})
        latest = before.order_by().values("id").annotate(last=Max("history_id")).values("last")
        return (history.objects.filter(history_id__in=Subquery(latest), voided=False)
                .exclude(history_type="-").order_by())
    return rows


_SENTINEL = -7_919_031  # an id no row has: marks where a compiled statement takes the subject ids
_COMPILED: dict[tuple, tuple[str, tuple, int]] = {}


def _fetch(rows, model, ids: list[int], key: str, columns) -> list[tuple]:
    """The rows' ``columns`` as tuples. Live reads on PostgreSQL (every save, every check chunk) run
    a statement compiled once per table and column list - Django's query compiler costs more than
    the query itself - taking the subjects as one array (``= ANY``), and read date-times with
    psycopg's C loader (the same UTC datetimes Django's Python loader gives, several times faster)."""
    if rows is _live and connection.vendor == "postgresql":
        many = len(ids) > 1
        cache_key = (model, key, tuple(str(c) for c in columns), many)
        compiled = _COMPILED.get(cache_key)
        if compiled is None:
            compiled = _COMPILED[cache_key] = _compile(model, key, columns, many)
        sql, params, at = compiled
        with connection.cursor() as cursor:
            cursor.cursor.adapters.register_loader(_TIMESTAMPTZ, _C_TIMESTAMPTZ_LOADER)
            cursor.execute(sql, (*params[:at], ids if many else ids[0], *params[at + 1:]))
            return cursor.fetchall()
    return list(rows(model, ids, key).values_list(*columns))


def _compile(model, key: str, columns, many: bool) -> tuple[str, tuple, int]:
    query = model.objects.filter(**{key: _SENTINEL, "voided": False}).order_by().values_list(*columns).query
    sql, params = query.sql_with_params()
    at = list(params).index(_SENTINEL)
    if many:  # the sentinel's placeholder, "col" = %s, becomes "col" = ANY(%s)
        parts = sql.split("%s")
        if not parts[at].endswith(" = "):
            raise RuntimeError(f"cannot find the {key} placeholder in {sql!r}")  # pragma: no cover
        parts[at] += "ANY("
        parts[at + 1] = ")" + parts[at + 1]
        sql = "%s".join(parts)
    return sql, tuple(params), at


def _c_timestamptz_loader():
    from psycopg import adapters, pq

    oid = adapters.types["timestamptz"].oid
    return oid, adapters.get_loader(oid, pq.Format.TEXT)


_TIMESTAMPTZ, _C_TIMESTAMPTZ_LOADER = _c_timestamptz_loader() if connection.vendor == "postgresql" else (None, None)


class _Json:
    """Decode JSON columns read as text, each distinct text once (flags and reasons repeat)."""

    def __init__(self):
        self.cache: dict[str, object] = {}
        self.observations: dict[tuple, dict] = {}  # a stored day's observations -> one shared dict
        self.grades: dict[tuple, object] = {}  # a stored day's derived columns -> one shared Grades

    def __call__(self, text, as_tuple=False):
        if text is None:
            return None
        value = self.cache.get(text)
        if value is None:
            value = json.loads(text)
            if as_tuple:
                value = tuple(value)
            self.cache[text] = value
        return list(value) if type(value) is list else value


def _text(name):
    return Cast(name, output_field=TextField())


# --- the loader -------------------------------------------------------------------------------

ASSESSMENT_COLUMNS = ("id", "subject_id", "assessment_date", "version", "created_at", *OBSERVATIONS, *r.GRADE_COLUMNS)


def _subject_record(pk, subject_id, trial_id, site_id, tz, status, enrolled_on, day0, age, delay, capd_baseline,
                    weight, cohort_dose, voided, crs_scale, icans_scale, until_day, toci_hours):
    return (
        r.Subject(id=pk, subject_id=subject_id, trial_id=trial_id, site_id=site_id, timezone=tz, status=status,
                  enrolled_on=enrolled_on, day0=day0, age_years=age, developmental_delay=delay,
                  capd_baseline=capd_baseline, baseline_weight_kg=weight, cohort_dose_level=cohort_dose,
                  voided=voided),
        r.Trial(crs_scale, icans_scale, until_day, toci_hours),
    )


SUBJECT_COLUMNS = (
    "id", "subject_id", "trial_id", "site_id", "site__timezone", "status", "enrolled_on", "day0", "age_years",
    "developmental_delay", "capd_baseline", "baseline_weight_kg", "cohort__dose_level_cells_per_kg", "voided",
    "trial__crs_scale", "trial__icans_scale", "trial__daily_assessment_until_day", "trial__tocilizumab_response_hours",
)


def subject_values(subject: Subject) -> tuple:
    """SUBJECT_COLUMNS of a subject loaded with its site, trial and cohort (no query)."""
    return tuple(_path(subject, column) for column in SUBJECT_COLUMNS)


def _path(obj, column: str):
    for part in column.split("__"):
        obj = getattr(obj, part)
    return obj


def load_courses(subject_ids: Iterable[int], *, as_of: datetime | None = None, include_voided: bool = False,
                 subjects: Iterable[Subject] = ()) -> dict[int, r.Course]:
    """The courses of these subjects, keyed by subject id. A subject marked entered in error has
    none, unless ``include_voided`` (a write to it must still be refused with a reason). Live
    ``subjects`` already loaded with their site, trial and cohort are not read again."""
    rows = _live if as_of is None else _as_of(as_of)
    ids = list(subject_ids)
    if not ids:
        return {}
    found = {}
    for subject in subjects if as_of is None else ():
        found[subject.pk] = _subject_record(*subject_values(subject))
    todo = [pk for pk in ids if pk not in found]
    if todo:
        subject_rows = rows(Subject, todo, "id")
        if include_voided and as_of is None:
            subject_rows = Subject.objects.filter(id__in=todo).order_by()
        for values in subject_rows.values_list(*SUBJECT_COLUMNS):
            found[values[0]] = _subject_record(*values)
    subjects = {pk: value for pk, value in found.items() if include_voided or not value[0].voided}
    ids = list(subjects)
    if not ids:
        return {}
    zones = {}
    tz = {}
    for pk, (subject, _) in subjects.items():
        tz[pk] = zones.setdefault(subject.timezone, ZoneInfo(subject.timezone))

    def local(pk, moment):
        return moment.astimezone(tz[pk]).date()

    read = _Json()
    parts: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))

    json_columns = set(JSON_OBSERVATIONS) | {"flags", "reasons", "fever_masked_by"}
    columns = [_text(c) if c in json_columns else c for c in ASSESSMENT_COLUMNS]
    n_obs = len(OBSERVATIONS)
    by_subject = parts["assessments"]
    for row in _fetch(rows, DailyAssessment, ids, "subject_id", columns):
        by_subject[row[1]].append(_assessment(row, n_obs, read))

    for model, kind, extra in (
        (TocilizumabDose, r.TOCILIZUMAB, ("weight_kg",)),
        (CorticosteroidDose, r.STEROID, ("drug", "route", "weight_kg")),
        (AnticytokineDose, r.ANTICYTOKINE, ("drug", "route", "weight_kg")),
    ):
        for pk, sid, at, mg, indication, *more in _fetch(rows, model, ids, "subject_id", (
                "id", "subject_id", "administered_at", "dose_mg", "indication", *extra)):
            values = dict(zip(extra, more))
            parts["doses"][sid].append(r.Dose(
                kind=kind, id=pk, at=at, day=local(sid, at), drug=values.get("drug", "tocilizumab"), dose_mg=mg,
                indication=indication, route=values.get("route", "iv"), weight_kg=values.get("weight_kg")))
    for pk, sid, start, end, ml, volumes, weight in _fetch(rows, PlasmaExchange, ids, "subject_id", (
            "id", "subject_id", "started_at", "ended_at", "plasma_volume_exchanged_ml", "plasma_volumes_exchanged",
            "weight_kg")):
        parts["plasma_exchanges"][sid].append(r.PlasmaExchange(pk, start, end, local(sid, start), ml, volumes, weight))
    for pk, sid, start, end, modality, rate, dose, weight in _fetch(rows, HemofiltrationSession, ids, "subject_id", (
            "id", "subject_id", "started_at", "ended_at", "modality", "effluent_rate_ml_h", "effluent_dose_ml_kg_h",
            "weight_kg")):
        parts["hemofiltrations"][sid].append(r.Hemofiltration(pk, start, end, local(sid, start), modality, rate, dose,
                                                              weight))
    for pk, sid, admitted, discharged, reason, created in _fetch(rows, IcuStay, ids, "subject_id", (
            "id", "subject_id", "admitted_at", "discharged_at", "reason", "created_at")):
        parts["icu_stays"][sid].append(r.IcuStay(pk, admitted, discharged, local(sid, admitted),
                                                 local(sid, discharged) if discharged else None, reason, created))
    for pk, sid, number, at, dose, weight in _fetch(rows, Infusion, ids, "subject_id", (
            "id", "subject_id", "infusion_number", "infused_at", "dose_cells_per_kg", "weight_kg")):
        parts["infusions"][sid].append(r.Infusion(pk, number, at, local(sid, at), dose, weight))
    deaths = {sid: r.Death(pk, day, cause, created) for pk, sid, day, cause, created in
              _fetch(rows, Death, ids, "subject_id", ("id", "subject_id", "death_date", "death_primary_cause",
                                                         "created_at"))}
    for pk, sid, kind, onset, serious, seriousness, relatedness, outcome, reviewed in _fetch(
            rows, EpisodeReview, ids, "subject_id", ("id", "subject_id", "kind", "onset_date", "serious",
                                                     _text("seriousness"), "relatedness", "outcome",
                                                     _text("reviewed_episode"))):
        parts["reviews"][sid].append(r.EpisodeReview(pk, kind, onset, serious, tuple(read(seriousness) or ()),
                                                     relatedness, outcome, read(reviewed) or {}))

    courses = {}
    for pk, (subject, trial) in subjects.items():
        own = {name: by_subject.get(pk, []) for name, by_subject in parts.items()}
        courses[pk] = r.Course(
            subject=subject, trial=trial,
            assessments=tuple(sorted(own.get("assessments", ()), key=lambda a: a.day)),
            doses=tuple(sorted(own.get("doses", ()), key=lambda d: (d.at, d.kind, d.id))),
            plasma_exchanges=tuple(sorted(own.get("plasma_exchanges", ()), key=lambda p: (p.at, p.id))),
            hemofiltrations=tuple(sorted(own.get("hemofiltrations", ()), key=lambda h: (h.at, h.id))),
            icu_stays=tuple(sorted(own.get("icu_stays", ()), key=lambda s: (s.admitted_at, s.id))),
            infusions=tuple(sorted(own.get("infusions", ()), key=lambda i: (i.number, i.id))),
            death=deaths.get(pk),
            reviews=tuple(sorted(own.get("reviews", ()), key=lambda v: (v.kind, v.onset_date, v.id))),
        )
    return courses


def load_course(subject_id: int, *, as_of: datetime | None = None, include_voided: bool = False,
                subject: Subject | None = None) -> r.Course | None:
    return load_courses([subject_id], as_of=as_of, include_voided=include_voided,
                        subjects=[subject] if subject is not None else ()).get(subject_id)


# --- rows and instances to records -------------------------------------------------------------


def _mask(value) -> FeverMask | None:
    if not value:
        return None
    from datetime import date

    return FeverMask(value["drug"], date.fromisoformat(value["date"]))


def _assessment(row, n_obs: int, read) -> r.Assessment:
    """One stored day. Days with the same observations share one dict (normal days repeat), days
    with the same stored grades one (frozen) Grades, and the stored values are the record's ``key``
    (the derivation's memo)."""
    pk, _, day, version, created = row[:5]
    key = row[5:5 + n_obs]
    observations = read.observations.get(key)
    if observations is None:
        observations = dict(zip(OBSERVATIONS, key))
        for name in JSON_OBSERVATIONS:
            observations[name] = json.loads(observations[name]) if observations[name] else []
        read.observations[key] = observations
    graded = row[5 + n_obs:]
    stored = read.grades.get(graded, _NOT_READ)
    if stored is _NOT_READ:
        g = dict(zip(r.GRADE_COLUMNS, graded))
        stored = None
        if g["engine_version"]:
            g["flags"], g["reasons"] = read(g["flags"], True) or (), read(g["reasons"], True) or ()
            g["fever_masked_by"] = _mask(read(g["fever_masked_by"]))
            stored = r.Grades(**g)
        read.grades[graded] = stored
    return r.Assessment(pk, day, observations, stored, version, created, key)


_NOT_READ = object()


def grades_of_instance(a: DailyAssessment) -> r.Grades | None:
    if not a.engine_version:
        return None
    values = {name: getattr(a, name) for name in r.GRADE_COLUMNS}
    values["flags"], values["reasons"] = tuple(a.flags or ()), tuple(a.reasons or ())
    values["fever_masked_by"] = _mask(a.fever_masked_by)
    return r.Grades(**values)


def _as_stored(instance):
    """A copy of the instance's values as the database gives them back: decimals at the column's
    scale (700 -> 700.00), datetimes in UTC. A record built from a row just written is then equal
    to the one loaded later, and so are the messages and values of the queries raised from it."""
    values = {}
    for field in instance._meta.concrete_fields:
        value = getattr(instance, field.attname)
        if isinstance(value, Decimal) and field.get_internal_type() == "DecimalField":
            try:
                value = value.quantize(Decimal(1).scaleb(-field.decimal_places))
            except InvalidOperation:
                pass
        elif isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC)
        values[field.attname] = value
    return SimpleNamespace(**values)


def record_of(instance, course: r.Course):
    """The course record of one model instance (the subject's site zone gives its days)."""
    zone = ZoneInfo(course.subject.timezone)
    model = instance
    instance = _as_stored(instance)

    def local(moment):
        return moment.astimezone(zone).date()

    if isinstance(model, DailyAssessment):
        return r.Assessment(instance.id, instance.assessment_date,
                            {name: getattr(instance, name) for name in OBSERVATIONS},
                            grades_of_instance(model), instance.version, instance.created_at)
    instance.pk = instance.id
    if isinstance(model, TocilizumabDose):
        return r.Dose(r.TOCILIZUMAB, instance.pk, instance.administered_at, local(instance.administered_at),
                      "tocilizumab", instance.dose_mg, instance.indication, "iv", instance.weight_kg)
    if isinstance(model, (CorticosteroidDose, AnticytokineDose)):
        kind = r.STEROID if isinstance(model, CorticosteroidDose) else r.ANTICYTOKINE
        return r.Dose(kind, instance.pk, instance.administered_at, local(instance.administered_at), instance.drug,
                      instance.dose_mg, instance.indication, instance.route, instance.weight_kg)
    if isinstance(model, PlasmaExchange):
        return r.PlasmaExchange(instance.pk, instance.started_at, instance.ended_at, local(instance.started_at),
                                instance.plasma_volume_exchanged_ml, instance.plasma_volumes_exchanged,
                                instance.weight_kg)
    if isinstance(model, HemofiltrationSession):
        return r.Hemofiltration(instance.pk, instance.started_at, instance.ended_at, local(instance.started_at),
                                instance.modality, instance.effluent_rate_ml_h, instance.effluent_dose_ml_kg_h,
                                instance.weight_kg)
    if isinstance(model, IcuStay):
        return r.IcuStay(instance.pk, instance.admitted_at, instance.discharged_at, local(instance.admitted_at),
                         local(instance.discharged_at) if instance.discharged_at else None, instance.reason,
                         instance.created_at)
    if isinstance(model, EpisodeReview):
        return r.EpisodeReview(instance.pk, instance.kind, instance.onset_date, instance.serious,
                               tuple(instance.seriousness or ()), instance.relatedness, instance.outcome,
                               dict(instance.reviewed_episode or {}))
    if isinstance(model, Infusion):
        return r.Infusion(instance.pk, instance.infusion_number, instance.infused_at, local(instance.infused_at),
                          instance.dose_cells_per_kg, instance.weight_kg)
    if isinstance(model, Death):
        return r.Death(instance.pk, instance.death_date, instance.death_primary_cause, instance.created_at)
    return None


def kind_of(instance) -> str:
    return instance._meta.label_lower
