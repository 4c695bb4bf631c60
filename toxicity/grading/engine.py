"""Grading engine: one daily assessment in, CRS and ICANS grades with flags and reasons out.

`crs_grade` is on the trial's CRS scale (ASTCT 2019, CTCAE v5.0 or CTCAE v6.0), `icans_grade`
on its ICANS scale (ASTCT 2019 or CTCAE v6.0), and `ctcae_crs_grade` always on CTCAE v5.0,
which expedited reporting needs (grading.md; data-dictionary.md "Grading input and output").
Every NE comes with a flag; every grade with the sentences that explain it. The scale names and
ENGINE_VERSION travel with the result so a stored grade can always be traced and recomputed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from .crs import FEVER_C, grade_crs, oxygen_device_flow_conflict, temperature_sentence
from .icans import grade_icans
from .inputs import (
    CTCAE_V5, ICE_MIN_AGE_YEARS, NE, SCALE_LABELS, Assessment, Flag, parse_grading_input,
)

# Bump on any change that can change a grade, flag or reason: stored rows keep the version.
ENGINE_VERSION = "2026.12.1"  # R-CRS-2 masking windows, minimum grades, R-ICANS-3/6 (issue 15)


@dataclass(frozen=True)
class GradingResult:
    """The engine's answer for one assessment. Grades are 0-5 or "NE"."""

    crs_grade: int | str
    icans_grade: int | str
    ctcae_crs_grade: int | str
    flags: tuple[str, ...]  # sorted, unique flag ids (checks.md)
    reasons: tuple[str, ...]  # human sentences citing the rule ids
    crs_scale: str
    icans_scale: str
    minimum_crs_grade: int | None = None  # R-CRS-15: the floor an NE CRS grade provably has
    minimum_icans_grade: int | None = None
    ctcae_crs_scale: str = CTCAE_V5
    engine_version: str = ENGINE_VERSION

    def as_dict(self) -> dict[str, Any]:
        """The JSON output of the CLI and of POST /api/v1/grading/preview/."""
        return {
            "crs_grade": self.crs_grade,
            "icans_grade": self.icans_grade,
            "ctcae_crs_grade": self.ctcae_crs_grade,
            "minimum_crs_grade": self.minimum_crs_grade,
            "minimum_icans_grade": self.minimum_icans_grade,
            "flags": list(self.flags),
            "reasons": list(self.reasons),
            "crs_scale": self.crs_scale,
            "icans_scale": self.icans_scale,
            "engine_version": self.engine_version,
        }

    def as_json(self) -> str:
        """as_dict() as compact JSON: json.dumps(self.as_dict(), separators=(",", ":")), fast.

        Escaping the sentences is most of the cost of encoding, and they repeat from one
        assessment to the next: each distinct string is encoded once (_STRINGS).
        """
        get = _STRINGS.get
        strings = (self.crs_scale, self.icans_scale, self.engine_version, *self.flags,
                   *self.reasons)
        texts = [*map(get, strings)]
        if None in texts:
            texts = [get(text) or _json(text) for text in strings]
        n = len(self.flags)
        return (f'{{"crs_grade":{_json_grade(self.crs_grade)},'
                f'"icans_grade":{_json_grade(self.icans_grade)},'
                f'"ctcae_crs_grade":{_json_grade(self.ctcae_crs_grade)},'
                f'"minimum_crs_grade":{_json_minimum(self.minimum_crs_grade)},'
                f'"minimum_icans_grade":{_json_minimum(self.minimum_icans_grade)},'
                f'"flags":[{",".join(texts[3:3 + n])}],"reasons":[{",".join(texts[3 + n:])}],'
                f'"crs_scale":{texts[0]},"icans_scale":{texts[1]},"engine_version":{texts[2]}}}')


_STRINGS: dict[str, str] = {}  # a string -> its JSON text (bounded)


def _json(value: Any) -> str:
    if not isinstance(value, str):  # a key for str only: 1, 1.0 and True are one dict key
        return json.dumps(value)
    if len(_STRINGS) >= 65536:
        _STRINGS.clear()
    text = _STRINGS[value] = json.dumps(value)
    return text


def _json_minimum(minimum: int | None) -> str:
    return "null" if minimum is None else str(minimum)


def _json_grade(grade_: int | str) -> str:
    return str(grade_) if type(grade_) is int else _STRINGS.get(grade_) or _json(grade_)


def grade(data: Mapping[str, Any]) -> GradingResult:
    """Grade one grading input (a plain dict). Raises GradingInputError on bad input."""
    return grade_assessment(parse_grading_input(data))


def grade_assessment(a: Assessment) -> GradingResult:
    """Grade an already validated assessment."""
    crs_grade, ctcae_grade, crs_reasons, crs_flags, data_query, crs_minimum = _crs_part(a)
    icans_grade, icans_reasons, icans_flags, icans_minimum = _icans_part(a)
    flags = crs_flags | icans_flags
    # CRS and ICANS sentences, then the O2-DEVICE-FLOW-CONFLICT query: no sentence is in two
    reasons = crs_reasons + icans_reasons + data_query

    # Reported grades are compared on the trial's scale, never when the derived grade is NE.
    reported = a.crs_grade_reported
    if reported is not None and crs_grade != NE and reported != crs_grade:
        flags = flags | _CRS_MISMATCH
        reasons += (_mismatch_sentence("CRS", reported, a.crs_scale, crs_grade),)
    reported = a.icans_grade_reported
    if reported is not None and icans_grade != NE and reported != icans_grade:
        flags = flags | _ICANS_MISMATCH
        reasons += (_mismatch_sentence("ICANS", reported, a.icans_scale, icans_grade),)

    result = object.__new__(GradingResult)  # as _assessment in inputs.py: no field-by-field init
    result.__dict__.update(
        crs_grade=crs_grade, icans_grade=icans_grade, ctcae_crs_grade=ctcae_grade,
        flags=_sorted(flags), reasons=reasons, crs_scale=a.crs_scale, icans_scale=a.icans_scale,
        minimum_crs_grade=crs_minimum, minimum_icans_grade=icans_minimum)
    return result


_CRS_MISMATCH = frozenset({Flag.CRS_GRADE_MISMATCH.value})
_ICANS_MISMATCH = frozenset({Flag.ICANS_GRADE_MISMATCH.value})


@functools.cache  # a few hundred combinations at most
def _mismatch_sentence(kind: str, reported: int, scale: str, derived: int) -> str:
    return (f"{kind}-GRADE-MISMATCH: investigator reported {kind} grade {reported}; derived "
            f"{SCALE_LABELS[scale]} grade is {derived}.")


@functools.cache  # one per combination of the ten flags that occurs
def _sorted(flags: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(flags))


# --- the CRS and ICANS parts, remembered by clinical state ---------------------------------------
# grade_crs and grade_icans are pure functions of a few fields, most of them codes, booleans and
# small whole numbers, and the same clinical state recurs on most days of most subjects. Each
# part of the result is worked out once per state and kept. A key holds every field its graders
# read (test_grading_fast_paths.py checks it), with two exceptions: the temperature is kept as
# fever / no fever / not measured, and its R-CRS-1 sentence written per call; an age of 12 or
# more is kept as "12" or "13+" (the graders only ask "under 12?" and "under 13?"; a child's age
# is kept whole for "a child aged N"). Memory stays bounded: a memo is emptied when full, and a
# state with a number printed longer than _LONGEST_KEPT characters (an input may hold a million
# digits) is worked out each time, never kept.

_MEMO_SIZE = 8192
_LONGEST_KEPT = 16
CRS_STATE_FIELDS = (  # besides temperature_max_c and oxygen_flow_l_min, in _crs_part
    "crs_scale", "death_primary_cause", "fever_other_cause", "antipyretic_given", "crs_ongoing",
    "anticytokine_or_antipyretic_since_onset", "fever_masked_by", "hypotension", "hypotension_other_cause",
    "vasopressors", "vasopressin_other_indication", "hypoxia", "hypoxia_other_cause",
    "oxygen_device", "fio2_percent", "intubation_reason")
ICANS_STATE_FIELDS = (  # besides age_years, in _icans_part
    "icans_scale", "death_primary_cause", "developmental_delay", "ice_score",
    "ice_not_assessable", "capd_score", "capd_unable", "capd_baseline", "consciousness",
    "consciousness_other_cause", "seizure", "seizure_other_cause", "motor_weakness",
    "motor_other_cause", "cerebral_edema", "cerebral_edema_other_cause")
_CRS_FIELDS = attrgetter(*CRS_STATE_FIELDS)
_ICANS_FIELDS = attrgetter(*ICANS_STATE_FIELDS)
_CRS_MEMO: dict[tuple, tuple] = {}
_ICANS_MEMO: dict[tuple, tuple] = {}
_SENTENCES: dict[str, str] = {}  # str(temperature) -> its R-CRS-1 sentence


def _crs_part(a: Assessment) -> tuple[int | str, int | str, tuple[str, ...], frozenset[str],
                                      tuple[str, ...], int | None]:
    """(trial-scale CRS grade, CTCAE v5.0 CRS grade, their reasons, their flags, the
    O2-DEVICE-FLOW-CONFLICT sentence if there is one, and the trial-scale minimum grade)."""
    temp, flow = a.temperature_max_c, a.oxygen_flow_l_min
    flow_text = None if flow is None else str(flow)  # exact: str() gives back the very Decimal
    key = (None if temp is None else temp >= FEVER_C, flow_text, _CRS_FIELDS(a))
    entry = _CRS_MEMO.get(key)
    if entry is None:
        entry = _crs_state(a)
        if flow_text is None or len(flow_text) <= _LONGEST_KEPT:
            _keep(_CRS_MEMO, key, entry)
    crs_grade, ctcae_grade, reasons, after, flags, data_query, minimum = entry
    if after is not None:  # this day's temperature in the R-CRS-1 sentence between the two
        text = str(temp)
        sentence = _SENTENCES.get(text)
        if sentence is None:
            sentence = temperature_sentence(temp)
            if len(text) <= _LONGEST_KEPT:
                _keep(_SENTENCES, text, sentence)
        reasons = reasons + (sentence,) + after
    return crs_grade, ctcae_grade, reasons, flags, data_query, minimum


def _crs_state(a: Assessment) -> tuple:
    """The parts of the result grade_crs gives on both scales, and where the temperature is."""
    crs = grade_crs(a, a.crs_scale)
    ctcae_v5 = crs if a.crs_scale == CTCAE_V5 else grade_crs(a, CTCAE_V5)
    reasons = tuple(dict.fromkeys((*crs.reasons, *ctcae_v5.reasons)))  # shared: say them once
    flags = {str(flag) for flag in crs.flags | ctcae_v5.flags}
    conflict = oxygen_device_flow_conflict(a)
    if conflict:
        flags.add(Flag.O2_DEVICE_FLOW_CONFLICT.value)
    after = None  # the reasons after the R-CRS-1 sentence, when there is one
    if a.temperature_max_c is not None:
        sentence = temperature_sentence(a.temperature_max_c)
        if sentence in reasons:
            at = reasons.index(sentence)
            reasons, after = reasons[:at], reasons[at + 1:]
    return (crs.grade, ctcae_v5.grade, reasons, after, frozenset(flags),
            (conflict,) if conflict else (), crs.minimum)


def age_as_graded(age):
    """The age as grading tells ages apart: the graders and the input's cross-field rules only ask
    "under 12?" and "under 13?", so 12 <= age < 13 is "12" and 13 or more "13+"; a child's age stays
    whole ("a child aged N"). Ages alike here grade alike (test_grading_fast_paths.py): the
    engine's memo and the course derivation's (toxicity.course.derive) key by it."""
    if age is None or age < ICE_MIN_AGE_YEARS:
        return age
    return "12" if age < ICE_MIN_AGE_YEARS + 1 else "13+"


def _icans_part(a: Assessment) -> tuple[int | str, tuple[str, ...], frozenset[str], int | None]:
    """(ICANS grade on the trial's scale, its reasons, its flags, its minimum grade)."""
    age = age_as_graded(a.age_years)
    keep = type(age) is str or age is None or len(str(age)) <= _LONGEST_KEPT
    key = (age, _ICANS_FIELDS(a))
    entry = _ICANS_MEMO.get(key)
    if entry is None:
        icans = grade_icans(a, a.icans_scale)
        entry = (icans.grade, tuple(dict.fromkeys(icans.reasons)),
                 frozenset(str(flag) for flag in icans.flags), icans.minimum)
        if keep:
            _keep(_ICANS_MEMO, key, entry)
    return entry


def _keep(memo: dict, key: Any, value: Any) -> None:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = value
