"""Registry summary per subject (reports.md; issue 7): the EBMT Day-100 CAR-T toxicity items
(CRS and ICANS onset date, resolution date, highest grade) and the CIBMTR form 4100 toxicity
items we hold (CRS yes/no and date, therapy given for CRS and for ICANS, hypotension and
vasopressors, hypoxia, positive pressure). Pure: computed from a snapshot.

Readings (also in docs/api.md):
* Only episodes starting by study day 100 count (the Day-100 form's window).
* Onset = the first episode's onset; resolution = the last episode's resolution date (empty while
  it is ongoing); highest grade = the maximum over those episodes, on the trial's scale, which the
  ``*_grade_scale`` column names (the ASTCT grade when the trial grades on ASTCT 2019).
* Therapy "for CRS" / "for ICANS" = given during an episode of that toxicity; hypotension,
  vasopressors, hypoxia and positive pressure (CPAP, BiPAP, mechanical ventilation) = on any day
  of a CRS episode.
"""
from datetime import date, timedelta

from .snapshot import POSITIVE_PRESSURE, TrialSnapshot

DAY_100 = 100

HEADER = [
    "subject_id", "site_number", "cohort", "infusion_date",
    "crs", "crs_onset_date", "crs_onset_study_day", "crs_resolution_date", "crs_ongoing", "crs_max_grade",
    "crs_grade_scale", "crs_tocilizumab", "crs_corticosteroids", "crs_anakinra", "crs_siltuximab",
    "crs_hypotension", "crs_vasopressors", "crs_hypoxia", "crs_positive_pressure",
    "icans", "icans_onset_date", "icans_onset_study_day", "icans_resolution_date", "icans_ongoing",
    "icans_max_grade", "icans_grade_scale", "icans_tocilizumab", "icans_corticosteroids", "icans_anakinra",
    "icans_siltuximab",
]


def _yn(value: bool) -> str:
    return "yes" if value else "no"


def _iso(value: date | None, shift: int) -> str:
    return (value + timedelta(days=shift)).isoformat() if value else ""


def registry_rows(snapshot: TrialSnapshot, *, shifts: dict[int, int] | None = None) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)``: one row per infused subject. ``shifts`` moves dates (de-identified view)."""
    rows = []
    for s in snapshot.subjects:
        if not s.infused:
            continue
        if shifts is not None and s.pk not in shifts:
            continue  # no offset drawn: never show real dates in a shifted view
        shift = shifts[s.pk] if shifts is not None else 0
        row = [s.subject_id, s.site_number, s.cohort_name, _iso(s.day0, shift)]
        derived = snapshot.derived.get(s.pk)
        days = derived.days if derived is not None else ()
        for kind, scale in (("crs", snapshot.crs_scale), ("icans", snapshot.icans_scale)):
            eps = [e for e in (derived.episodes.of(kind) if derived is not None else [])
                   if e.onset_study_day is not None and e.onset_study_day <= DAY_100]
            eps.sort(key=lambda e: e.onset_date)
            if not eps:
                row += ["no", "", "", "", "", "0", scale, "no", "no", "no", "no"]
                if kind == "crs":
                    row += ["no", "no", "no", "no"]
                continue
            first, last = eps[0], eps[-1]
            row += [
                "yes", _iso(first.onset_date, shift), str(first.onset_study_day),
                _iso(last.resolution_date, shift), _yn(last.ongoing),
                str(max(e.max_grade for e in eps)), scale,
                _yn(any(e.tocilizumab_doses for e in eps)),
                _yn(any(e.corticosteroid_given for e in eps)),
                _yn(any(e.anakinra_doses for e in eps)),
                _yn(any(e.siltuximab_doses for e in eps)),
            ]
            if kind == "crs":
                in_crs = [d.assessment for d in days if any(e.contains(d.day) for e in derived.episodes.crs)]
                row += [_yn(any(a.get("hypotension") for a in in_crs)), _yn(any(a.get("vasopressors") for a in in_crs)),
                        _yn(any(a.get("hypoxia") for a in in_crs)),
                        _yn(any(a.get("oxygen_device") in POSITIVE_PRESSURE for a in in_crs))]
        rows.append(row)
    return HEADER, rows
