"""De-identification of sponsor and DSMB output (reports.md, "De-identification").

The roles' view of one trial is a :class:`Disclosure`: whether identifiers (birth date) may be
shown, whether free text typed by a person may be shown, and whether dates are shifted. It is
decided per trial and errs on the side of hiding: a user holding a sponsor or DSMB role and no
data-manager role gets the de-identified view of the whole trial, even where a site role would
show more. With ``Trial.export_date_shift`` every date and date-time of a subject moves by the
subject's own offset (a :class:`~reporting.models.DateShift`), in every dataset alike.
"""
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from trials.models import Subject, Trial
from trials.roles import DEIDENTIFIED_ROLES, SITE_ROLES, TRIAL_ROLES, Role
from trials.selectors import RoleIndex

from .models import DateShift

MAX_SHIFT_DAYS = 180  # offsets are drawn from -180..-1 and 1..180


@dataclass(frozen=True)
class Disclosure:
    identifiers: bool  # date_of_birth
    free_text: bool  # text typed by a person (death cause text, void and change reasons, messages)
    shift_dates: bool

    @property
    def deidentified(self) -> bool:
        return not self.free_text


IDENTIFIED = Disclosure(identifiers=True, free_text=True, shift_dates=False)


def disclosure(user, trial: Trial) -> Disclosure:
    """What ``user`` may see of ``trial`` (workflow.md roles; reports.md de-identification)."""
    roles = {role for role, _ in RoleIndex.for_user(user).grants.get(trial.pk, {}).items()}
    deidentified = bool(roles & DEIDENTIFIED_ROLES) and Role.DATA_MANAGER not in roles
    return Disclosure(
        identifiers=bool(roles & SITE_ROLES) and not roles & TRIAL_ROLES,
        free_text=not deidentified,
        shift_dates=deidentified and trial.export_date_shift,
    )


def ensure_date_shifts(trial_id: int) -> None:
    """Draw an offset for every subject of the trial that has none yet (idempotent, race-safe)."""
    missing = Subject.objects.filter(trial_id=trial_id, date_shift__isnull=True).values_list("pk", flat=True)
    rows = [DateShift(subject_id=pk, days=_draw()) for pk in missing]
    if rows:
        DateShift.objects.bulk_create(rows, ignore_conflicts=True)


def _draw() -> int:
    days = secrets.randbelow(MAX_SHIFT_DAYS) + 1
    return days if secrets.randbelow(2) else -days


def shifts_for(trial_id: int) -> dict[int, int]:
    """``{subject pk: offset days}`` for the trial, drawing missing offsets first."""
    ensure_date_shifts(trial_id)
    return dict(DateShift.objects.filter(subject__trial_id=trial_id).values_list("subject_id", "days"))


# What sponsor and DSMB views never receive (reports.md, De-identification): one list for the
# exports, the audit trail and query values.
IDENTIFIER_FIELDS = frozenset({"date_of_birth"})
FREE_TEXT_FIELDS = frozenset({"death_cause_other_text", "void_reason", "comment"})  # comment: episode reviews


def redact_values(values, disclosure: "Disclosure"):
    """A query's raise-time values (``{field: value}``) without what the view may not see: a
    monitor may raise a query on the birth date or the typed death cause."""
    if not isinstance(values, dict):
        return values
    hidden = (set() if disclosure.identifiers else IDENTIFIER_FIELDS) | (set() if disclosure.free_text else FREE_TEXT_FIELDS)
    return {k: v for k, v in values.items() if k not in hidden}


_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")  # also the date part of a date-time


def shift_value(value, days: int):
    """A date, a date-time, or ISO dates inside text / JSON, moved by ``days``."""
    if value is None or days == 0:
        return value
    if isinstance(value, (date, datetime)):
        return value + timedelta(days=days)
    if isinstance(value, str):
        return _ISO_DATE.sub(lambda m: _shift_iso(m, days), value)
    if isinstance(value, list):
        return [shift_value(v, days) for v in value]
    if isinstance(value, dict):
        return {k: shift_value(v, days) for k, v in value.items()}
    return value


def shifted(value, days: int | None, disclosure: Disclosure):
    """A value of a subject for ``disclosure``: moved when dates are shifted (None without an offset)."""
    if not disclosure.shift_dates:
        return value
    return None if days is None else shift_value(value, days)


def _shift_iso(match: re.Match, days: int) -> str:
    try:
        return (date(*map(int, match.groups())) + timedelta(days=days)).isoformat()
    except ValueError:
        return match.group(0)


class RequestView:
    """Per-request cache of each trial's disclosure and date offsets (one query per trial)."""

    def __init__(self, user):
        self.user = user
        self._disclosures: dict[int, Disclosure] = {}
        self._shifts: dict[int, dict[int, int]] = {}

    @classmethod
    def of(cls, request) -> "RequestView":
        view = getattr(request, "_deid_view", None)
        if view is None:
            view = request._deid_view = cls(request.user)
        return view

    def disclosure(self, trial_id: int) -> Disclosure:
        if trial_id not in self._disclosures:
            trial = Trial.objects.only("export_date_shift").get(pk=trial_id)
            self._disclosures[trial_id] = disclosure(self.user, trial)
        return self._disclosures[trial_id]

    def shift_days(self, trial_id: int, subject_pk: int) -> int | None:
        if trial_id not in self._shifts:
            self._shifts[trial_id] = shifts_for(trial_id)
        return self._shifts[trial_id].get(subject_pk)


def representation_shifter(request, trial_id: int, fields: tuple[str, ...]):
    """``shift(data, subject_pk)``, moving ``fields`` of one API representation of ``trial_id``
    by the subject's offset when the caller's view shifts dates; None when it does not."""
    if request is None:
        return None
    view = RequestView.of(request)
    if not view.disclosure(trial_id).shift_dates:
        return None

    def shift(data: dict, subject_pk: int | None) -> dict:
        if subject_pk is None:
            return data
        days = view.shift_days(trial_id, subject_pk)
        for name in fields:
            if name in data:
                data[name] = None if days is None else shift_value(data[name], days)
        return data

    return shift


def deidentify_representation(data: dict, *, request, trial_id: int, subject_pk: int | None,
                              date_fields: list[str], text_fields: tuple[str, ...] = ()) -> dict:
    """Shift a subject's dates in one API representation when the caller's view says so."""
    shift = representation_shifter(request, trial_id, (*date_fields, *text_fields))
    return data if shift is None else shift(data, subject_pk)
