"""CDISC SDTM-style datasets DM, EX, AE, FA, CM, PR and their metadata (reports.md, Exports). Pure Python.

The functions here take one subject's records as plain dataclasses and yield SDTM records as
dicts keyed by variable name; :data:`VARIABLES` is the metadata of every dataset (name, label,
type, codelist, origin) that both the CSV header and ``define.json`` are built from, so the two
cannot drift apart. ``reporting.sdtm_data`` loads the records; nothing here imports Django.

Conventions (SDTMIG 3.4 wherever our data allow; "SDTM-style" because this is an operational
export, not a submission package: no SUPP-- datasets, no Define-XML, no MedDRA coding beyond the
CTCAE term and its SOC):

* USUBJID = "<protocol_code>-<subject_id>"; records ordered by USUBJID, then --SEQ.
* RFSTDTC is the reference date: the site-local calendar date of the index CAR-T infusion
  (day 0 of the CRF). --DY has no day 0 (SDTMIG 4.4.4): date - RFSTDTC + 1 on or after it,
  date - RFSTDTC before it (``trials.study_day.sdtm_study_day``).
* Dates ``YYYY-MM-DD``; date-times ``YYYY-MM-DDTHH:MM`` in the site's local clock time without
  a UTC offset, as SDTM --DTC are collected (the API elsewhere gives UTC with offset).
* With a per-subject date shift every --DTC of the subject moves by the same number of days and
  every --DY is computed from the unshifted dates, so it is the same in both views.
* AETOXGR is the grade number only; its scale is AETOXSCL (non-standard: SUPPAE in a submission)
  and is named in ``define.json``.
"""
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from trials.study_day import sdtm_study_day

CHAR, NUM = "Char", "Num"
ONGOING = "ONGOING"
DATA_CUT = "DATA CUT"  # --ENTPT of an event still ongoing when the data were extracted


# ============================================================================================
# Metadata
# ============================================================================================


@dataclass(frozen=True)
class Variable:
    name: str
    label: str  # SDTM labels are at most 40 characters
    type: str = CHAR
    role: str = "Record Qualifier"
    codelist: str | None = None
    origin: str = "CRF"  # CRF, Derived, Assigned or Protocol (Define-XML origin types)
    standard: bool = True  # False: not an SDTMIG variable (it would go to SUPP-- in a submission)
    comment: str = ""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    label: str
    observation_class: str
    structure: str
    keys: tuple[str, ...]


def _ident(domain: str) -> tuple[Variable, ...]:
    return (
        Variable("STUDYID", "Study Identifier", role="Identifier", origin="Protocol",
                 comment="The trial's protocol code."),
        Variable("DOMAIN", "Domain Abbreviation", role="Identifier", origin="Assigned", comment=domain),
        Variable("USUBJID", "Unique Subject Identifier", role="Identifier", origin="Derived",
                 comment="STUDYID, a hyphen and SUBJID."),
    )


def _seq(prefix: str) -> Variable:
    return Variable(f"{prefix}SEQ", "Sequence Number", NUM, role="Identifier", origin="Derived",
                    comment="1, 2, ... per subject in the dataset's record order.")


def _timing(prefix: str, what: str, formats: str) -> tuple[Variable, ...]:
    """--STDTC, --ENDTC, --STDY, --ENDY."""
    return (
        Variable(f"{prefix}STDTC", f"Start Date/Time of {what}", role="Timing", comment=formats),
        Variable(f"{prefix}ENDTC", f"End Date/Time of {what}", role="Timing", comment=formats),
        Variable(f"{prefix}STDY", f"Study Day of Start of {what}", NUM, role="Timing", origin="Derived",
                 comment=STUDY_DAY_RULE),
        Variable(f"{prefix}ENDY", f"Study Day of End of {what}", NUM, role="Timing", origin="Derived",
                 comment=STUDY_DAY_RULE),
    )


LOCAL_DATETIME = "YYYY-MM-DDTHH:MM, site-local clock time"
STUDY_DAY_RULE = "No day 0: date - RFSTDTC + 1 on or after RFSTDTC, date - RFSTDTC before it."
ONGOING_RULE = 'ONGOING when the event had not ended at the data extraction (with --ENTPT "DATA CUT").'

DATASETS: dict[str, DatasetInfo] = {
    "DM": DatasetInfo("DM", "Demographics", "Special-Purpose", "One record per subject", ("STUDYID", "USUBJID")),
    "EX": DatasetInfo("EX", "Exposure", "Interventions", "One record per CAR-T infusion",
                      ("STUDYID", "USUBJID", "EXTRT", "EXSTDTC")),
    "AE": DatasetInfo("AE", "Adverse Events", "Events",
                      "One record per CRS or ICANS episode and per other adverse event",
                      ("STUDYID", "USUBJID", "AEDECOD", "AESTDTC")),
    "FA": DatasetInfo("FA", "Findings About Events or Interventions", "Findings About",
                      "One record per test per assessment day inside a CRS or ICANS episode",
                      ("STUDYID", "USUBJID", "FALNKID", "FATESTCD", "FADTC")),
    "CM": DatasetInfo("CM", "Concomitant/Concurrent Medications", "Interventions",
                      "One record per dose of rescue medication; one per run of consecutive days per vasopressor",
                      ("STUDYID", "USUBJID", "CMTRT", "CMSTDTC")),
    "PR": DatasetInfo("PR", "Procedures", "Interventions",
                      "One record per plasma exchange or hemofiltration session; one per run of consecutive "
                      "days of one oxygen support device or of mechanical ventilation",
                      ("STUDYID", "USUBJID", "PRTRT", "PRSTDTC")),
}

VARIABLES: dict[str, tuple[Variable, ...]] = {
    "DM": (
        *_ident("DM"),
        Variable("SUBJID", "Subject Identifier for the Study", role="Topic"),
        Variable("RFSTDTC", "Subject Reference Start Date/Time", role="Record Qualifier", origin="Derived",
                 comment="Site-local date of the index CAR-T infusion (CRF day 0); the reference of every --DY."),
        Variable("RFXSTDTC", "Date/Time of First Study Treatment", origin="Derived",
                 comment="Index infusion, YYYY-MM-DDTHH:MM site-local time."),
        Variable("RFXENDTC", "Date/Time of Last Study Treatment", origin="Derived",
                 comment="Last infusion, YYYY-MM-DDTHH:MM site-local time."),
        Variable("DTHDTC", "Date/Time of Death"),
        Variable("DTHFL", "Subject Death Flag", codelist="NY", origin="Derived", comment="Y or empty."),
        Variable("SITEID", "Study Site Identifier", role="Record Qualifier", comment="The site number."),
        Variable("AGE", "Age", NUM, origin="Derived",
                 comment="Completed years at the index infusion (at enrolment until infused); "
                         "the birth date is never exported."),
        Variable("AGEU", "Age Units", codelist="AGEU", origin="Assigned"),
        Variable("SEX", "Sex", codelist="SEX",
                 comment="CRF female/male/unknown/other -> F/M/U/UNDIFFERENTIATED."),
        Variable("ARMCD", "Planned Arm Code", codelist="ARMCD", origin="Derived", comment="The cohort name."),
        Variable("ARM", "Description of Planned Arm", origin="Derived",
                 comment='"Dose level <cohort> <dose> cells/kg".'),
        Variable("ACTARMCD", "Actual Arm Code", codelist="ARMCD", origin="Derived",
                 comment="The cohort, once infused; empty before (see ARMNRS)."),
        Variable("ACTARM", "Description of Actual Arm", origin="Derived"),
        Variable("ARMNRS", "Reason Arm and/or Actual Arm is Null", codelist="ARMNRS", origin="Derived"),
        Variable("COUNTRY", "Country", codelist="COUNTRY", origin="Derived",
                 comment="ISO 3166-1 alpha-3 of the site's country."),
    ),
    "EX": (
        *_ident("EX"),
        _seq("EX"),
        Variable("EXSPID", "Sponsor-Defined Identifier", role="Identifier", comment="The infusion number."),
        Variable("EXTRT", "Name of Treatment", role="Topic", codelist="EXTRT", comment="CAR-T product, upper case."),
        Variable("EXDOSE", "Dose", NUM, comment="CAR-T cells per kg body weight."),
        Variable("EXDOSU", "Dose Units", codelist="UNIT", origin="Assigned"),
        Variable("EXDOSFRM", "Dose Form", codelist="FRM", origin="Assigned"),
        Variable("EXROUTE", "Route of Administration", codelist="ROUTE", origin="Assigned"),
        Variable("EXLOT", "Lot Number"),
        *_timing("EX", "Treatment", LOCAL_DATETIME),
    ),
    "AE": (
        *_ident("AE"),
        _seq("AE"),
        Variable("AESPID", "Sponsor-Defined Identifier", role="Identifier", origin="Derived",
                 comment='"CRS-<n>" / "ICANS-<n>" for the n-th derived episode; "AE-<id>" for a typed-in event.'),
        Variable("AELNKID", "Link ID", role="Identifier", origin="Derived",
                 comment="Derived episodes: the FALNKID of their daily findings in FA."),
        Variable("AETERM", "Reported Term for the Adverse Event", role="Topic"),
        Variable("AEDECOD", "Dictionary-Derived Term", role="Synonym Qualifier", origin="Derived",
                 comment="The CTCAE term (a MedDRA term)."),
        Variable("AECAT", "Category for Adverse Event", role="Grouping Qualifier", codelist="AECAT",
                 origin="Assigned"),
        Variable("AEBODSYS", "Body System or Organ Class", origin="Derived",
                 comment="MedDRA primary SOC of the CTCAE term."),
        Variable("AESER", "Serious Event", codelist="NY",
                 comment="Y when any seriousness criterion holds (ICH E2A; not severity). Derived episodes: the "
                         "criteria the data prove and those the investigator recorded on the episode review "
                         "(reports.md)."),
        Variable("AEREL", "Causality", codelist="AEREL",
                 comment="Derived CRS/ICANS episodes: the investigator's review; CAR-T toxicities by definition "
                         "(RELATED) until reviewed."),
        Variable("AEOUT", "Outcome of Adverse Event", codelist="OUT"),
        Variable("AESCONG", "Congenital Anomaly or Birth Defect", codelist="NY",
                 comment="Derived episodes: recorded on the episode review."),
        Variable("AESDISAB", "Persist or Signif Disability/Incapacity", codelist="NY",
                 comment="Derived episodes: recorded on the episode review."),
        Variable("AESDTH", "Results in Death", codelist="NY",
                 comment="Derived episodes: death during the episode with this toxicity as primary cause."),
        Variable("AESHOSP", "Requires or Prolongs Hospitalization", codelist="NY",
                 comment="Derived episodes: an ICU stay for this toxicity during the episode, or the review."),
        Variable("AESLIFE", "Is Life Threatening", codelist="NY",
                 comment="Derived episodes: max grade 4 (CTCAE's life-threatening), or the review."),
        Variable("AESMIE", "Other Medically Important Serious Event", codelist="NY",
                 comment="Derived episodes: recorded on the episode review."),
        Variable("AETOXGR", "Standard Toxicity Grade", codelist="TOXGR",
                 comment="The grade number only (1-5); the scale is in AETOXSCL. Derived episodes: the max grade."),
        Variable("AETOXSCL", "Toxicity Grading Scale", codelist="TOXSCL", origin="Derived", standard=False,
                 comment="Non-standard variable (SUPPAE in a submission): the scale AETOXGR is on."),
        *_timing("AE", "Adverse Event", "YYYY-MM-DD"),
        Variable("AEENRTPT", "End Relative to Reference Time Point", role="Timing", codelist="ENRTPT",
                 origin="Derived", comment=ONGOING_RULE),
        Variable("AEENTPT", "End Reference Time Point", role="Timing", origin="Assigned"),
    ),
    "FA": (
        *_ident("FA"),
        _seq("FA"),
        Variable("FALNKID", "Link ID", role="Identifier", origin="Derived", comment="AELNKID of the episode."),
        Variable("FATESTCD", "Findings About Test Short Name", role="Topic", codelist="FATESTCD"),
        Variable("FATEST", "Findings About Test Name", role="Synonym Qualifier", codelist="FATEST"),
        Variable("FAOBJ", "Object of the Observation", role="Synonym Qualifier", origin="Derived",
                 comment="The AE term of the episode."),
        Variable("FACAT", "Category for Findings About", role="Grouping Qualifier", codelist="FACAT",
                 origin="Assigned"),
        Variable("FAORRES", "Result or Finding in Original Units", role="Result Qualifier",
                 comment='Grades 0-5 or "NE" (not evaluable); see value_level.'),
        Variable("FAORRESU", "Original Units", role="Variable Qualifier", codelist="UNIT"),
        Variable("FASTRESC", "Character Result/Finding in Std Format", role="Result Qualifier", origin="Derived"),
        Variable("FASTRESN", "Numeric Result/Finding in Standard Units", NUM, role="Result Qualifier",
                 origin="Derived"),
        Variable("FASTRESU", "Standard Units", role="Variable Qualifier", codelist="UNIT", origin="Derived"),
        Variable("FASTAT", "Completion Status", role="Record Qualifier", codelist="ND", origin="Derived"),
        Variable("FAREASND", "Reason Not Done", role="Record Qualifier", comment="Coded CRF reason, upper case."),
        Variable("FADTC", "Date/Time of Collection", role="Timing", comment="Assessment date, YYYY-MM-DD."),
        Variable("FADY", "Study Day of Collection", NUM, role="Timing", origin="Derived", comment=STUDY_DAY_RULE),
    ),
    "CM": (
        *_ident("CM"),
        _seq("CM"),
        Variable("CMTRT", "Reported Name of Drug, Med, or Therapy", role="Topic"),
        Variable("CMDECOD", "Standardized Medication Name", role="Synonym Qualifier", origin="Derived"),
        Variable("CMCAT", "Category for Medication", role="Grouping Qualifier", codelist="CMCAT", origin="Assigned"),
        Variable("CMSCAT", "Subcategory for Medication", role="Grouping Qualifier", codelist="CMSCAT",
                 origin="Assigned"),
        Variable("CMINDC", "Indication", codelist="INDC"),
        Variable("CMDOSE", "Dose per Administration", NUM),
        Variable("CMDOSU", "Dose Units", codelist="UNIT", origin="Assigned"),
        Variable("CMROUTE", "Route of Administration", codelist="ROUTE",
                 comment="Tocilizumab for CRS is intravenous only (US label section 2): assigned."),
        *_timing("CM", "Medication", f"{LOCAL_DATETIME} for a dose; YYYY-MM-DD for a run of vasopressor days"),
    ),
    "PR": (
        *_ident("PR"),
        _seq("PR"),
        Variable("PRTRT", "Reported Name of Procedure", role="Topic", codelist="PRTRT"),
        Variable("PRCAT", "Category", role="Grouping Qualifier", codelist="PRCAT", origin="Assigned"),
        Variable("PRINDC", "Indication", codelist="INDC",
                 comment="Mechanical ventilation: the intubation reason."),
        Variable("PRDOSE", "Dose", NUM,
                 comment="Plasma exchange: plasma volume exchanged (mL); hemofiltration: effluent rate (mL/h)."),
        Variable("PRDOSU", "Dose Units", codelist="UNIT", origin="Assigned"),
        *_timing("PR", "Procedure", f"{LOCAL_DATETIME} for a session; YYYY-MM-DD for a run of support days"),
        Variable("PRENRTPT", "End Relative to Reference Time Point", role="Timing", codelist="ENRTPT",
                 origin="Derived", comment=ONGOING_RULE),
        Variable("PRENTPT", "End Reference Time Point", role="Timing", origin="Assigned"),
    ),
}

DOMAIN_CODES = tuple(VARIABLES)  # DM, EX, AE, FA, CM, PR


def header(domain: str) -> list[str]:
    return [v.name for v in VARIABLES[domain.upper()]]


# --- controlled terminology ------------------------------------------------------------------

SEX = {"female": "F", "male": "M", "unknown": "U", "other": "UNDIFFERENTIATED"}  # CDISC CT C66731
NY = {True: "Y", False: "N"}
OUTCOME = {  # CDISC CT C66768 (OUT)
    "recovered": "RECOVERED/RESOLVED",
    "recovering": "RECOVERING/RESOLVING",
    "not_recovered": "NOT RECOVERED/NOT RESOLVED",
    "recovered_with_sequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
    "fatal": "FATAL",
    "unknown": "UNKNOWN",
}
RELATEDNESS = {  # sponsor-defined (AEREL has no CDISC codelist)
    "not_related": "NOT RELATED",
    "unlikely": "UNLIKELY RELATED",
    "possible": "POSSIBLY RELATED",
    "probable": "PROBABLY RELATED",
    "definite": "RELATED",
}
ROUTE = {"iv": "INTRAVENOUS", "oral": "ORAL", "intrathecal": "INTRATHECAL"}  # CDISC CT C66729; "other": empty
SERIOUSNESS_FLAGS = (  # ICH E2A criterion code -> AE flag
    ("congenital_anomaly", "AESCONG"),
    ("disability", "AESDISAB"),
    ("death", "AESDTH"),
    ("hospitalization", "AESHOSP"),
    ("life_threatening", "AESLIFE"),
    ("important_medical_event", "AESMIE"),
)
SCALES = {
    "astct_2019": "ASTCT 2019 consensus grading (Lee DW et al., Biol Blood Marrow Transplant 2019;25:625-638)",
    "ctcae_v5": "NCI CTCAE v5.0",
    "ctcae_v6": "NCI CTCAE v6.0",
}
CTCAE_SCALE = {"v5.0": "ctcae_v5", "v6.0": "ctcae_v6"}  # typed-in AE version -> AETOXSCL code
EPISODE_TERMS = {"crs": "Cytokine release syndrome", "icans": "Immune effector cell-associated neurotoxicity syndrome"}
EPISODE_SOC = {"crs": "Immune system disorders", "icans": "Nervous system disorders"}  # CTCAE v5.0 / v6.0
EPISODE_CATEGORY, OTHER_AE_CATEGORY = "CAR-T TOXICITY", "CTCAE"
INDICATION = {
    "crs": "CYTOKINE RELEASE SYNDROME",
    "icans": "IMMUNE EFFECTOR CELL-ASSOCIATED NEUROTOXICITY SYNDROME",
    "prophylaxis": "PROPHYLAXIS",
    "other": "OTHER",
}
INTUBATION_REASON = {"hypoxia": "HYPOXIA", "airway_protection": "AIRWAY PROTECTION", "procedure": "PROCEDURE",
                     "other": "OTHER"}
MEDICATION_CATEGORY = "TOXICITY MANAGEMENT"
ANTICYTOKINE = {  # drug -> (CMTRT/CMDECOD, CMSCAT)
    "anakinra": ("ANAKINRA", "IL-1 RECEPTOR ANTAGONIST"),
    "siltuximab": ("SILTUXIMAB", "ANTI-IL-6 ANTIBODY"),
    "other": ("ANTI-CYTOKINE THERAPY, OTHER", "ANTI-CYTOKINE"),
}
VASOPRESSOR = {
    "norepinephrine": "NOREPINEPHRINE", "epinephrine": "EPINEPHRINE", "phenylephrine": "PHENYLEPHRINE",
    "dopamine": "DOPAMINE", "vasopressin": "VASOPRESSIN", "angiotensin_ii": "ANGIOTENSIN II",
    "other": "VASOPRESSOR, OTHER",
}
HEMOFILTRATION = {
    "cvvh": "CONTINUOUS VENOVENOUS HEMOFILTRATION",
    "cvvhd": "CONTINUOUS VENOVENOUS HEMODIALYSIS",
    "cvvhdf": "CONTINUOUS VENOVENOUS HEMODIAFILTRATION",
    "scuf": "SLOW CONTINUOUS ULTRAFILTRATION",
    "ihd": "INTERMITTENT HEMODIALYSIS",
    "hemoadsorption": "HEMOADSORPTION",
    "other": "EXTRACORPOREAL BLOOD PURIFICATION, OTHER",
}
OXYGEN_DEVICE = {
    "nasal_cannula": "NASAL CANNULA OXYGEN",
    "blow_by": "BLOW-BY OXYGEN",
    "high_flow_nasal_cannula": "HIGH-FLOW NASAL CANNULA OXYGEN",
    "facemask": "FACEMASK OXYGEN",
    "non_rebreather": "NON-REBREATHER MASK OXYGEN",
    "venturi_mask": "VENTURI MASK OXYGEN",
    "cpap": "CONTINUOUS POSITIVE AIRWAY PRESSURE",
    "bipap": "BILEVEL POSITIVE AIRWAY PRESSURE",
}
MECHANICAL_VENTILATION = "mechanical_ventilation"
PLASMA_EXCHANGE = "PLASMA EXCHANGE"
EXTRACORPOREAL, RESPIRATORY = "EXTRACORPOREAL THERAPY", "RESPIRATORY SUPPORT"


def code_text(code: str | None) -> str | None:
    """A lower-case CRF code as an SDTM result: ``awakens_to_voice`` -> ``AWAKENS TO VOICE``."""
    return code.replace("_", " ").upper() if code else None


# ============================================================================================
# Input records: one subject's data as plain values
# ============================================================================================


@dataclass(frozen=True)
class Study:
    protocol_code: str
    crs_scale: str = "astct_2019"
    icans_scale: str = "astct_2019"
    title: str = ""
    cohorts: tuple[tuple[str, float], ...] = ()  # (name, dose level cells/kg), for the ARMCD codelist


@dataclass(frozen=True)
class Infusion:
    number: int
    product: str
    lot_number: str
    at: datetime  # site-local clock time (naive)
    dose_cells_per_kg: float


@dataclass(frozen=True)
class Assessment:
    day: date
    crs_grade: int | None = None  # None = NE
    icans_grade: int | None = None
    temperature_max_c: Decimal | None = None
    hypotension: bool = False
    vasopressors: tuple[str, ...] = ()
    vasopressin_other_indication: bool = False
    hypoxia: bool = False
    oxygen_device: str = "none"
    oxygen_flow_l_min: Decimal | None = None
    fio2_percent: int | None = None
    intubation_reason: str = ""
    ice_score: int | None = None
    ice_not_assessable: str = ""
    capd_score: int | None = None
    capd_unable: bool = False
    consciousness: str = ""
    seizure: str = "none"
    motor_weakness: str = "none"
    cerebral_edema: str = "none"


@dataclass(frozen=True)
class Episode:
    kind: str  # crs, icans
    number: int
    term: str
    scale: str
    onset_date: date
    max_grade: int
    resolution_date: date | None
    serious: bool
    outcome: str  # recovered, not_recovered, fatal
    seriousness: tuple[str, ...] = ()  # ICH E2A criteria: derived and from the investigator's review
    relatedness: str = ""  # the investigator's review ("" before it)


@dataclass(frozen=True)
class AdverseEvent:
    key: int
    term: str
    soc: str | None
    ctcae_version: str
    grade: int
    onset_date: date
    resolution_date: date | None
    serious: bool
    seriousness: tuple[str, ...]
    relatedness: str
    outcome: str


@dataclass(frozen=True)
class Dose:
    kind: str  # tocilizumab, corticosteroid, anticytokine
    drug: str
    at: datetime  # site-local clock time (naive)
    dose_mg: Decimal
    route: str  # iv, oral, other; "" when the log has no route (tocilizumab)
    indication: str


@dataclass(frozen=True)
class PlasmaExchange:
    started_at: datetime
    ended_at: datetime
    volume_ml: int


@dataclass(frozen=True)
class Hemofiltration:
    modality: str
    started_at: datetime
    ended_at: datetime | None  # None while running
    effluent_rate_ml_h: int


@dataclass(frozen=True)
class Subject:
    subject_id: str
    site_number: str = ""
    country: str = ""
    sex: str = "unknown"
    age_years: int | None = None
    reference_date: date | None = None  # day 0: site-local date of the index infusion
    cohort_name: str = ""
    cohort_dose_cells_per_kg: float | None = None
    death_date: date | None = None
    shift_days: int = 0  # per-subject date shift of the de-identified view
    infusions: tuple[Infusion, ...] = ()
    assessments: tuple[Assessment, ...] = ()
    episodes: tuple[Episode, ...] = ()
    adverse_events: tuple[AdverseEvent, ...] = ()
    doses: tuple[Dose, ...] = ()
    plasma_exchanges: tuple[PlasmaExchange, ...] = ()
    hemofiltrations: tuple[Hemofiltration, ...] = ()


# ============================================================================================
# Values
# ============================================================================================


def study_day(on: date | datetime | None, reference: date | None) -> int | None:
    """--DY of a date or a site-local date-time; None without a date or a reference date."""
    if on is None or reference is None:
        return None
    return sdtm_study_day(on.date() if isinstance(on, datetime) else on, reference)


def dtc(value: date | datetime | None, shift_days: int = 0) -> str | None:
    """ISO 8601 --DTC: ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM`` (local clock time), moved by ``shift_days``."""
    if value is None:
        return None
    value = value + timedelta(days=shift_days)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M")
    return value.isoformat()


def num_text(value) -> str:
    """A Num value as CSV text: no exponent, no trailing zeros (1e6 -> 1000000, 38.60 -> 38.6)."""
    if value is None:
        return ""
    if type(value) is int:
        return str(value)
    if isinstance(value, float):
        value = Decimal("%.15g" % value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    raise TypeError(f"not a number: {value!r}")  # booleans are Y/N in SDTM, never Num


def usubjid(study: Study, subject: Subject) -> str:
    return f"{study.protocol_code}-{subject.subject_id}"


class _Subject:
    """Per-subject helpers: the common identifiers, shifted --DTC and unshifted --DY."""

    def __init__(self, study: Study, subject: Subject, domain: str):
        self.s = subject
        self.domain = domain
        self.ids = {"STUDYID": study.protocol_code, "DOMAIN": domain, "USUBJID": usubjid(study, subject)}

    def dtc(self, value) -> str | None:
        return dtc(value, self.s.shift_days)

    def dy(self, value) -> int | None:
        return study_day(value, self.s.reference_date)

    def timing(self, start, end) -> dict:
        d = self.domain
        return {f"{d}STDTC": self.dtc(start), f"{d}ENDTC": self.dtc(end),
                f"{d}STDY": self.dy(start), f"{d}ENDY": self.dy(end)}

    def numbered(self, records: Iterable[dict]) -> Iterator[dict]:
        for seq, record in enumerate(records, start=1):
            yield {**self.ids, f"{self.domain}SEQ": seq, **record}


def _sort_moment(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value, time.min)


def _runs(days: Iterable[tuple[date, object]]) -> list[tuple[object, date, date]]:
    """(key, first day, last day) of every run of consecutive calendar days with the same key."""
    by_key: dict[object, list[date]] = {}
    for day, key in days:
        by_key.setdefault(key, []).append(day)
    runs = []
    for key, dates in by_key.items():
        dates = sorted(set(dates))
        start = prev = dates[0]
        for day in dates[1:]:
            if day - prev > timedelta(days=1):
                runs.append((key, start, prev))
                start = day
            prev = day
        runs.append((key, start, prev))
    return runs


# ============================================================================================
# Domains
# ============================================================================================


def arm(cohort_name: str, dose: float | None) -> str:
    return f"Dose level {cohort_name} {num_text(dose)} cells/kg" if dose is not None else f"Dose level {cohort_name}"


def dm_records(study: Study, subject: Subject) -> Iterator[dict]:
    h = _Subject(study, subject, "DM")
    infusions = sorted(subject.infusions, key=lambda i: (i.at, i.number))
    index = next((i for i in infusions if i.number == 1), infusions[0] if infusions else None)
    treated = index is not None
    armcd = subject.cohort_name.upper()[:20] or None
    yield {
        **h.ids,
        "SUBJID": subject.subject_id,
        "RFSTDTC": h.dtc(subject.reference_date),
        "RFXSTDTC": h.dtc(index.at) if treated else None,
        "RFXENDTC": h.dtc(infusions[-1].at) if treated else None,
        "DTHDTC": h.dtc(subject.death_date),
        "DTHFL": "Y" if subject.death_date else None,
        "SITEID": subject.site_number,
        "AGE": subject.age_years,
        "AGEU": "YEARS" if subject.age_years is not None else None,
        "SEX": SEX.get(subject.sex, "U"),
        "ARMCD": armcd,
        "ARM": arm(subject.cohort_name, subject.cohort_dose_cells_per_kg) if armcd else None,
        "ACTARMCD": armcd if treated else None,
        "ACTARM": arm(subject.cohort_name, subject.cohort_dose_cells_per_kg) if treated and armcd else None,
        "ARMNRS": None if treated else "ASSIGNED, NOT TREATED",
        "COUNTRY": country_alpha3(subject.country),
    }


def ex_records(study: Study, subject: Subject) -> Iterator[dict]:
    h = _Subject(study, subject, "EX")
    yield from h.numbered(
        {
            "EXSPID": str(i.number),
            "EXTRT": i.product.upper(),
            "EXDOSE": i.dose_cells_per_kg,
            "EXDOSU": "cells/kg",
            "EXDOSFRM": "SUSPENSION",
            "EXROUTE": "INTRAVENOUS",
            "EXLOT": i.lot_number or None,
            **h.timing(i.at, i.at),  # a single infusion: start and end on the same record
        }
        for i in sorted(subject.infusions, key=lambda i: (i.at, i.number))
    )


def episode_key(episode: Episode) -> str:
    """AESPID / AELNKID / FALNKID of a derived episode: "CRS-1", "ICANS-2"."""
    return f"{episode.kind.upper()}-{episode.number}"


def ordered_episodes(subject: Subject) -> list[Episode]:
    return sorted(subject.episodes, key=lambda e: (e.onset_date, e.kind != "crs", e.number))


def _ended(h: _Subject, resolution: date | None, outcome: str) -> dict:
    """End date, and ONGOING when the event had not ended; a fatal event ends with the death."""
    end = resolution if resolution is not None else (h.s.death_date if outcome == "fatal" else None)
    ongoing = end is None and outcome != "fatal"
    return {"end": end, "AEENRTPT": ONGOING if ongoing else None, "AEENTPT": DATA_CUT if ongoing else None}


def ae_records(study: Study, subject: Subject) -> Iterator[dict]:
    h = _Subject(study, subject, "AE")

    def episodes():
        for e in ordered_episodes(subject):
            ended = _ended(h, e.resolution_date, e.outcome)
            criteria = set(e.seriousness) | ({"death"} if e.outcome == "fatal" else set())
            flags = {flag: NY[code in criteria] for code, flag in SERIOUSNESS_FLAGS}
            yield {
                "AESPID": episode_key(e), "AELNKID": episode_key(e),
                "AETERM": e.term, "AEDECOD": EPISODE_TERMS.get(e.kind, e.term), "AECAT": EPISODE_CATEGORY,
                "AEBODSYS": EPISODE_SOC.get(e.kind), "AESER": NY[e.serious or bool(criteria)],
                "AEREL": RELATEDNESS.get(e.relatedness, "RELATED"),
                "AEOUT": OUTCOME.get(e.outcome), **flags,
                "AETOXGR": str(e.max_grade), "AETOXSCL": e.scale,
                **h.timing(e.onset_date, ended["end"]),
                "AEENRTPT": ended["AEENRTPT"], "AEENTPT": ended["AEENTPT"],
            }

    def typed_in():
        for ae in sorted(subject.adverse_events, key=lambda a: (a.onset_date, a.key)):
            ended = _ended(h, ae.resolution_date, ae.outcome)
            flags = {flag: NY[code in ae.seriousness] for code, flag in SERIOUSNESS_FLAGS}
            yield {
                "AESPID": f"AE-{ae.key}", "AELNKID": None,
                "AETERM": ae.term, "AEDECOD": ae.term, "AECAT": OTHER_AE_CATEGORY, "AEBODSYS": ae.soc,
                "AESER": NY[ae.serious], "AEREL": RELATEDNESS.get(ae.relatedness),
                "AEOUT": OUTCOME.get(ae.outcome), **flags,
                "AETOXGR": str(ae.grade), "AETOXSCL": CTCAE_SCALE.get(ae.ctcae_version, ae.ctcae_version),
                **h.timing(ae.onset_date, ended["end"]),
                "AEENRTPT": ended["AEENRTPT"], "AEENTPT": ended["AEENTPT"],
            }

    yield from h.numbered([*episodes(), *typed_in()])


# --- FA: the daily findings of each episode ---------------------------------------------------


@dataclass(frozen=True)
class FaTest:
    code: str
    name: str
    kinds: tuple[str, ...]  # crs, icans
    type: str  # Char or Num result
    unit: str | None
    result: Callable[[Assessment], dict | None]  # FAORRES etc., or None: no record that day
    values: tuple[str, ...] = ()  # the Char results it can take (value-level codelist)
    comment: str = ""


def _char(value: str | None) -> dict | None:
    return None if value is None else {"FAORRES": value, "FASTRESC": value}


def _yn(flag: bool) -> dict:
    return _char(NY[bool(flag)])


def _number(value, unit: str, *, not_done: str | None = None, missing_means_not_done: bool = False) -> dict | None:
    if value is None:
        if not (missing_means_not_done or not_done):
            return None
        return {"FASTAT": "NOT DONE", "FAREASND": code_text(not_done) if not_done else None}
    text = num_text(value)
    return {"FAORRES": text, "FAORRESU": unit, "FASTRESC": text, "FASTRESN": value, "FASTRESU": unit}


def _grade(value: int | None) -> dict:
    if value is None:
        return {"FAORRES": "NE", "FASTRESC": "NE"}
    return {"FAORRES": str(value), "FASTRESC": str(value), "FASTRESN": value}


def _ice(a: Assessment) -> dict | None:
    if a.ice_score is None and not a.ice_not_assessable:
        return None
    return _number(a.ice_score, None, not_done=a.ice_not_assessable or None)


def _capd(a: Assessment) -> dict | None:
    if a.capd_score is None and not a.capd_unable:
        return None
    return _number(a.capd_score, None, not_done="unable_to_perform" if a.capd_unable else None)


NO_RESULT = dict.fromkeys(("FAORRES", "FAORRESU", "FASTRESC", "FASTRESN", "FASTRESU", "FASTAT", "FAREASND"))
CRS, ICANS = ("crs",), ("icans",)
GRADES = tuple(str(g) for g in range(6)) + ("NE",)
TESTS: tuple[FaTest, ...] = (
    FaTest("CRSGR", "CRS Grade", CRS, CHAR, None, lambda a: _grade(a.crs_grade), GRADES,
         "Derived daily grade on the trial's CRS scale (define.json: toxicity_scales)."),
    FaTest("TEMP", "Maximum Temperature", CRS, NUM, "C",
         lambda a: _number(a.temperature_max_c, "C", missing_means_not_done=True),
         comment="Highest temperature of the day; NOT DONE when not measured (R-CRS-15)."),
    FaTest("HYPOTN", "Hypotension", CRS, CHAR, None, lambda a: _yn(a.hypotension), ("Y", "N")),
    FaTest("VASOPR", "Vasopressors", CRS, CHAR, None,
         lambda a: _char(";".join(VASOPRESSOR.get(v, code_text(v)) for v in a.vasopressors) or "NONE"),
         comment="Agents running at the same time at the worst moment of the day, ';'-separated, or NONE."),
    FaTest("HYPOX", "Hypoxia", CRS, CHAR, None, lambda a: _yn(a.hypoxia), ("Y", "N"),
         "Supplemental oxygen needed for an oxygenation deficit (R-CRS-6)."),
    FaTest("O2DEV", "Oxygen Delivery Device", CRS, CHAR, None, lambda a: _char(code_text(a.oxygen_device or "none")),
         tuple(code_text(c) for c in ("none", *OXYGEN_DEVICE, MECHANICAL_VENTILATION)),
         "The highest support of the day."),
    FaTest("O2FLOW", "Oxygen Flow Rate", CRS, NUM, "L/min", lambda a: _number(a.oxygen_flow_l_min, "L/min"),
         comment="Only on days with a recorded flow."),
    FaTest("FIO2", "Fraction of Inspired Oxygen", CRS, NUM, "%", lambda a: _number(a.fio2_percent, "%"),
         comment="Only on days with a recorded FiO2."),
    FaTest("ICANSGR", "ICANS Grade", ICANS, CHAR, None, lambda a: _grade(a.icans_grade), GRADES,
         "Derived daily grade on the trial's ICANS scale (define.json: toxicity_scales)."),
    FaTest("ICESCR", "ICE Score", ICANS, NUM, None, _ice,
         comment="0-10; NOT DONE with the reason when not assessable; absent when not recorded (CAPD used)."),
    FaTest("CAPDSCR", "CAPD Score", ICANS, NUM, None, _capd,
         comment="0-32 (children < 12 or developmental delay); NOT DONE when unable to perform."),
    FaTest("LOC", "Level of Consciousness", ICANS, CHAR, None, lambda a: _char(code_text(a.consciousness)),
         ("AWAKENS SPONTANEOUSLY", "AWAKENS TO VOICE", "AWAKENS TO TACTILE", "UNAROUSABLE", "SEDATED")),
    FaTest("SEIZURE", "Seizure", ICANS, CHAR, None, lambda a: _char(code_text(a.seizure or "none")),
         ("NONE", "RAPIDLY RESOLVING", "PROLONGED OR REPETITIVE")),
    FaTest("MOTOR", "Motor Weakness", ICANS, CHAR, None, lambda a: _char(code_text(a.motor_weakness or "none")),
         ("NONE", "DEEP FOCAL")),
    FaTest("CEREDEMA", "Cerebral Edema", ICANS, CHAR, None, lambda a: _char(code_text(a.cerebral_edema or "none")),
         ("NONE", "FOCAL", "DIFFUSE OR SIGNS")),
)


def episode_days(episode: Episode, assessments: Iterable[Assessment]) -> list[Assessment]:
    """Assessment days inside the episode: onset <= day < resolution (ongoing: every later day)."""
    return sorted(
        (a for a in assessments
         if episode.onset_date <= a.day and (episode.resolution_date is None or a.day < episode.resolution_date)),
        key=lambda a: a.day,
    )


def fa_records(study: Study, subject: Subject) -> Iterator[dict]:
    h = _Subject(study, subject, "FA")

    def findings():
        for e in ordered_episodes(subject):
            tests = [t for t in TESTS if e.kind in t.kinds]
            key, category = episode_key(e), e.kind.upper()
            for a in episode_days(e, subject.assessments):
                when = {"FADTC": h.dtc(a.day), "FADY": h.dy(a.day)}
                for t in tests:
                    result = t.result(a)
                    if result is not None:
                        yield {"FALNKID": key, "FATESTCD": t.code, "FATEST": t.name, "FAOBJ": e.term,
                               "FACAT": category, **NO_RESULT, **result, **when}

    yield from h.numbered(findings())


# --- CM: rescue medication and vasopressors ----------------------------------------------------


def _dose_record(d: Dose) -> dict:
    if d.kind == "tocilizumab":
        name, subcategory, route = "TOCILIZUMAB", "ANTI-IL-6 RECEPTOR ANTIBODY", "INTRAVENOUS"
    elif d.kind == "corticosteroid":
        name = "CORTICOSTEROID, OTHER" if d.drug == "other" else d.drug.upper()
        subcategory, route = "CORTICOSTEROID", ROUTE.get(d.route)
    else:
        name, subcategory = ANTICYTOKINE.get(d.drug, (code_text(d.drug), "ANTI-CYTOKINE"))
        route = ROUTE.get(d.route)
    return {
        "CMTRT": name, "CMDECOD": None if d.drug == "other" else name, "CMCAT": MEDICATION_CATEGORY,
        "CMSCAT": subcategory, "CMINDC": INDICATION.get(d.indication, code_text(d.indication)),
        "CMDOSE": d.dose_mg, "CMDOSU": "mg", "CMROUTE": route,
    }


def vasopressor_runs(assessments: Iterable[Assessment]) -> list[tuple[str, str, date, date]]:
    """(agent, indication, first day, last day) per run of consecutive assessment days with the agent.

    The CRF lists agents given for hypotension; vasopressin flagged as given for another reason
    (R-CRS-7) is a run with indication OTHER.
    """
    days = []
    for a in assessments:
        for agent in a.vasopressors:
            other = agent == "vasopressin" and a.vasopressin_other_indication
            days.append((a.day, (agent, "OTHER" if other else "HYPOTENSION")))
    return [(agent, indication, first, last) for (agent, indication), first, last in _runs(days)]


def cm_records(study: Study, subject: Subject) -> Iterator[dict]:
    h = _Subject(study, subject, "CM")
    rows = []
    for d in subject.doses:
        rows.append((_sort_moment(d.at), {**_dose_record(d), **h.timing(d.at, None)}))
    for agent, indication, first, last in vasopressor_runs(subject.assessments):
        name = VASOPRESSOR.get(agent, code_text(agent))
        rows.append((_sort_moment(first), {
            "CMTRT": name, "CMDECOD": None if agent == "other" else name, "CMCAT": MEDICATION_CATEGORY,
            "CMSCAT": "VASOPRESSOR", "CMINDC": indication, "CMDOSE": None, "CMDOSU": None, "CMROUTE": "INTRAVENOUS",
            **h.timing(first, last),
        }))
    rows.sort(key=lambda r: (r[0], r[1]["CMTRT"]))
    yield from h.numbered(record for _, record in rows)


# --- PR: extracorporeal therapy and respiratory support ---------------------------------------


def support_runs(assessments: Iterable[Assessment]) -> list[tuple[str, str, date, date]]:
    """(device, intubation reason, first day, last day) per run of consecutive days with the same support."""
    days = [
        (a.day, (a.oxygen_device, a.intubation_reason if a.oxygen_device == MECHANICAL_VENTILATION else ""))
        for a in assessments if a.oxygen_device and a.oxygen_device != "none"
    ]
    return [(device, reason, first, last) for (device, reason), first, last in _runs(days)]


def pr_records(study: Study, subject: Subject) -> Iterator[dict]:
    h = _Subject(study, subject, "PR")
    blank = {"PRINDC": None, "PRDOSE": None, "PRDOSU": None, "PRENRTPT": None, "PRENTPT": None}
    rows = []
    for p in subject.plasma_exchanges:
        rows.append((_sort_moment(p.started_at), {
            **blank, "PRTRT": PLASMA_EXCHANGE, "PRCAT": EXTRACORPOREAL, "PRDOSE": p.volume_ml, "PRDOSU": "mL",
            **h.timing(p.started_at, p.ended_at),
        }))
    for s in subject.hemofiltrations:
        running = s.ended_at is None
        rows.append((_sort_moment(s.started_at), {
            **blank, "PRTRT": HEMOFILTRATION.get(s.modality, code_text(s.modality)), "PRCAT": EXTRACORPOREAL,
            "PRDOSE": s.effluent_rate_ml_h, "PRDOSU": "mL/h", **h.timing(s.started_at, s.ended_at),
            "PRENRTPT": ONGOING if running else None, "PRENTPT": DATA_CUT if running else None,
        }))
    for device, reason, first, last in support_runs(subject.assessments):
        ventilation = device == MECHANICAL_VENTILATION
        rows.append((_sort_moment(first), {
            **blank, "PRTRT": "MECHANICAL VENTILATION" if ventilation else OXYGEN_DEVICE.get(device, code_text(device)),
            "PRCAT": RESPIRATORY, "PRINDC": INTUBATION_REASON.get(reason) if ventilation else None,
            **h.timing(first, last),
        }))
    rows.sort(key=lambda r: (r[0], r[1]["PRTRT"]))
    yield from h.numbered(record for _, record in rows)


DOMAIN_RECORDS: dict[str, Callable[[Study, Subject], Iterator[dict]]] = {
    "DM": dm_records, "EX": ex_records, "AE": ae_records, "FA": fa_records, "CM": cm_records, "PR": pr_records,
}


def records(domain: str, study: Study, subjects: Iterable[Subject]) -> Iterator[dict]:
    """Every record of ``domain`` for these subjects (give them in USUBJID order)."""
    build = DOMAIN_RECORDS[domain.upper()]
    for subject in subjects:
        yield from build(study, subject)


_COLUMNS = {code: tuple((v.name, v.type == NUM) for v in variables) for code, variables in VARIABLES.items()}


def row_texts(domain: str, record: dict) -> list[str]:
    """A record of ``domain`` (DM, EX, ...) as text cells in header order (Char as is, Num by :func:`num_text`, None empty)."""
    get = record.get
    return [
        "" if (value := get(name)) is None else num_text(value) if numeric else str(value)
        for name, numeric in _COLUMNS[domain]
    ]


# ============================================================================================
# define.json
# ============================================================================================

CODELISTS: dict[str, dict] = {
    "NY": {"label": "No Yes Response", "source": "CDISC CT C66742",
           "terms": [("Y", "Yes"), ("N", "No")]},
    "SEX": {"label": "Sex", "source": "CDISC CT C66731",
            "terms": [("F", "Female (CRF female)"), ("M", "Male (CRF male)"), ("U", "Unknown (CRF unknown)"),
                      ("UNDIFFERENTIATED", "Undifferentiated (CRF other)")]},
    "AGEU": {"label": "Age Unit", "source": "CDISC CT C66781", "terms": [("YEARS", "Years")]},
    "ARMNRS": {"label": "Arm Null Reason", "source": "CDISC CT C142179",
               "terms": [("ASSIGNED, NOT TREATED", "Enrolled in a cohort, not (yet) infused")]},
    "COUNTRY": {"label": "Country", "source": "ISO 3166-1 alpha-3 (CDISC CT C66786)", "terms": []},
    "OUT": {"label": "Outcome of Event", "source": "CDISC CT C66768",
            "terms": [(v, f"CRF {k}") for k, v in OUTCOME.items()]},
    "AEREL": {"label": "Causality", "source": "Sponsor-defined",
              "terms": [(v, f"CRF {k}") for k, v in RELATEDNESS.items()]},
    "TOXGR": {"label": "Toxicity Grade", "source": "Sponsor-defined (number only)",
              "terms": [(str(g), f"Grade {g}") for g in range(1, 6)]},
    "TOXSCL": {"label": "Toxicity Grading Scale", "source": "Sponsor-defined (the platform's scale codes)",
               "terms": list(SCALES.items())},
    "AECAT": {"label": "Adverse Event Category", "source": "Sponsor-defined",
              "terms": [(EPISODE_CATEGORY, "CRS or ICANS episode derived from the daily assessments"),
                        (OTHER_AE_CATEGORY, "Adverse event typed in with a CTCAE term and grade")]},
    "ENRTPT": {"label": "Relation to Reference Period", "source": "CDISC CT C66728",
               "terms": [(ONGOING, "Not ended at the data extraction")]},
    "ROUTE": {"label": "Route of Administration", "source": "CDISC CT C66729",
              "terms": [("INTRAVENOUS", "Intravenous"), ("ORAL", "Oral")]},
    "FRM": {"label": "Pharmaceutical Dosage Form", "source": "CDISC CT C66726",
            "terms": [("SUSPENSION", "Cell suspension for infusion")]},
    "EXTRT": {"label": "CAR-T Product", "source": "Sponsor-defined (CRF product codes, upper case)",
              "terms": [(p.upper(), p.replace("_", " ").capitalize()) for p in (
                  "tisagenlecleucel", "axicabtagene_ciloleucel", "brexucabtagene_autoleucel",
                  "lisocabtagene_maraleucel", "idecabtagene_vicleucel", "ciltacabtagene_autoleucel",
                  "investigational")]},
    "UNIT": {"label": "Unit", "source": "CDISC CT C71620 (cells/kg sponsor-extended)",
             "terms": [("C", "Degree Celsius"), ("L/min", "Liters per minute"), ("%", "Percent"),
                       ("mg", "Milligram"), ("mL", "Milliliter"), ("mL/h", "Milliliter per hour"),
                       ("cells/kg", "CAR-T cells per kilogram body weight")]},
    "ND": {"label": "Not Done", "source": "CDISC CT C66789", "terms": [("NOT DONE", "Not done")]},
    "FATESTCD": {"label": "Findings About Test Code", "source": "Sponsor-defined",
                 "terms": [(t.code, t.name) for t in TESTS]},
    "FATEST": {"label": "Findings About Test Name", "source": "Sponsor-defined",
               "terms": [(t.name, t.code) for t in TESTS]},
    "FACAT": {"label": "Findings About Category", "source": "Sponsor-defined",
              "terms": [("CRS", EPISODE_TERMS["crs"]), ("ICANS", EPISODE_TERMS["icans"])]},
    "CMCAT": {"label": "Medication Category", "source": "Sponsor-defined",
              "terms": [(MEDICATION_CATEGORY, "Drugs for CRS, ICANS and their prophylaxis, and vasopressors")]},
    "CMSCAT": {"label": "Medication Subcategory", "source": "Sponsor-defined",
               "terms": [(s, s.capitalize()) for s in (
                   "ANTI-IL-6 RECEPTOR ANTIBODY", "ANTI-IL-6 ANTIBODY", "IL-1 RECEPTOR ANTAGONIST", "ANTI-CYTOKINE",
                   "CORTICOSTEROID", "VASOPRESSOR")]},
    "INDC": {"label": "Indication", "source": "Sponsor-defined",
             "terms": [(v, f"CRF {k}") for k, v in INDICATION.items()]
             + [("HYPOTENSION", "Vasopressor given for hypotension")]
             + [(v, f"Intubation for {k.replace('_', ' ')}") for k, v in INTUBATION_REASON.items()
                if v not in INDICATION.values()]},
    "PRTRT": {"label": "Procedure", "source": "Sponsor-defined",
              "terms": [(PLASMA_EXCHANGE, "Therapeutic plasma exchange")]
              + [(v, f"CRF modality {k}") for k, v in HEMOFILTRATION.items()]
              + [(v, f"CRF oxygen device {k}") for k, v in OXYGEN_DEVICE.items()]
              + [("MECHANICAL VENTILATION", "Intubation with mechanical ventilation")]},
    "PRCAT": {"label": "Procedure Category", "source": "Sponsor-defined",
              "terms": [(EXTRACORPOREAL, "Plasma exchange and hemofiltration"),
                        (RESPIRATORY, "Oxygen support and mechanical ventilation")]},
}


def _codelist_document(name: str, spec: dict, study: Study) -> dict:
    terms = spec["terms"]
    if name == "ARMCD":
        terms = [(cohort.upper()[:20], arm(cohort, dose)) for cohort, dose in study.cohorts]
    return {"name": name, "label": spec["label"], "source": spec["source"],
            "terms": [{"code": code, "decode": decode} for code, decode in terms]}


def define_document(study: Study, *, shift_dates: bool) -> dict:
    """The data definition of the six datasets for one trial: datasets, variables, codelists."""
    datasets = []
    for code in DOMAIN_CODES:
        info = DATASETS[code]
        variables = []
        for v in VARIABLES[code]:
            entry = {"name": v.name, "label": v.label, "type": v.type, "role": v.role, "codelist": v.codelist,
                     "origin": v.origin, "standard": v.standard, "comment": v.comment}
            if v.name == "AETOXGR":
                entry["toxicity_scales"] = {
                    EPISODE_CATEGORY: {"CRS": _scale(study.crs_scale), "ICANS": _scale(study.icans_scale)},
                    OTHER_AE_CATEGORY: "CTCAE version of the record (AETOXSCL)",
                }
            variables.append(entry)
        dataset = {
            "name": code, "label": info.label, "class": info.observation_class, "structure": info.structure,
            "keys": list(info.keys), "file": f"{code.lower()}.csv", "variables": variables,
        }
        if code == "FA":
            dataset["value_level"] = [
                {"where": f"FATESTCD = {t.code}", "applies_to": [k.upper() for k in t.kinds], "type": t.type,
                 "unit": t.unit, "values": list(t.values), "comment": t.comment,
                 **({"toxicity_scale": _scale(study.crs_scale if t.code == "CRSGR" else study.icans_scale)}
                    if t.code in ("CRSGR", "ICANSGR") else {})}
                for t in TESTS
            ]
        datasets.append(dataset)
    used = {v.codelist for vs in VARIABLES.values() for v in vs if v.codelist}
    specs = {**CODELISTS, "ARMCD": {"label": "Arm Code", "source": "Trial cohorts", "terms": []}}
    return {
        "study": {"STUDYID": study.protocol_code, "title": study.title},
        "standard": "SDTM-style datasets following SDTMIG 3.4 conventions (not a submission package: "
                    "non-standard variables are inline, there are no SUPP-- datasets)",
        "conventions": {
            "dates": "ISO 8601 YYYY-MM-DD",
            "datetimes": "ISO 8601 YYYY-MM-DDTHH:MM in the site's local clock time, without a UTC offset",
            "reference_date": "RFSTDTC: the site-local date of the index CAR-T infusion (CRF day 0)",
            "study_day": STUDY_DAY_RULE,
            "date_shift": (
                "Every date of a subject is shifted by the same per-subject number of days; "
                "study days are unchanged" if shift_dates else "none: dates are as collected"),
            "missing": "an empty cell",
            "order": "USUBJID, then --SEQ",
            "csv": "UTF-8, comma-separated, header row = the variable names below, fields quoted only when "
                   "they hold a comma, quote or line break",
        },
        "toxicity_scales": {
            "CRS": _scale(study.crs_scale),
            "ICANS": _scale(study.icans_scale),
            "other_adverse_events": "CTCAE, version per record (AETOXSCL)",
            "note": "AETOXGR is the grade number only; AETOXSCL names its scale.",
        },
        "datasets": datasets,
        "codelists": [_codelist_document(name, specs[name], study) for name in sorted(used)],
    }


def _scale(code: str) -> dict:
    return {"code": code, "name": SCALES.get(code, code)}


# ============================================================================================
# ISO 3166-1: the CRF stores alpha-2, SDTM COUNTRY is alpha-3
# ============================================================================================

_ISO3166 = (
    "AD AND AE ARE AF AFG AG ATG AI AIA AL ALB AM ARM AO AGO AQ ATA AR ARG AS ASM AT AUT AU AUS AW ABW AX ALA "
    "AZ AZE BA BIH BB BRB BD BGD BE BEL BF BFA BG BGR BH BHR BI BDI BJ BEN BL BLM BM BMU BN BRN BO BOL BQ BES "
    "BR BRA BS BHS BT BTN BV BVT BW BWA BY BLR BZ BLZ CA CAN CC CCK CD COD CF CAF CG COG CH CHE CI CIV CK COK "
    "CL CHL CM CMR CN CHN CO COL CR CRI CU CUB CV CPV CW CUW CX CXR CY CYP CZ CZE DE DEU DJ DJI DK DNK DM DMA "
    "DO DOM DZ DZA EC ECU EE EST EG EGY EH ESH ER ERI ES ESP ET ETH FI FIN FJ FJI FK FLK FM FSM FO FRO FR FRA "
    "GA GAB GB GBR GD GRD GE GEO GF GUF GG GGY GH GHA GI GIB GL GRL GM GMB GN GIN GP GLP GQ GNQ GR GRC GS SGS "
    "GT GTM GU GUM GW GNB GY GUY HK HKG HM HMD HN HND HR HRV HT HTI HU HUN ID IDN IE IRL IL ISR IM IMN IN IND "
    "IO IOT IQ IRQ IR IRN IS ISL IT ITA JE JEY JM JAM JO JOR JP JPN KE KEN KG KGZ KH KHM KI KIR KM COM KN KNA "
    "KP PRK KR KOR KW KWT KY CYM KZ KAZ LA LAO LB LBN LC LCA LI LIE LK LKA LR LBR LS LSO LT LTU LU LUX LV LVA "
    "LY LBY MA MAR MC MCO MD MDA ME MNE MF MAF MG MDG MH MHL MK MKD ML MLI MM MMR MN MNG MO MAC MP MNP MQ MTQ "
    "MR MRT MS MSR MT MLT MU MUS MV MDV MW MWI MX MEX MY MYS MZ MOZ NA NAM NC NCL NE NER NF NFK NG NGA NI NIC "
    "NL NLD NO NOR NP NPL NR NRU NU NIU NZ NZL OM OMN PA PAN PE PER PF PYF PG PNG PH PHL PK PAK PL POL PM SPM "
    "PN PCN PR PRI PS PSE PT PRT PW PLW PY PRY QA QAT RE REU RO ROU RS SRB RU RUS RW RWA SA SAU SB SLB SC SYC "
    "SD SDN SE SWE SG SGP SH SHN SI SVN SJ SJM SK SVK SL SLE SM SMR SN SEN SO SOM SR SUR SS SSD ST STP SV SLV "
    "SX SXM SY SYR SZ SWZ TC TCA TD TCD TF ATF TG TGO TH THA TJ TJK TK TKL TL TLS TM TKM TN TUN TO TON TR TUR "
    "TT TTO TV TUV TW TWN TZ TZA UA UKR UG UGA UM UMI US USA UY URY UZ UZB VA VAT VC VCT VE VEN VG VGB VI VIR "
    "VN VNM VU VUT WF WLF WS WSM YE YEM YT MYT ZA ZAF ZM ZMB ZW ZWE"
).split()
ALPHA3 = dict(zip(_ISO3166[::2], _ISO3166[1::2]))


def country_alpha3(alpha2: str) -> str | None:
    """ISO 3166-1 alpha-3 of an alpha-2 code; an unknown code is passed on upper-case, not dropped."""
    if not alpha2:
        return None
    code = alpha2.strip().upper()
    return ALPHA3.get(code, code)
