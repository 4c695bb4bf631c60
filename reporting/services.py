"""Keep the stored episodes equal to what the daily data derive (reports.md, "CRS and ICANS episodes").

``refresh_episodes`` runs inside every subject write (toxicity signals ``subject_grades_changed``)
and after bulk generation; it loads each subject's course in a fixed number of queries and
writes only the episodes that changed.
"""
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Max, Subquery
from django.utils import timezone

from toxicity.models import (
    AnticytokineDose,
    CorticosteroidDose,
    DailyAssessment,
    HemofiltrationSession,
    IcuStay,
    PlasmaExchange,
    TocilizumabDose,
)
from trials.models import Death, Subject

from .episodes import Course, IcuStay as Stay, Therapy, course_episodes
from .models import Episode


def _local(moment: datetime, tz: ZoneInfo) -> date:
    return timezone.localtime(moment, tz).date()


def live_rows(model, subject_ids: list[int]):
    """Current, non-voided rows of the subjects (``model`` = Subject: the subjects themselves)."""
    key = "id__in" if model is Subject else "subject_id__in"
    return model.objects.filter(**{key: subject_ids, "voided": False})


def as_of_rows(cut: datetime):
    """A row source reconstructing each table from its audit history as it stood at ``cut``:
    per record the latest history row at or before the cut, unless that row deletes or voids it."""

    def rows(model, subject_ids: list[int]):
        history = model.history.model
        key = "id__in" if model is Subject else "subject_id__in"
        before = history.objects.filter(history_date__lte=cut, **{key: subject_ids})
        latest = before.values("id").annotate(last=Max("history_id")).values("last")
        return history.objects.filter(history_id__in=Subquery(latest), voided=False).exclude(history_type="-")

    return rows


def load_courses(subject_ids: Iterable[int], *, now: datetime | None = None, rows=live_rows) -> dict[int, Course]:
    """The subjects' data (current, or as of a cut with ``rows=as_of_rows(cut)``) as
    episode-derivation input; 9 queries."""
    now = now or timezone.now()
    ids = list(subject_ids)
    subjects = {s.id: s for s in rows(Subject, ids).select_related("site", "trial")}
    ids = list(subjects)
    zones = {pk: ZoneInfo(s.site.timezone) for pk, s in subjects.items()}
    crs, icans = defaultdict(list), defaultdict(list)
    for sid, day, c, i in rows(DailyAssessment, ids).values_list(
        "subject_id", "assessment_date", "crs_grade_derived", "icans_grade_derived"
    ):
        crs[sid].append((day, c))
        icans[sid].append((day, i))
    therapies = defaultdict(list)
    for sid, at in rows(TocilizumabDose, ids).values_list("subject_id", "administered_at"):
        therapies[sid].append(Therapy("tocilizumab", _local(at, zones[sid])))
    for sid, at, drug, mg in rows(CorticosteroidDose, ids).values_list("subject_id", "administered_at", "drug", "dose_mg"):
        therapies[sid].append(Therapy("corticosteroid", _local(at, zones[sid]), drug=drug, dose_mg=mg))
    for sid, at, drug in rows(AnticytokineDose, ids).values_list("subject_id", "administered_at", "drug"):
        therapies[sid].append(Therapy("anticytokine", _local(at, zones[sid]), drug=drug))
    for sid, at, ml in rows(PlasmaExchange, ids).values_list("subject_id", "started_at", "plasma_volume_exchanged_ml"):
        therapies[sid].append(Therapy("plasma_exchange", _local(at, zones[sid]), volume_ml=ml))
    for sid, start, end in rows(HemofiltrationSession, ids).values_list("subject_id", "started_at", "ended_at"):
        hours = Decimal(max((min(end, now) if end else now) - start, start - start).total_seconds()) / 3600
        therapies[sid].append(Therapy("hemofiltration", _local(start, zones[sid]), hours=hours))
    stays = defaultdict(list)
    for sid, adm, dis in rows(IcuStay, ids).values_list("subject_id", "admitted_at", "discharged_at"):
        stays[sid].append(Stay(_local(adm, zones[sid]), _local(dis, zones[sid]) if dis else None))
    deaths = {
        sid: (day, cause) for sid, day, cause in rows(Death, ids).values_list(
            "subject_id", "death_date", "death_primary_cause"
        )
    }
    return {
        pk: Course(
            day0=s.day0,
            crs=tuple(sorted(crs[pk], key=lambda d: d[0])),
            icans=tuple(sorted(icans[pk], key=lambda d: d[0])),
            therapies=tuple(sorted(therapies[pk], key=lambda t: (t.day, t.kind, t.drug))),
            icu_stays=tuple(sorted(stays[pk], key=lambda st: st.admitted)),
            death_date=deaths.get(pk, (None, None))[0],
            death_cause=deaths.get(pk, (None, None))[1],
            crs_scale=s.trial.crs_scale,
            icans_scale=s.trial.icans_scale,
        )
        for pk, s in subjects.items()
    }


def refresh_episodes(subject_ids: Iterable[int]) -> int:
    """Re-derive and store the episodes of these subjects; returns how many rows changed."""
    now = timezone.now()
    ids = list(subject_ids)
    courses = load_courses(ids, now=now)  # a voided subject has no course: its episodes are voided
    changed = 0
    with transaction.atomic():
        stored = defaultdict(dict)
        for ep in Episode.objects.select_for_update().filter(subject_id__in=ids):
            stored[ep.subject_id][(ep.kind, ep.episode_number)] = ep
        new = []
        cut = now.date()
        for sid in ids:
            course = courses.get(sid)
            rows = course_episodes(course, cut=cut) if course is not None else []
            current = {(row["kind"], row["episode_number"]): row for row in rows}
            existing = stored[sid]
            for key, row in current.items():
                ep = existing.get(key)
                if ep is None:
                    new.append(Episode(subject_id=sid, **row))
                elif ep.voided or any(getattr(ep, k) != v for k, v in row.items()):
                    for k, v in row.items():
                        setattr(ep, k, v)
                    ep.voided = False
                    ep.save()
                    changed += 1
            for key, ep in existing.items():
                if key not in current and not ep.voided:
                    ep.voided = True
                    ep.save(update_fields=["voided", "modified_at"])
                    changed += 1
        Episode.objects.bulk_create(new)
    return changed + len(new)


def refresh_trial_episodes(trial_id: int, *, chunk: int = 500) -> int:
    """All subjects of a trial (after bulk generation or a scale change)."""
    ids = list(Subject.objects.filter(trial_id=trial_id).values_list("pk", flat=True).order_by("pk"))
    return sum(refresh_episodes(ids[i:i + chunk]) for i in range(0, len(ids), chunk))
