"""Grading input: one daily toxicity assessment plus its context, parsed from a plain dict.

Field names, codes and flag ids are the public contract of the CRF data dictionary
("Daily toxicity assessment", "Grading input and output") and of the check catalogue
(checks.md). This module also holds the vocabulary the graders share: scale names, codes,
flag ids and the per-scale result type.

Parsing is tolerant of how data arrives (JSON numbers, CSV strings, "true"/"1"/"" booleans,
comma- or semicolon-separated vasopressor lists) and strict about what it means: an unknown
code, a wrong type, a value outside its hard limit or a broken hard cross-field rule raises
GradingInputError naming every bad field. Missing data that a grade depends on is not an
error here: the graders return "NE" with a flag (R-CRS-15). Numbers become Decimal so that
38.0 vs 37.9 C and 6.0 vs 6.5 L/min compare exactly, never through binary floats. Keys that
are not grading fields (subject_id, study_day, ...) are ignored. Besides the dictionary's
context fields, `capd_baseline` (the subject's pre-infusion CAPD) is read for CAPD-AT-BASELINE.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

NE = "NE"  # not evaluable; always returned together with a flag

# --- scales -----------------------------------------------------------------------------

ASTCT_2019 = "astct_2019"
CTCAE_V5 = "ctcae_v5"
CTCAE_V6 = "ctcae_v6"
CRS_SCALES = (ASTCT_2019, CTCAE_V5, CTCAE_V6)
ICANS_SCALES = (ASTCT_2019, CTCAE_V6)
SCALE_LABELS = {ASTCT_2019: "ASTCT 2019", CTCAE_V5: "CTCAE v5.0", CTCAE_V6: "CTCAE v6.0"}

# --- codes (data-dictionary.md) ---------------------------------------------------------------

VASOPRESSOR_CODES = (
    "norepinephrine", "epinephrine", "phenylephrine", "dopamine", "vasopressin",
    "angiotensin_ii", "other",
)
OXYGEN_DEVICES = (
    "none", "nasal_cannula", "blow_by", "high_flow_nasal_cannula", "facemask",
    "non_rebreather", "venturi_mask", "cpap", "bipap", "mechanical_ventilation",
)
INTUBATION_REASONS = ("hypoxia", "airway_protection", "procedure", "other")
ICE_NOT_ASSESSABLE = ("unarousable", "sedated", "other")
CONSCIOUSNESS = (
    "alert", "awakens_spontaneously", "awakens_to_voice", "awakens_to_tactile", "unarousable",
    "sedated",
)
# R-CRS-2: what can mask fever (data-dictionary.md, grading context ``fever_masked_by``): the drug
# codes of the tocilizumab, corticosteroid and anti-cytokine logs, or an antipyretic.
MASKING_DRUGS = (
    "tocilizumab", "siltuximab", "anakinra", "dexamethasone", "methylprednisolone",
    "hydrocortisone", "prednisone", "prednisolone", "other", "antipyretic",
)
SEIZURE = ("none", "rapidly_resolving", "prolonged_or_repetitive")
MOTOR_WEAKNESS = ("none", "deep_focal")
CEREBRAL_EDEMA = ("none", "focal", "diffuse_or_signs")
DEATH_CAUSES = ("crs", "icans", "disease_progression", "infection", "other")

# --- hard limits (data-dictionary.md "hard"): outside them the value is rejected --------------

TEMPERATURE_C_LIMITS = (Decimal("25.0"), Decimal("45.0"))
OXYGEN_FLOW_LIMITS = (Decimal("0"), Decimal("80"))
FIO2_LIMITS = (21, 100)
ICE_LIMITS = (0, 10)
CAPD_LIMITS = (0, 32)
GRADE_LIMITS = (0, 5)

# ICE is the tool from this age on (R-ICANS-8); younger children get the CAPD.
ICE_MIN_AGE_YEARS = 12


class Flag(enum.StrEnum):
    """Flag ids the engine raises (checks.md, "Grading consistency")."""

    CRS_NOT_EVALUABLE = "CRS-NOT-EVALUABLE"
    CRS_FEVER_MASKED = "CRS-FEVER-MASKED"
    ICANS_NOT_EVALUABLE = "ICANS-NOT-EVALUABLE"
    CRS_NO_FEVER_AT_ONSET = "CRS-NO-FEVER-AT-ONSET"
    VASOPRESSIN_ALONE = "VASOPRESSIN-ALONE"
    ANGIOTENSIN_COUNTED = "ANGIOTENSIN-COUNTED"
    O2_DEVICE_FLOW_CONFLICT = "O2-DEVICE-FLOW-CONFLICT"
    ICANS_TOOL_AGE = "ICANS-TOOL-AGE"
    CAPD_AT_BASELINE = "CAPD-AT-BASELINE"
    CRS_GRADE_MISMATCH = "CRS-GRADE-MISMATCH"
    ICANS_GRADE_MISMATCH = "ICANS-GRADE-MISMATCH"


@dataclass(frozen=True)
class ScaleGrade:
    """One grade on one scale: 0-5 or "NE", with the sentences and flags that explain it.

    ``minimum`` is set only on an NE whose recorded values prove a floor >= 1 (R-CRS-15).
    """

    scale: str
    grade: int | str
    reasons: tuple[str, ...] = ()
    flags: frozenset[str] = frozenset()
    minimum: int | None = None


@dataclass(frozen=True)
class FeverMask:
    """R-CRS-2: the therapy whose masking window covers the day (the most recent such dose)."""

    drug: str  # MASKING_DRUGS
    date: dt.date

    def words(self) -> str:
        """"tocilizumab on 2026-03-12", as the CRF panel and the query text say it."""
        return f"{self.drug.replace('_', ' ')} on {self.date.isoformat()}"

    def as_dict(self) -> dict[str, str]:
        return {"drug": self.drug, "date": self.date.isoformat()}


class GradingInputError(ValueError):
    """Bad grading input. `errors` maps every bad field to its messages (API 400 shape)."""

    def __init__(self, errors: Mapping[str, list[str]]):
        self.errors: dict[str, list[str]] = {field: list(msgs) for field, msgs in errors.items()}
        summary = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in self.errors.items())
        super().__init__(f"invalid grading input: {summary}")


@dataclass(frozen=True)
class Assessment:
    """A validated grading input. Optional fields default to none/false/not recorded."""

    # CRS
    temperature_max_c: Decimal | None = None  # None = not measured (R-CRS-15)
    fever_other_cause: bool = False
    antipyretic_given: bool = False
    hypotension: bool = False
    hypotension_other_cause: bool = False
    vasopressors: tuple[str, ...] = ()
    vasopressin_other_indication: bool = False
    hypoxia: bool = False
    hypoxia_other_cause: bool = False
    oxygen_device: str = "none"
    oxygen_flow_l_min: Decimal | None = None
    fio2_percent: int | None = None
    intubation_reason: str | None = None
    # ICANS
    ice_score: int | None = None
    ice_not_assessable: str | None = None
    capd_score: int | None = None
    capd_unable: bool = False
    consciousness: str | None = None
    consciousness_other_cause: bool = False
    seizure: str = "none"
    seizure_other_cause: bool = False
    motor_weakness: str = "none"
    motor_other_cause: bool = False
    cerebral_edema: str = "none"
    cerebral_edema_other_cause: bool = False
    # investigator's grades, compared with the derived ones
    crs_grade_reported: int | None = None
    icans_grade_reported: int | None = None
    # context filled by the platform (or given to the CLI / preview)
    assessment_date: dt.date | None = None
    age_years: Decimal | None = None
    developmental_delay: bool = False
    capd_baseline: int | None = None
    crs_ongoing: bool = False
    anticytokine_or_antipyretic_since_onset: bool = False
    fever_masked_by: FeverMask | None = None
    death_primary_cause: str | None = None
    crs_scale: str = ASTCT_2019
    icans_scale: str = ASTCT_2019

    @property
    def ice_recorded(self) -> bool:
        return self.ice_score is not None or self.ice_not_assessable is not None

    @property
    def capd_recorded(self) -> bool:
        return self.capd_score is not None or self.capd_unable

    @property
    def vasopressors_for_hypotension(self) -> tuple[str, ...]:
        """The listed agents, without vasopressin given for another indication (R-CRS-7)."""
        if self.vasopressin_other_indication:
            return tuple(v for v in self.vasopressors if v != "vasopressin")
        return self.vasopressors


def fahrenheit_to_celsius(fahrenheit: int | float | str | Decimal) -> Decimal:
    """(F - 32) * 5 / 9, exactly in Decimal: 100.4 F -> 38.0 C (fever), 100.3 F -> 37.94 C."""
    value = _to_decimal(fahrenheit)
    if value is None:
        raise ValueError(f"not a finite number: {fahrenheit!r}")
    with localcontext() as ctx:
        ctx.prec = 28
        return (value - 32) * 5 / 9


def parse_grading_input(data: Mapping[str, Any]) -> Assessment:
    """Validate one grading input; raise GradingInputError naming every bad field."""
    if type(data) is dict:
        assessment = _parse_plain(data)
        if assessment is not None:
            return assessment
    return _parse_careful(data)


def _parse_careful(data: Mapping[str, Any]) -> Assessment:
    """Every accepted form of every field, every error collected (the reference reading)."""
    if not isinstance(data, Mapping):
        raise GradingInputError({"non_field_errors": ["grading input must be a JSON object"]})
    r = _Reader(data)
    values: dict[str, Any] = {
        "temperature_max_c": r.decimal("temperature_max_c", *TEMPERATURE_C_LIMITS),
        "oxygen_flow_l_min": r.decimal("oxygen_flow_l_min", *OXYGEN_FLOW_LIMITS),
        "fio2_percent": r.integer("fio2_percent", *FIO2_LIMITS),
        "ice_score": r.integer("ice_score", *ICE_LIMITS),
        "capd_score": r.integer("capd_score", *CAPD_LIMITS),
        "capd_baseline": r.integer("capd_baseline", *CAPD_LIMITS),
        "crs_grade_reported": r.integer("crs_grade_reported", *GRADE_LIMITS),
        "icans_grade_reported": r.integer("icans_grade_reported", *GRADE_LIMITS),
        "age_years": r.decimal("age_years", Decimal(0), None),
        "vasopressors": r.code_list("vasopressors", VASOPRESSOR_CODES),
        "oxygen_device": r.code("oxygen_device", OXYGEN_DEVICES, "none"),
        "intubation_reason": r.code("intubation_reason", INTUBATION_REASONS),
        "ice_not_assessable": r.code("ice_not_assessable", ICE_NOT_ASSESSABLE),
        "consciousness": r.code("consciousness", CONSCIOUSNESS),
        "seizure": r.code("seizure", SEIZURE, "none"),
        "motor_weakness": r.code("motor_weakness", MOTOR_WEAKNESS, "none"),
        "cerebral_edema": r.code("cerebral_edema", CEREBRAL_EDEMA, "none"),
        "death_primary_cause": r.code("death_primary_cause", DEATH_CAUSES),
        "crs_scale": r.code("crs_scale", CRS_SCALES, ASTCT_2019),
        "icans_scale": r.code("icans_scale", ICANS_SCALES, ASTCT_2019),
        "assessment_date": r.date("assessment_date"),
        "fever_masked_by": r.fever_mask("fever_masked_by"),
    }
    for name in BOOLEAN_FIELDS:
        values[name] = r.boolean(name)
    _check_cross_field_rules(r, values)
    if r.errors:
        raise GradingInputError(r.errors)
    return Assessment(**values)


# --- the fast path ----------------------------------------------------------------------------
# Nearly every input arrives as plain JSON values that are valid as they stand: true/false/null,
# lower-case codes, whole numbers and numbers within the limits, a list of codes. _parse_plain
# reads those in one pass, keeps only the values that differ from the Assessment defaults, and
# converts a number or date it has seen before without Decimal or date work. Anything else - a
# number or boolean written as text, an upper-case code, a value out of range, a broken
# cross-field rule - returns None and the input is read again by _parse_careful, so errors and
# accepted values are exactly its own.

_INTEGERS = (  # (field, low, high)
    ("fio2_percent", *FIO2_LIMITS), ("ice_score", *ICE_LIMITS), ("capd_score", *CAPD_LIMITS),
    ("capd_baseline", *CAPD_LIMITS), ("crs_grade_reported", *GRADE_LIMITS),
    ("icans_grade_reported", *GRADE_LIMITS),
)
_CODES = tuple((field, frozenset(codes)) for field, codes in (
    ("oxygen_device", OXYGEN_DEVICES), ("intubation_reason", INTUBATION_REASONS),
    ("ice_not_assessable", ICE_NOT_ASSESSABLE), ("consciousness", CONSCIOUSNESS),
    ("seizure", SEIZURE), ("motor_weakness", MOTOR_WEAKNESS), ("cerebral_edema", CEREBRAL_EDEMA),
    ("death_primary_cause", DEATH_CAUSES), ("crs_scale", CRS_SCALES),
    ("icans_scale", ICANS_SCALES),
))
_VASOPRESSORS = frozenset(VASOPRESSOR_CODES)
_NUMBERS = {"temperature_max_c": TEMPERATURE_C_LIMITS, "oxygen_flow_l_min": OXYGEN_FLOW_LIMITS,
            "age_years": (Decimal(0), None)}
_CACHE_SIZE = 4096  # entries per cache, so that memory stays flat however long the input
# (a float is 8 bytes, an int from JSON at most 4300 digits, a kept date string 10 characters)
# field -> {int or float: Decimal} for values _Reader.decimal has accepted. int and float are
# kept apart (38 and 38.0 are equal keys but print differently), and zero is never cached (0.0
# and -0.0 are equal keys but print differently).
_NUMBER_CACHE: dict[type, dict[str, dict[Any, Decimal]]] = {
    kind: {field: {} for field in _NUMBERS} for kind in (int, float)}
_DATE_CACHE: dict[str, dt.date] = {}


def _plain_number(field: str, value: Any) -> Decimal | None:
    """`value` as _Reader.decimal accepts it for `field`, or None: take the careful way."""
    kind = type(value)
    if kind is Decimal:
        low, high = _NUMBERS[field]
        if value.is_finite() and low <= value and (high is None or value <= high):
            return value
        return None
    caches = _NUMBER_CACHE.get(kind)
    if caches is None:  # bool, str, list, ...
        return None
    cache = caches[field]
    number = cache.get(value)
    if number is None:
        reader = _Reader({field: value})
        number = reader.decimal(field, *_NUMBERS[field])
        if number is None or reader.errors:
            return None
        if value:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[value] = number
    return number


def _plain_date(value: Any) -> dt.date | None:
    """`value` as _Reader.date accepts it, or None: take the careful way."""
    if type(value) is dt.date:
        return value
    if type(value) is not str:
        return None
    date = _DATE_CACHE.get(value)
    if date is None:
        reader = _Reader({"assessment_date": value})
        date = reader.date("assessment_date")
        if date is None or reader.errors:
            return None
        if len(value) <= 10:  # YYYY-MM-DD: never a long string padded with spaces
            if len(_DATE_CACHE) >= _CACHE_SIZE:
                _DATE_CACHE.clear()
            _DATE_CACHE[value] = date
    return date


def _parse_plain(data: dict[str, Any]) -> Assessment | None:
    """The input as an Assessment if every value is plain and valid, else None."""
    get = data.get
    values: dict[str, Any] = {}  # only what differs from the defaults
    for name in BOOLEAN_FIELDS:
        flag = get(name)
        if flag is True:
            values[name] = True
        elif flag is not None and flag is not False:
            return None
    for name, low, high in _INTEGERS:
        number = get(name)
        if number is not None:
            if type(number) is not int or not low <= number <= high:
                return None
            values[name] = number
    try:
        for name, allowed in _CODES:
            code = get(name)
            if code is not None:
                if code not in allowed:  # only str codes are in it; unhashable: TypeError
                    return None
                values[name] = code
    except TypeError:
        return None
    for name in _NUMBERS:
        value = get(name)
        if value is not None:
            number = values[name] = _plain_number(name, value)
            if number is None:
                return None
    value = get("assessment_date")
    if value is not None:
        date = values["assessment_date"] = _plain_date(value)
        if date is None:
            return None
    mask = get("fever_masked_by")
    if mask is not None:
        if type(mask) is not FeverMask:
            return None  # a JSON object: the careful reader checks the drug code and the date
        values["fever_masked_by"] = mask
    agents = get("vasopressors")
    if agents:
        if (type(agents) is not list or not all(type(x) is str for x in agents)
                or not _VASOPRESSORS.issuperset(agents) or len(set(agents)) != len(agents)):
            return None
        agents = values["vasopressors"] = tuple(agents)
    elif agents is not None and agents != []:
        return None

    # the hard cross-field rules of _check_cross_field_rules: any doubt, the careful way
    v = values.get
    if agents and not v("hypotension") and (not v("vasopressin_other_indication")
                                            or any(x != "vasopressin" for x in agents)):
        return None
    if v("oxygen_device") == "mechanical_ventilation" and v("intubation_reason") is None:
        return None
    if v("ice_score") and v("ice_not_assessable") is not None:
        return None
    if v("capd_unable") and v("capd_score") is not None:
        return None
    age = v("age_years")
    if (age is not None and age >= ICE_MIN_AGE_YEARS and v("ice_score") is None
            and v("ice_not_assessable") is None and not v("developmental_delay")
            and v("capd_score") is None and not v("capd_unable")
            and v("death_primary_cause") is None):
        return None
    return _assessment(values)


def _assessment(values: dict[str, Any]) -> Assessment:
    """An Assessment holding `values`; every field not in them reads as its dataclass default.

    The frozen dataclass's __init__ sets all 36 fields one object.__setattr__ at a time; this
    sets the instance dict once. Equality, repr, replace() and pickling are unchanged.
    """
    assessment = object.__new__(Assessment)
    object.__setattr__(assessment, "__dict__", values)
    return assessment


def collect_input_errors(data: Mapping[str, Any]) -> dict[str, list[str]]:
    """The errors parse_grading_input would raise, as a dict ({} when the input is valid)."""
    try:
        parse_grading_input(data)
    except GradingInputError as exc:
        return exc.errors
    return {}


BOOLEAN_FIELDS = (
    "fever_other_cause", "antipyretic_given", "hypotension", "hypotension_other_cause",
    "vasopressin_other_indication", "hypoxia", "hypoxia_other_cause", "capd_unable",
    "consciousness_other_cause", "seizure_other_cause", "motor_other_cause",
    "cerebral_edema_other_cause", "developmental_delay", "crs_ongoing",
    "anticytokine_or_antipyretic_since_onset",
)


def _check_cross_field_rules(r: _Reader, v: dict[str, Any]) -> None:
    """Hard cross-field rules of the data dictionary. Fields that already failed are skipped."""

    def ok(*names: str) -> bool:
        return not any(name in r.errors for name in names)

    # vasopressors: "hard: non-empty requires hypotension". Vasopressin flagged as given for
    # another indication (e.g. diabetes insipidus) is not an agent for hypotension (R-CRS-7).
    if ok("vasopressors", "hypotension", "vasopressin_other_indication") and not v["hypotension"]:
        agents = [a for a in v["vasopressors"]
                  if not (a == "vasopressin" and v["vasopressin_other_indication"])]
        if agents:
            r.error("vasopressors", "vasopressors for hypotension require hypotension to be "
                                    "recorded (hypotension is false)")

    # intubation_reason: "required with mechanical ventilation" (R-CRS-10 depends on it).
    if (ok("oxygen_device", "intubation_reason") and v["oxygen_device"] == "mechanical_ventilation"
            and v["intubation_reason"] is None):
        r.error("intubation_reason", "required when oxygen_device is mechanical_ventilation")

    # ice_score is "null when not assessable": a score above 0 and a reason contradict.
    # (ICE 0 with "unarousable" is the R-ICANS-2 grade 4 case and stays valid.)
    if (ok("ice_score", "ice_not_assessable") and v["ice_score"]
            and v["ice_not_assessable"] is not None):
        r.error("ice_not_assessable", "must be empty when an ICE score above 0 is recorded")

    if ok("capd_score", "capd_unable") and v["capd_unable"] and v["capd_score"] is not None:
        r.error("capd_unable", "cannot be true when a capd_score is recorded")

    # ice_not_assessable: "required when ice_score is null for a patient aged >= 12", where
    # the ICE is the tool: no developmental delay and no CAPD recorded instead (a CAPD for an
    # adult is graded and flagged ICANS-TOOL-AGE). On the day of death the ICE may simply not
    # have been done: that gives NE with a flag, not an error.
    if (ok("ice_score", "ice_not_assessable", "age_years", "developmental_delay", "capd_score",
           "capd_unable", "death_primary_cause")
            and v["ice_score"] is None and v["ice_not_assessable"] is None
            and v["age_years"] is not None and v["age_years"] >= ICE_MIN_AGE_YEARS
            and not v["developmental_delay"]
            and v["capd_score"] is None and not v["capd_unable"]
            and v["death_primary_cause"] is None):
        r.error("ice_not_assessable", "required when ice_score is empty for a patient aged 12 "
                                      "or more (unarousable, sedated or other)")


def _to_decimal(value: Any) -> Decimal | None:
    """A finite Decimal from int, float, Decimal or numeric string; None if not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)  # shortest round-trip text: 37.9 stays 37.9, not 37.899999...
    if isinstance(value, str):
        value = value.strip()
    if not isinstance(value, (int, str, Decimal)):
        return None
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


class _Reader:
    """Reads fields from the raw dict, collecting every error instead of stopping at one."""

    def __init__(self, data: Mapping[str, Any]):
        self.data = data
        self.errors: dict[str, list[str]] = {}

    def error(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def _raw(self, field: str) -> Any:
        value = self.data.get(field)
        if isinstance(value, str) and not value.strip():
            return None
        return value

    def boolean(self, field: str) -> bool:
        value = self.data.get(field)
        if value is None or isinstance(value, bool):
            return bool(value)
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("true", "1"):
                return True
            if text in ("false", "0", ""):
                return False
        self.error(field, f"must be true or false (got {value!r})")
        return False

    def decimal(self, field: str, low: Decimal | None, high: Decimal | None) -> Decimal | None:
        value = self._raw(field)
        if value is None:
            return None
        number = _to_decimal(value)
        if number is None:
            self.error(field, f"must be a number (got {value!r})")
            return None
        if (low is not None and number < low) or (high is not None and number > high):
            self.error(field, _range_message(low, high, value))
            return None
        return number

    def integer(self, field: str, low: int, high: int) -> int | None:
        value = self._raw(field)
        if value is None:
            return None
        number = _to_decimal(value)
        if number is None or number != number.to_integral_value():
            self.error(field, f"must be a whole number (got {value!r})")
            return None
        if not low <= number <= high:
            self.error(field, _range_message(low, high, value))
            return None
        return int(number)

    def code(self, field: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
        value = self._raw(field)
        if value is None:
            return default
        if not isinstance(value, str):
            self.error(field, f"must be a code, one of: {', '.join(allowed)} (got {value!r})")
            return default
        code = value.strip().lower()
        if code not in allowed:
            self.error(field, f"unknown code {value!r}; expected one of: {', '.join(allowed)}")
            return default
        return code

    def code_list(self, field: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        value = self._raw(field)
        if value is None:
            return ()
        if isinstance(value, str):
            items: list[Any] = value.replace(";", ",").split(",")
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            self.error(field, f"must be a list of codes (got {value!r})")
            return ()
        codes: list[str] = []
        for item in items:
            if not isinstance(item, str):
                self.error(field, f"must contain codes only (got {item!r})")
                continue
            code = item.strip().lower()
            if not code:
                continue
            if code not in allowed:
                self.error(field, f"unknown code {code!r}; expected any of: {', '.join(allowed)}")
            elif code not in codes:
                codes.append(code)
        return tuple(codes)

    def fever_mask(self, field: str) -> FeverMask | None:
        """null, or {"drug": one of MASKING_DRUGS, "date": "YYYY-MM-DD"} (R-CRS-2)."""
        value = self.data.get(field)
        if value is None:
            return None
        if isinstance(value, FeverMask):
            return value
        if not isinstance(value, Mapping) or set(value) - {"drug", "date"}:
            self.error(field, 'must be null or {"drug": code, "date": "YYYY-MM-DD"} '
                              f"(got {value!r})")
            return None
        inner = _Reader(value)
        drug = inner.code("drug", MASKING_DRUGS)
        date = inner.date("date")
        if drug is None and "drug" not in inner.errors:
            inner.error("drug", "required: the drug whose masking window covers the day")
        if date is None and "date" not in inner.errors:
            inner.error("date", "required: the date of that dose")
        for name, messages in inner.errors.items():
            for message in messages:
                self.error(field, f"{name}: {message}")
        if inner.errors:
            return None
        return FeverMask(drug, date)

    def date(self, field: str) -> dt.date | None:
        value = self._raw(field)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.error(field, f"must be a date YYYY-MM-DD (got {value!r})")
        return None


def _range_message(low: Any, high: Any, value: Any) -> str:
    if high is None:
        return f"must be {low} or more (got {value!r})"
    return f"must be between {low} and {high} (got {value!r})"
