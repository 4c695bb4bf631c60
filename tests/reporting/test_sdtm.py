"""SDTM-style datasets (reports.md, Exports; api.md ``sdtm/{domain}.csv``) and define.json.

The mapping is pure (reporting/sdtm.py), tested on plain records first; then the endpoints: AE rows
equal the derived episodes, --DY without day 0 around the reference date, DM with AGE and no birth
date, define.json = the CSV headers, the sponsor's date shift, scoping and a constant query count.
"""
import ast
import csv
import io
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reporting import sdtm
from reporting.deid import IDENTIFIED, Disclosure, shifts_for
from reporting.models import AccessLogEntry
from toxicity.models import Episode
from reporting.sdtm_data import adverse_event_model, sdtm_csv
from toxicity import services
from toxicity.models import CorticosteroidDose, HemofiltrationSession, PlasmaExchange, TocilizumabDose

from tests.factories import make_infusion, make_subject

NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")
REF = date(2026, 3, 10)
DOMAINS = ("dm", "ex", "ae", "fa", "cm", "pr")
AdverseEvent = adverse_event_model()


# ============================================================================================
# Pure functions
# ============================================================================================


def test_the_mapping_module_has_no_django_import():
    tree = ast.parse((Path(sdtm.__file__)).read_text(encoding="utf-8"))
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m and (m.startswith("django") or m.startswith("rest_framework"))]


@pytest.mark.parametrize("on, expected", [
    (REF - timedelta(days=2), -2),
    (REF - timedelta(days=1), -1),  # the day before the reference date
    (REF, 1),  # the reference date itself: there is no day 0
    (REF + timedelta(days=1), 2),
    (datetime.combine(REF - timedelta(days=1), time(23, 59)), -1),  # date-times count by their local date
    (datetime.combine(REF, time(0, 0)), 1),
])
def test_study_day_has_no_day_zero(on, expected):
    assert sdtm.study_day(on, REF) == expected


def test_study_day_is_empty_without_a_date_or_a_reference():
    assert sdtm.study_day(None, REF) is None and sdtm.study_day(REF, None) is None


@pytest.mark.parametrize("value, shift, expected", [
    (REF, 0, "2026-03-10"),
    (REF, -3, "2026-03-07"),
    (datetime(2026, 3, 10, 22, 5, 59), 0, "2026-03-10T22:05"),
    (datetime(2026, 3, 10, 22, 5), 30, "2026-04-09T22:05"),
    (None, 5, None),
])
def test_dtc_is_iso_8601_moved_by_the_shift(value, shift, expected):
    assert sdtm.dtc(value, shift) == expected


@pytest.mark.parametrize("value, text", [
    (1.0e6, "1000000"), (2.5e8, "250000000"), (0.5, "0.5"), (Decimal("38.60"), "38.6"),
    (Decimal("100"), "100"), (3000, "3000"), (0, "0"), (None, ""),
])
def test_numbers_have_no_exponent_and_no_trailing_zeros(value, text):
    assert sdtm.num_text(value) == text


@pytest.mark.parametrize("crf, cdisc", [("female", "F"), ("male", "M"), ("unknown", "U"), ("other", "UNDIFFERENTIATED")])
def test_sex_uses_the_cdisc_codelist(crf, cdisc):
    row = next(sdtm.dm_records(sdtm.Study("P"), sdtm.Subject("101-1", sex=crf)))
    assert row["SEX"] == cdisc


def test_country_is_alpha_3():
    assert [sdtm.country_alpha3(c) for c in ("DE", "us", "GB", "CH", "")] == ["DEU", "USA", "GBR", "CHE", None]
    assert len(sdtm.ALPHA3) == 249


def day(n: int) -> date:
    """The calendar date n days after the reference date (n = 0 is the reference date)."""
    return REF + timedelta(days=n)


def rich_subject(**overrides) -> sdtm.Subject:
    """A subject with a record of every kind: CRS from the day before the reference date."""
    at = lambda n, h=9: datetime.combine(day(n), time(h, 0))  # noqa: E731
    assessments = (
        sdtm.Assessment(day(-1), crs_grade=1, icans_grade=0, temperature_max_c=Decimal("38.4"), ice_score=10),
        sdtm.Assessment(day(0), crs_grade=3, icans_grade=None, temperature_max_c=Decimal("39.0"), hypotension=True,
                        vasopressors=("norepinephrine", "vasopressin"), hypoxia=True, oxygen_device="nasal_cannula",
                        oxygen_flow_l_min=Decimal("4.0"), ice_not_assessable="sedated", consciousness="sedated"),
        sdtm.Assessment(day(1), crs_grade=None, icans_grade=2, temperature_max_c=None, hypotension=True,
                        vasopressors=("norepinephrine",), oxygen_device="mechanical_ventilation",
                        intubation_reason="airway_protection", ice_score=5, consciousness="awakens_to_voice"),
        sdtm.Assessment(day(2), crs_grade=0, icans_grade=0, temperature_max_c=Decimal("36.9"), ice_score=10),
        sdtm.Assessment(day(4), crs_grade=0, icans_grade=0, vasopressors=("norepinephrine",), hypotension=True,
                        oxygen_device="nasal_cannula", oxygen_flow_l_min=Decimal("2")),
    )
    fields = dict(
        subject_id="101-0001", site_number="101", country="DE", sex="female", age_years=56, reference_date=REF,
        cohort_name="DL1", cohort_dose_cells_per_kg=1.0e6,
        infusions=(sdtm.Infusion(1, "tisagenlecleucel", "LOT-1", at(0, 10), 1.0e6),),
        assessments=assessments,
        episodes=(
            sdtm.Episode("icans", 1, sdtm.EPISODE_TERMS["icans"], "astct_2019", day(1), 2, day(2), False, "recovered"),
            sdtm.Episode("crs", 1, sdtm.EPISODE_TERMS["crs"], "astct_2019", day(-1), 3, day(2), True, "recovered"),
        ),
        adverse_events=(sdtm.AdverseEvent(7, "Febrile neutropenia", "Blood and lymphatic system disorders", "v5.0", 3,
                                          day(5), None, True, ("hospitalization",), "possible", "not_recovered"),),
        doses=(sdtm.Dose("tocilizumab", "tocilizumab", at(0, 12), Decimal("560.00"), "", "crs"),
               sdtm.Dose("corticosteroid", "dexamethasone", at(1), Decimal("10"), "iv", "icans")),
        plasma_exchanges=(sdtm.PlasmaExchange(at(1, 8), at(1, 10), 3000),),
        hemofiltrations=(sdtm.Hemofiltration("cvvhdf", at(1, 14), None, 1750),),
    )
    return sdtm.Subject(**{**fields, **overrides})


STUDY = sdtm.Study("CART-19-001", cohorts=(("DL1", 1.0e6),))


@pytest.mark.parametrize("domain", sdtm.DOMAIN_CODES)
def test_every_record_has_exactly_the_variables_of_its_domain(domain):
    rows = list(sdtm.records(domain, STUDY, [rich_subject()]))
    assert rows
    for row in rows:
        assert set(row) == set(sdtm.header(domain))
        assert row["STUDYID"] == "CART-19-001" and row["DOMAIN"] == domain
        assert row["USUBJID"] == "CART-19-001-101-0001"
    if domain != "DM":
        assert [r[f"{domain}SEQ"] for r in rows] == list(range(1, len(rows) + 1))


def test_ae_episodes_first_then_typed_in_events_with_study_days_around_the_reference():
    rows = list(sdtm.ae_records(STUDY, rich_subject()))
    assert [(r["AESPID"], r["AECAT"]) for r in rows] == [
        ("CRS-1", "CAR-T TOXICITY"), ("ICANS-1", "CAR-T TOXICITY"), ("AE-7", "CTCAE")]
    crs, icans, other = rows
    assert (crs["AESTDTC"], crs["AESTDY"], crs["AEENDTC"], crs["AEENDY"]) == ("2026-03-09", -1, "2026-03-12", 3)
    assert (icans["AESTDY"], icans["AEENDY"]) == (2, 3)
    assert crs["AETOXGR"] == "3" and crs["AETOXSCL"] == "astct_2019" and crs["AEREL"] == "RELATED"
    assert (crs["AESER"], crs["AEOUT"], crs["AESDTH"]) == ("Y", "RECOVERED/RESOLVED", "N")
    assert crs["AEDECOD"] == "Cytokine release syndrome" and crs["AEBODSYS"] == "Immune system disorders"
    assert crs["AEENRTPT"] is None
    assert other["AETOXSCL"] == "ctcae_v5" and other["AETOXGR"] == "3" and other["AEREL"] == "POSSIBLY RELATED"
    assert (other["AESHOSP"], other["AESDTH"], other["AESLIFE"]) == ("Y", "N", "N")
    assert (other["AEENDTC"], other["AEENRTPT"], other["AEENTPT"]) == (None, "ONGOING", "DATA CUT")
    assert other["AEOUT"] == "NOT RECOVERED/NOT RESOLVED"


def test_fatal_episode_ends_with_the_death_and_is_not_ongoing():
    fatal = sdtm.Episode("crs", 1, sdtm.EPISODE_TERMS["crs"], "astct_2019", day(1), 5, None, True, "fatal")
    row = next(sdtm.ae_records(STUDY, rich_subject(episodes=(fatal,), adverse_events=(), death_date=day(3))))
    assert (row["AEOUT"], row["AESDTH"], row["AEENDTC"], row["AEENDY"], row["AEENRTPT"]) == (
        "FATAL", "Y", "2026-03-13", 4, None)


def test_fa_has_the_daily_grade_and_components_of_each_episode_day():
    rows = list(sdtm.fa_records(STUDY, rich_subject()))
    crs = [r for r in rows if r["FALNKID"] == "CRS-1"]
    # onset (day -1) <= date < resolution (day 2): the day before the reference date, the reference date, the day after
    assert sorted({(r["FADTC"], r["FADY"]) for r in crs}) == [("2026-03-09", -1), ("2026-03-10", 1), ("2026-03-11", 2)]
    grades = {r["FADY"]: r["FAORRES"] for r in crs if r["FATESTCD"] == "CRSGR"}
    assert grades == {-1: "1", 1: "3", 2: "NE"}
    by = {(r["FADY"], r["FATESTCD"]): r for r in crs}
    assert by[(1, "TEMP")]["FASTRESN"] == Decimal("39.0") and by[(1, "TEMP")]["FAORRESU"] == "C"
    assert by[(2, "TEMP")]["FASTAT"] == "NOT DONE" and by[(2, "TEMP")]["FAORRES"] is None
    assert by[(1, "VASOPR")]["FAORRES"] == "NOREPINEPHRINE;VASOPRESSIN"
    assert by[(-1, "VASOPR")]["FAORRES"] == "NONE"
    assert by[(1, "O2DEV")]["FAORRES"] == "NASAL CANNULA" and by[(1, "O2FLOW")]["FASTRESN"] == Decimal("4.0")
    assert (-1, "O2FLOW") not in by  # no flow recorded that day
    assert {r["FAOBJ"] for r in crs} == {"Cytokine release syndrome"}
    assert not {"ICESCR", "ICANSGR"} & {r["FATESTCD"] for r in crs}
    icans = {(r["FADY"], r["FATESTCD"]): r for r in rows if r["FALNKID"] == "ICANS-1"}
    assert set(d for d, _ in icans) == {2}
    assert icans[(2, "ICANSGR")]["FAORRES"] == "2" and icans[(2, "LOC")]["FAORRES"] == "AWAKENS TO VOICE"
    assert icans[(2, "ICESCR")]["FASTRESN"] == 5 and (2, "CAPDSCR") not in icans


def test_fa_of_an_ongoing_episode_runs_to_the_last_assessment():
    ongoing = sdtm.Episode("crs", 1, sdtm.EPISODE_TERMS["crs"], "astct_2019", day(1), 3, None, True, "not_recovered")
    rows = list(sdtm.fa_records(STUDY, rich_subject(episodes=(ongoing,))))
    assert sorted({r["FADY"] for r in rows}) == [2, 3, 5]


def test_not_assessable_ice_is_not_done_with_the_reason():
    ep = sdtm.Episode("icans", 1, sdtm.EPISODE_TERMS["icans"], "astct_2019", day(0), 3, day(2), True, "recovered")
    rows = {(r["FADY"], r["FATESTCD"]): r for r in sdtm.fa_records(STUDY, rich_subject(episodes=(ep,)))}
    assert (rows[(1, "ICESCR")]["FASTAT"], rows[(1, "ICESCR")]["FAREASND"]) == ("NOT DONE", "SEDATED")
    assert rows[(1, "ICANSGR")]["FAORRES"] == "NE" and rows[(1, "ICANSGR")]["FASTRESN"] is None


def test_vasopressor_and_support_runs_are_consecutive_days():
    assessments = rich_subject().assessments
    assert sorted(sdtm.vasopressor_runs(assessments)) == [
        ("norepinephrine", "HYPOTENSION", day(0), day(1)),  # the gap on day 3 starts a new run
        ("norepinephrine", "HYPOTENSION", day(4), day(4)),
        ("vasopressin", "HYPOTENSION", day(0), day(0)),
    ]
    assert sorted(sdtm.support_runs(assessments)) == [
        ("mechanical_ventilation", "airway_protection", day(1), day(1)),
        ("nasal_cannula", "", day(0), day(0)),
        ("nasal_cannula", "", day(4), day(4)),
    ]


def test_vasopressin_for_another_indication_is_its_own_run():
    a = sdtm.Assessment(day(0), vasopressors=("vasopressin",), vasopressin_other_indication=True)
    assert sdtm.vasopressor_runs([a]) == [("vasopressin", "OTHER", day(0), day(0))]


def test_cm_and_pr_records():
    cm = list(sdtm.cm_records(STUDY, rich_subject()))
    assert [(r["CMTRT"], r["CMSTDY"], r["CMENDY"]) for r in cm] == [
        ("NOREPINEPHRINE", 1, 2), ("VASOPRESSIN", 1, 1), ("TOCILIZUMAB", 1, None), ("DEXAMETHASONE", 2, None),
        ("NOREPINEPHRINE", 5, 5),
    ]
    toci = cm[2]
    assert (toci["CMDOSE"], toci["CMDOSU"], toci["CMROUTE"], toci["CMINDC"], toci["CMSTDTC"]) == (
        Decimal("560.00"), "mg", "INTRAVENOUS", "CYTOKINE RELEASE SYNDROME", "2026-03-10T12:00")
    assert cm[0]["CMINDC"] == "HYPOTENSION" and cm[0]["CMSTDTC"] == "2026-03-10" and cm[0]["CMENDTC"] == "2026-03-11"
    pr = list(sdtm.pr_records(STUDY, rich_subject()))
    assert [(r["PRTRT"], r["PRSTDY"]) for r in pr] == [
        ("NASAL CANNULA OXYGEN", 1), ("MECHANICAL VENTILATION", 2), ("PLASMA EXCHANGE", 2),
        ("CONTINUOUS VENOVENOUS HEMODIAFILTRATION", 2), ("NASAL CANNULA OXYGEN", 5),
    ]
    tpe, crrt = pr[2], pr[3]
    assert (tpe["PRDOSE"], tpe["PRDOSU"], tpe["PRSTDTC"], tpe["PRENDTC"]) == (3000, "mL", "2026-03-11T08:00", "2026-03-11T10:00")
    assert (crrt["PRENDTC"], crrt["PRENRTPT"], crrt["PRENTPT"]) == (None, "ONGOING", "DATA CUT")
    assert pr[1]["PRINDC"] == "AIRWAY PROTECTION"


def test_shift_moves_every_date_and_keeps_every_study_day():
    plain, shifted = rich_subject(), rich_subject(shift_days=-40)
    for domain in sdtm.DOMAIN_CODES:
        for a, b in zip(sdtm.records(domain, STUDY, [plain]), sdtm.records(domain, STUDY, [shifted]), strict=True):
            for name in a:
                if name.endswith("DTC") and a[name]:
                    moved = datetime.fromisoformat(a[name]) - timedelta(days=40)
                    assert b[name] == (moved.date().isoformat() if len(a[name]) == 10 else moved.strftime("%Y-%m-%dT%H:%M"))
                else:
                    assert b[name] == a[name], (domain, name)


def test_define_document_lists_the_variables_and_codelists_of_each_domain():
    doc = sdtm.define_document(STUDY, shift_dates=False)
    assert [d["name"] for d in doc["datasets"]] == ["DM", "EX", "AE", "FA", "CM", "PR"]
    names = {c["name"] for c in doc["codelists"]}
    for dataset in doc["datasets"]:
        assert [v["name"] for v in dataset["variables"]] == sdtm.header(dataset["name"])
        for v in dataset["variables"]:
            assert v["type"] in ("Char", "Num") and v["label"] and len(v["label"]) <= 40
            assert v["codelist"] is None or v["codelist"] in names
    arms = next(c for c in doc["codelists"] if c["name"] == "ARMCD")
    assert arms["terms"] == [{"code": "DL1", "decode": "Dose level DL1 1000000 cells/kg"}]


# ============================================================================================
# The endpoints
# ============================================================================================


def assess(world, subject, user, n, **fields):
    return services.assessment_create(
        user=world.users[user], subject=subject, assessment_date=subject.day0 + timedelta(days=n), **{**NORMAL, **fields}
    )


def local(world, subject, n, hour=9, minute=0):
    tz = ZoneInfo(subject.site.timezone)
    return datetime.combine(subject.day0 + timedelta(days=n), time(hour, minute), tzinfo=tz)


@pytest.fixture
def course(world):
    """A: fever from the day before day 0, grade 3 on day 1, resolved day 3; ICANS grade 2 on day 2.
    B: CRS grade 1 on day 1, ongoing."""
    a, b = world.subject_a, world.subject_b
    assess(world, a, "coordinator_a", -1, temperature_max_c=Decimal("38.3"))
    assess(world, a, "coordinator_a", 0, temperature_max_c=Decimal("38.9"))
    assess(world, a, "coordinator_a", 1, temperature_max_c=Decimal("38.6"), hypotension=True,
           vasopressors=["norepinephrine"])
    assess(world, a, "coordinator_a", 2, temperature_max_c=Decimal("38.1"), ice_score=5)
    assess(world, a, "coordinator_a", 3)
    assess(world, b, "coordinator_b", 0)
    assess(world, b, "coordinator_b", 1, temperature_max_c=Decimal("38.2"))
    return world


def get_csv(world, user, domain, **params):
    response = world.client(user).get(f"/api/v1/sdtm/{domain}.csv", params)
    assert response.status_code == 200, getattr(response, "data", response)
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def get_rows(world, user, domain, **params):
    header, *rows = get_csv(world, user, domain, **params)
    return [dict(zip(header, r, strict=True)) for r in rows]


def test_ae_rows_equal_the_derived_episodes(course):
    rows = get_rows(course, "data_manager", "ae", trial=course.trial.pk)
    episodes = Episode.objects.filter(subject__trial=course.trial, voided=False).select_related("subject")
    assert len(rows) == episodes.count() == 3
    protocol = course.trial.protocol_code
    got = {(r["USUBJID"], r["AETERM"], r["AETOXGR"], r["AESTDTC"], r["AEENDTC"], r["AETOXSCL"]) for r in rows}
    expected = {
        (f"{protocol}-{e.subject.subject_id}", e.term, str(e.max_grade), e.onset_date.isoformat(),
         e.resolution_date.isoformat() if e.resolution_date else "", e.scale)
        for e in episodes
    }
    assert got == expected
    crs_a = next(r for r in rows if r["USUBJID"].endswith(course.subject_a.subject_id) and r["AESPID"] == "CRS-1")
    assert crs_a["AETOXGR"] == "3"  # the number only
    assert (crs_a["AESTDY"], crs_a["AEENDY"]) == ("-1", "4")  # onset the day before day 0; resolved CRF day 3
    # grade 3 is severe, not serious (ICH E2A): no criterion holds, every flag is N
    assert crs_a["AESER"] == "N" and crs_a["AEOUT"] == "RECOVERED/RESOLVED" and crs_a["AEREL"] == "RELATED"
    assert {crs_a[f] for f in ("AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG", "AESMIE")} == {"N"}
    crs_b = next(r for r in rows if r["USUBJID"].endswith(course.subject_b.subject_id))
    assert (crs_b["AESTDY"], crs_b["AEENDTC"], crs_b["AEENRTPT"], crs_b["AEOUT"]) == (
        "2", "", "ONGOING", "NOT RECOVERED/NOT RESOLVED")
    order = [(r["USUBJID"], int(r["AESEQ"])) for r in rows]
    assert order == sorted(order)


def test_fa_study_days_around_the_reference_date(course):
    rows = get_rows(course, "data_manager", "fa", trial=course.trial.pk)
    a = [r for r in rows if r["USUBJID"].endswith(course.subject_a.subject_id) and r["FALNKID"] == "CRS-1"]
    grades = {(r["FADTC"], r["FADY"]): r["FAORRES"] for r in a if r["FATESTCD"] == "CRSGR"}
    day0 = course.subject_a.day0
    assert grades == {
        ((day0 - timedelta(days=1)).isoformat(), "-1"): "1",  # the day before the reference date
        (day0.isoformat(), "1"): "1",  # the reference date
        ((day0 + timedelta(days=1)).isoformat(), "2"): "3",  # the day after
        ((day0 + timedelta(days=2)).isoformat(), "3"): "1",
    }
    temps = {r["FADY"]: (r["FAORRES"], r["FAORRESU"], r["FASTRESN"]) for r in a if r["FATESTCD"] == "TEMP"}
    assert temps["2"] == ("38.6", "C", "38.6")
    icans = [r for r in rows if r["FALNKID"] == "ICANS-1"]
    assert {(r["FATESTCD"], r["FAORRES"]) for r in icans} >= {("ICANSGR", "2"), ("ICESCR", "5")}
    assert all(r["FADY"] != "0" for r in rows)


def test_dm_has_age_and_no_birth_date(course):
    header, *rows = get_csv(course, "coordinator_a", "dm")
    body = "\n".join(",".join(r) for r in [header, *rows])
    assert "BRTHDTC" not in header and "AGE" in header and "AGEU" in header
    assert "1970-06-01" not in body and "1970" not in body  # the factory's birth date, nowhere
    row = dict(zip(header, rows[0]))
    a = course.subject_a
    assert row["AGE"] == str(a.age_years) and row["AGEU"] == "YEARS" and row["SEX"] == "F"
    assert row["RFSTDTC"] == a.day0.isoformat()
    assert row["RFXSTDTC"] == f"{a.day0.isoformat()}T10:00"  # site-local clock time, no offset
    assert (row["SITEID"], row["COUNTRY"], row["ARMCD"], row["ACTARMCD"]) == ("101", "DEU", "DL1", "DL1")
    assert row["ARM"] == "Dose level DL1 1000000 cells/kg" and row["DTHFL"] == ""


def test_dm_of_a_subject_not_yet_infused_and_of_a_death(course):
    late = make_subject(course.users["coordinator_a"], course.site_a, course.cohort)
    from trials import services as trial_services
    trial_services.death_record(subject=course.subject_a, user=course.users["coordinator_a"],
                                death_date=course.subject_a.day0 + timedelta(days=4), death_primary_cause="other",
                                death_cause_other_text="typed by the site about the person")
    rows = {r["SUBJID"]: r for r in get_rows(course, "data_manager", "dm")}
    assert (rows[late.subject_id]["ACTARMCD"], rows[late.subject_id]["ARMNRS"]) == ("", "ASSIGNED, NOT TREATED")
    assert rows[late.subject_id]["RFSTDTC"] == ""
    dead = rows[course.subject_a.subject_id]
    assert (dead["DTHFL"], dead["DTHDTC"]) == ("Y", (course.subject_a.day0 + timedelta(days=4)).isoformat())
    for domain in DOMAINS:
        assert "typed by the site" not in "".join(",".join(r) for r in get_csv(course, "data_manager", domain))


def test_ex_one_row_per_infusion(course):
    rows = get_rows(course, "data_manager", "ex")
    assert len(rows) == 2
    row = next(r for r in rows if r["USUBJID"].endswith(course.subject_b.subject_id))
    assert (row["EXTRT"], row["EXDOSE"], row["EXDOSU"], row["EXROUTE"], row["EXLOT"]) == (
        "TISAGENLECLEUCEL", "1000000", "cells/kg", "INTRAVENOUS", "LOT-1")
    assert (row["EXSTDTC"], row["EXSTDY"], row["EXSEQ"]) == (f"{course.subject_b.day0.isoformat()}T10:00", "1", "1")


def test_cm_and_pr_from_the_logs_and_the_assessments(course):
    a, user = course.subject_a, course.users["coordinator_a"]
    services.log_create(TocilizumabDose, user=user, subject=a, administered_at=local(course, a, 1, 11),
                        dose_mg=Decimal("560"), weight_kg=Decimal("70"), indication="crs")
    services.log_create(CorticosteroidDose, user=user, subject=a, drug="dexamethasone",
                        administered_at=local(course, a, 2, 8), dose_mg=Decimal("10"), route="iv", indication="icans")
    services.log_create(PlasmaExchange, user=user, subject=a, started_at=local(course, a, 2, 8),
                        ended_at=local(course, a, 2, 10), plasma_volume_exchanged_ml=3000, replacement_fluid="albumin_5",
                        hematocrit_fraction=Decimal("0.30"), weight_kg=Decimal("70"))
    services.log_create(HemofiltrationSession, user=user, subject=a, modality="cvvh", started_at=local(course, a, 2, 12),
                        ended_at=None, effluent_rate_ml_h=1750, weight_kg=Decimal("70"))
    assess(course, a, "coordinator_a", 4, hypoxia=True, oxygen_device="nasal_cannula", oxygen_flow_l_min=Decimal("2"),
           temperature_max_c=Decimal("36.5"))
    assess(course, a, "coordinator_a", 5, hypoxia=True, oxygen_device="nasal_cannula", oxygen_flow_l_min=Decimal("3"),
           temperature_max_c=Decimal("36.5"))
    cm = get_rows(course, "coordinator_a", "cm")
    assert [(r["CMTRT"], r["CMSTDY"], r["CMENDY"]) for r in cm] == [
        ("NOREPINEPHRINE", "2", "2"), ("TOCILIZUMAB", "2", ""), ("DEXAMETHASONE", "3", "")]
    assert cm[1]["CMSTDTC"] == f"{(a.day0 + timedelta(days=1)).isoformat()}T11:00" and cm[1]["CMDOSE"] == "560"
    pr = get_rows(course, "coordinator_a", "pr")
    assert [(r["PRTRT"], r["PRSTDY"], r["PRENDY"]) for r in pr] == [
        ("PLASMA EXCHANGE", "3", "3"), ("CONTINUOUS VENOVENOUS HEMOFILTRATION", "3", ""),
        ("NASAL CANNULA OXYGEN", "5", "6")]
    assert pr[0]["PRDOSE"] == "3000" and pr[1]["PRENRTPT"] == "ONGOING"


@pytest.mark.skipif(AdverseEvent is None, reason="typed-in adverse events are not installed")
def test_typed_in_adverse_events_follow_the_episodes(course):
    a = course.subject_a
    services.log_create(AdverseEvent, user=course.users["coordinator_a"], subject=a, ctcae_term="Febrile neutropenia",
                        ctcae_version="v5.0", grade=3, onset_date=a.day0 + timedelta(days=5), resolution_date=None,
                        serious=True, seriousness=["hospitalization"], relatedness="probable", outcome="not_recovered")
    rows = [r for r in get_rows(course, "sponsor", "ae") if r["USUBJID"].endswith(a.subject_id)]
    assert [r["AECAT"] for r in rows] == ["CAR-T TOXICITY", "CAR-T TOXICITY", "CTCAE"]
    ae = rows[-1]
    assert (ae["AETERM"], ae["AETOXGR"], ae["AETOXSCL"], ae["AEREL"], ae["AESER"], ae["AESHOSP"]) == (
        "Febrile neutropenia", "3", "ctcae_v5", "PROBABLY RELATED", "Y", "Y")
    assert (ae["AEBODSYS"], ae["AESTDY"], ae["AEENRTPT"], ae["AESEQ"]) == (
        "Blood and lymphatic system disorders", "6", "ONGOING", "3")


def test_define_json_variables_are_the_csv_headers(course):
    response = course.client("sponsor").get("/api/v1/sdtm/define.json", {"trial": course.trial.pk})
    assert response.status_code == 200
    doc = response.json()
    by_name = {d["name"]: d for d in doc["datasets"]}
    for domain in DOMAINS:
        header = get_csv(course, "sponsor", domain)[0]
        assert header == [v["name"] for v in by_name[domain.upper()]["variables"]], domain
    toxgr = next(v for v in by_name["AE"]["variables"] if v["name"] == "AETOXGR")
    assert toxgr["toxicity_scales"]["CAR-T TOXICITY"]["CRS"]["code"] == course.trial.crs_scale
    assert doc["toxicity_scales"]["CRS"]["code"] == "astct_2019"
    assert doc["study"]["STUDYID"] == course.trial.protocol_code
    assert "YYYY-MM-DDTHH:MM" in doc["conventions"]["datetimes"]


def test_sponsor_with_date_shift_gets_shifted_dates_and_the_same_study_days(course):
    course.trial.export_date_shift = True
    course.trial.save()
    offsets = shifts_for(course.trial.pk)
    for domain, date_fields, day_fields in (
        ("ae", ("AESTDTC", "AEENDTC"), ("AESTDY", "AEENDY")),
        ("fa", ("FADTC",), ("FADY",)),
        ("dm", ("RFSTDTC", "RFXSTDTC"), ()),
        ("ex", ("EXSTDTC",), ("EXSTDY",)),
        ("cm", ("CMSTDTC", "CMENDTC"), ("CMSTDY",)),
    ):
        real = get_rows(course, "data_manager", domain)
        shifted = get_rows(course, "sponsor", domain)
        assert len(real) == len(shifted) > 0
        subjects = {f"{course.trial.protocol_code}-{s.subject_id}": s.pk for s in (course.subject_a, course.subject_b)}
        for r, s in zip(real, shifted, strict=True):
            days = offsets[subjects[r["USUBJID"]]]
            for name in date_fields:
                if r[name]:
                    moved = datetime.fromisoformat(r[name]) + timedelta(days=days)
                    expected = moved.date().isoformat() if len(r[name]) == 10 else moved.strftime("%Y-%m-%dT%H:%M")
                    assert s[name] == expected != r[name], (domain, name)
            for name in day_fields:
                assert s[name] == r[name], (domain, name)
    # a data manager of the trial is not shifted; the define says the sponsor's dates are
    doc = course.client("sponsor").get("/api/v1/sdtm/define.json").json()
    assert "shifted" in doc["conventions"]["date_shift"]


def test_site_roles_see_only_their_sites(course):
    for domain in DOMAINS:
        rows = get_rows(course, "coordinator_b", domain)
        assert {r["USUBJID"] for r in rows} <= {f"{course.trial.protocol_code}-{course.subject_b.subject_id}"}
    assert len(get_rows(course, "coordinator_b", "dm")) == 1
    assert len(get_rows(course, "monitor_a", "ae")) == 2


@pytest.mark.parametrize("user", ["dsmb", "outsider", "nobody"])
@pytest.mark.parametrize("path", ["sdtm/ae.csv", "sdtm/dm.csv", "sdtm/define.json"])
def test_outside_export_scope_is_404(course, user, path):
    response = course.client(user).get(f"/api/v1/{path}", {"trial": course.trial.pk})
    assert response.status_code == 404


def test_unknown_domain_is_404_and_a_bad_trial_400(course):
    client = course.client("sponsor")
    assert client.get("/api/v1/sdtm/xx.csv", {"trial": course.trial.pk}).status_code == 404
    response = client.get("/api/v1/sdtm/ae.csv", {"trial": "x"})
    assert response.status_code == 400 and "trial" in response.content.decode()
    assert client.get("/api/v1/sdtm/AE.csv", {"trial": course.trial.pk}).status_code == 200


def test_every_sdtm_download_is_in_the_access_log(course):
    rows = get_rows(course, "sponsor", "fa", trial=course.trial.pk)
    entry = AccessLogEntry.objects.get(resource="sdtm-fa")
    assert entry.user == course.users["sponsor"] and entry.completed and entry.row_count == len(rows) > 0


def test_voided_records_are_left_out(course):
    a = services.assessment_create(user=course.users["coordinator_b"], subject=course.subject_b,
                                   assessment_date=course.subject_b.day0 + timedelta(days=2),
                                   **{**NORMAL, "temperature_max_c": Decimal("38.4")})
    before = len(get_rows(course, "data_manager", "fa"))
    services.assessment_void(assessment=a, user=course.users["coordinator_b"], version=a.version, reason="wrong day")
    assert len(get_rows(course, "data_manager", "fa")) < before
    assert len(get_rows(course, "data_manager", "ae")) == Episode.objects.filter(voided=False).count()


@pytest.mark.parametrize("domain", [d.upper() for d in DOMAINS])
def test_queries_per_page_do_not_grow_with_the_number_of_subjects(course, domain):
    user = course.users["data_manager"]

    def count():
        export = sdtm_csv(domain, user=user, trial=course.trial, disclosure=IDENTIFIED)
        with CaptureQueriesContext(connection) as ctx:
            b"".join(export.chunks)
        return len(ctx.captured_queries)

    count()  # the caller's roles are loaded once per user object
    before = count()
    for _ in range(3):
        extra = make_subject(course.users["coordinator_a"], course.site_a, course.cohort)
        make_infusion(course.users["coordinator_a"], extra)
        extra.refresh_from_db()
        assess(course, extra, "coordinator_a", 0, temperature_max_c=Decimal("38.5"), vasopressors=["dopamine"],
               hypotension=True, oxygen_device="nasal_cannula", oxygen_flow_l_min=Decimal("2"), hypoxia=True)
    assert count() == before


def test_pages_of_subjects_give_the_same_bytes(course):
    user = course.users["data_manager"]
    view = Disclosure(identifiers=False, free_text=True, shift_dates=False)
    for domain in DOMAINS:
        one = b"".join(sdtm_csv(domain, user=user, trial=course.trial, disclosure=view, chunk=1).chunks)
        many = b"".join(sdtm_csv(domain, user=user, trial=course.trial, disclosure=view).chunks)
        assert one == many


def test_the_openapi_document_describes_the_sdtm_endpoints(db, tmp_path):
    from django.core.management import call_command

    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(path))
    schema = path.read_text()
    assert "/api/v1/sdtm/{domain}.csv:" in schema and "/api/v1/sdtm/define.json:" in schema
    assert "DefineDataset:" in schema
