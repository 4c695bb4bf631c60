"""Bulk import of daily assessments and rescue-therapy logs from CSV (data-dictionary column names).

One row = one create through the same path as the REST API: the resource's write serializer
parses the cells (types and choice codes exactly as the API), then the resource's service
(``assessment_create`` / ``log_create``) validates, derives the grades, writes the audit row and
runs the save-time checks. Nothing else is written, so every rule holds however data arrive.

- Columns: ``subject_id`` plus the resource's writable fields. Unknown or duplicated columns and
  missing required columns are errors on row 1, and no data row is then read.
- Row numbers are spreadsheet row numbers: the header is row 1, the first data row is row 2;
  blank rows count (as in a spreadsheet) but are skipped.
- An empty cell means "not given" (null or the field's default). ``vasopressors`` is a
  ``;``-separated list of codes. Datetimes are ISO 8601; one without a UTC offset is a wall-clock
  time at the subject's site (the time zone ``site_local_date`` uses for day 0 and assessment
  dates); a wall-clock time that happens twice at the end of daylight saving time is refused
  unless it carries its offset, and one that never happens is refused as the API refuses it.
- ``subject_id`` is looked up in the trial among the subjects the user may enter data for; any
  other subject, existing or not, reads as unknown (workflow.md: never confirm existence).
- Rows are written in file order, each in its own savepoint, so every row is checked even after
  a failing one, and a later row sees the earlier ones (a second assessment of the same subject
  and date is refused as a duplicate). The whole file runs in one transaction: after a dry run
  or any row error it is rolled back, so nothing is stored and the e-mails queued with
  ``transaction.on_commit`` (grade >= 4 alerts, new-query notices) are dropped with it.
- Imports only create. Corrections go through PATCH with ``version`` and ``reason`` (api.md).
"""
import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers as drf_serializers

from toxicity.course.write import batched_writes
from toxicity.api import views as api_views
from trials.api.errors import field_errors, integrity_errors
from trials.audit import RecordLockedError, StaleVersionError
from trials.models import Subject, Trial
from trials.roles import DATA_ENTRY_ROLES
from trials.selectors import scoped
from trials.services import require_roles

# Dataset name (the API resource name) -> the API resource whose write serializer and create
# service each row goes through. One line per dataset.
DATASETS: dict[str, type] = {
    "assessments": api_views.AssessmentViewSet,
    "tocilizumab-doses": api_views.TocilizumabDoseViewSet,
    "corticosteroid-doses": api_views.CorticosteroidDoseViewSet,
    "anticytokine-doses": api_views.AnticytokineDoseViewSet,
    "plasma-exchanges": api_views.PlasmaExchangeViewSet,
    "hemofiltration-sessions": api_views.HemofiltrationSessionViewSet,
    "icu-stays": api_views.IcuStayViewSet,
    "adverse-events": api_views.AdverseEventViewSet,
}

LIST_SEPARATOR = ";"
DEFAULT_MAX_ROWS = 20000


class ImportFileError(DjangoValidationError):
    """The file as a whole cannot be read (encoding, CSV syntax, too many rows): 400 naming ``file``."""

    def __init__(self, message: str):
        super().__init__({"file": [message]})


@dataclass
class ImportReport:
    dataset: str
    dry_run: bool
    committed: bool = False
    rows: int = 0  # data rows read (blank rows not counted)
    created: int = 0  # rows that passed (and were stored, when committed)
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"row", "field", "message"}

    def add(self, row: int, field_name: str, messages: Iterable[str]) -> None:
        for message in messages:
            self.errors.append({"row": row, "field": field_name, "message": message})

    @property
    def failed_rows(self) -> list[int]:
        return sorted({e["row"] for e in self.errors})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Dataset:
    name: str
    resource: type  # a trials.api.base.ClinicalViewSet

    @property
    def write_serializer(self) -> type[drf_serializers.Serializer]:
        return self.resource.write_serializer_class

    @property
    def fields(self) -> list[str]:
        """The writable fields after the subject (data-dictionary names)."""
        return [name for name in self.write_serializer.Meta.fields if name != "subject"]

    @property
    def columns(self) -> list[str]:
        return ["subject_id", *self.fields]

    @property
    def required_columns(self) -> list[str]:
        probe = self.write_serializer()
        return ["subject_id", *(n for n in self.fields if probe.fields[n].required)]

    def create(self, *, user, data: dict):
        """The create path of the API resource (``ClinicalViewSet.create`` -> ``service_create`` -> the service)."""
        return self.resource().service_create(user=user, data=data, reason="")


def get_dataset(name: str) -> Dataset:
    """The dataset called ``name``; ``KeyError`` for an unknown one."""
    if name not in DATASETS:
        raise KeyError(name)
    return Dataset(name, DATASETS[name])


def max_rows() -> int:
    return getattr(settings, "IMPORT_MAX_ROWS", DEFAULT_MAX_ROWS)


# --- reading the file -----------------------------------------------------------------------


class _ByteSource(io.RawIOBase):
    """Any object with ``read(n) -> bytes`` (an upload, a request body) as a raw stream."""

    def __init__(self, source):
        self.source = source

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _text_stream(stream_or_text) -> io.TextIOBase:
    """A text stream over str, bytes or a (binary or text) file; UTF-8, with or without a BOM."""
    if isinstance(stream_or_text, str):
        return io.StringIO(stream_or_text.removeprefix("\ufeff"), newline="")
    if isinstance(stream_or_text, (bytes, bytearray)):
        stream_or_text = io.BytesIO(stream_or_text)
    if isinstance(stream_or_text, io.TextIOBase):
        return stream_or_text
    return io.TextIOWrapper(io.BufferedReader(_ByteSource(stream_or_text)), encoding="utf-8-sig", newline="")


def _read_records(stream_or_text, limit: int | None) -> list[list[str]]:
    """All CSV records, header included; refuses a file of more than ``limit`` data rows."""
    records: list[list[str]] = []
    data_rows = 0
    try:
        for record in csv.reader(_text_stream(stream_or_text)):
            if any("\x00" in cell for cell in record):  # never text; PostgreSQL refuses it in a lookup
                raise ImportFileError(f"Row {len(records) + 1} contains a NUL character: is this a CSV text file?")
            records.append(record)
            if len(records) > 1 and any(cell.strip() for cell in record):
                data_rows += 1
                if limit is not None and data_rows > limit:
                    raise ImportFileError(f"The file has more than {limit} data rows; split it into smaller files "
                                          "or use manage.py import_csv.")
    except UnicodeDecodeError:
        raise ImportFileError("The file is not UTF-8 text; save it as 'CSV UTF-8'.") from None
    except csv.Error as exc:
        raise ImportFileError(f"Not a readable CSV file (row {len(records) + 1}: {exc}).") from None
    if records and records[0]:
        records[0][0] = records[0][0].removeprefix("\ufeff")  # a BOM left by a text-mode caller
    return records


def _header_errors(header: list[str], ds: Dataset) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    seen = set()
    for position, name in enumerate(header, start=1):
        if not name:
            errors.setdefault(f"column {position}", []).append("This column has no name in the header row.")
        elif name not in ds.columns:
            errors.setdefault(name, []).append(
                f"Unknown column '{name}'. The columns of {ds.name} are: {', '.join(ds.columns)}."
            )
        elif name in seen:
            errors.setdefault(name, []).append(f"Column '{name}' appears more than once.")
        seen.add(name)
    for name in ds.required_columns:
        if name not in seen:
            errors.setdefault(name, []).append(f"Required column '{name}' is missing.")
    return errors


# --- one row ----------------------------------------------------------------------------------


def _drf_messages(detail, prefix: str = "") -> Iterable[str]:
    """Flatten DRF error details; list items are named by their 1-based position."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from _drf_messages(value, f"{prefix}item {key + 1}: " if isinstance(key, int) else f"{prefix}{key}: ")
    elif isinstance(detail, (list, tuple)):
        for value in detail:
            yield from _drf_messages(value, prefix)
    else:
        yield f"{prefix}{detail}"


def _cell_value(is_list: bool, text: str):
    if is_list:
        return [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]
    return text


def _ambiguous_local_times(serializer, data: dict, tz: ZoneInfo) -> dict[str, list[str]]:
    """Naive datetimes that occur twice at the site (the hour repeated when daylight saving ends)."""
    errors = {}
    for name, text in data.items():
        if not isinstance(serializer.fields.get(name), drf_serializers.DateTimeField) or not isinstance(text, str):
            continue
        try:
            moment = parse_datetime(text)
        except ValueError:
            continue
        if moment is None or moment.tzinfo is not None:
            continue
        first, second = moment.replace(tzinfo=tz, fold=0), moment.replace(tzinfo=tz, fold=1)
        if first.utcoffset() != second.utcoffset():
            errors[name] = [
                f"{text} happens twice in the site's time zone ({tz.key}) when daylight saving time ends: "
                f"add the UTC offset, e.g. {first.isoformat()} or {second.isoformat()}."
            ]
    return errors


class _Caller(SimpleNamespace):
    """What serializer fields read from ``context["request"]`` (the acting user)."""


class _RowImporter:
    def __init__(self, *, user, trial: Trial, ds: Dataset, header: list[str], report: ImportReport):
        self.user, self.trial, self.ds, self.header, self.report = user, trial, ds, header, report
        self.subjects = scoped(
            user, Subject.objects.filter(trial=trial, voided=False).select_related("site", "trial"), DATA_ENTRY_ROLES
        )
        self._subject_cache: dict[str, Subject | None] = {}
        self.context = {"request": _Caller(user=user)}
        probe = ds.write_serializer()
        self.list_fields = {n for n, f in probe.fields.items() if isinstance(f, drf_serializers.ListField)}

    def subject(self, subject_id: str) -> Subject | None:
        if subject_id not in self._subject_cache:
            self._subject_cache[subject_id] = self.subjects.filter(subject_id=subject_id).first()
        return self._subject_cache[subject_id]

    def parse(self, row: int, cells: list[str]) -> tuple[Subject | None, dict | None]:
        """The subject and the validated data of one row, or row errors (and None)."""
        report = self.report
        errors_before = len(report.errors)
        if len(cells) > len(self.header):
            report.add(row, "non_field_errors", [
                f"This row has {len(cells)} cells but the header has {len(self.header)} columns."
            ])
        values = {name: cells[i].strip() if i < len(cells) else "" for i, name in enumerate(self.header)}
        subject_id = values.pop("subject_id", "")
        subject = None
        if not subject_id:
            report.add(row, "subject_id", ["This field is required."])
        else:
            subject = self.subject(subject_id)
            if subject is None:
                report.add(row, "subject_id", [
                    f"Unknown subject_id '{subject_id}': not a subject of {self.trial.protocol_code} at your sites."
                ])
        data = {name: _cell_value(name in self.list_fields, text) for name, text in values.items() if text}
        serializer = self.ds.write_serializer(data=data, context=self.context)
        serializer.fields.pop("subject", None)  # resolved above from subject_id, in the same scope
        tz = ZoneInfo(subject.site.timezone) if subject is not None else timezone.get_current_timezone()
        with timezone.override(tz):
            serializer.is_valid()
        field_errs = dict(serializer.errors)
        for name, messages in _ambiguous_local_times(serializer, data, tz).items():
            field_errs.setdefault(name, messages)
        for name, detail in field_errs.items():
            report.add(row, name, _drf_messages(detail))
        if len(report.errors) > errors_before:
            return None, None
        return subject, dict(serializer.validated_data)

    def create(self, row: int, subject: Subject, data: dict) -> bool:
        try:
            with transaction.atomic():
                self.ds.create(user=self.user, data={"subject": subject, **data})
            return True
        except DjangoValidationError as exc:
            errors = field_errors(exc)
        except drf_exceptions.ValidationError as exc:
            errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        except RecordLockedError as exc:
            errors = {"subject": [str(exc)]}
        except StaleVersionError as exc:
            errors = {"version": [str(exc)]}
        except (Http404, PermissionDenied, drf_exceptions.NotFound, drf_exceptions.PermissionDenied):
            errors = {"subject_id": ["Unknown subject_id: not a subject of this trial at your sites."]}
        except IntegrityError as exc:
            errors = integrity_errors(exc)
        except drf_exceptions.APIException as exc:
            if exc.status_code >= 500:
                raise
            errors = {"non_field_errors": [str(exc.detail)]}
        except DatabaseError:  # a value the database cannot hold (PostgreSQL range errors)
            errors = {"non_field_errors": ["A value is out of the range the database can store."]}
        for name, detail in errors.items():
            self.report.add(row, name, _drf_messages(detail))
        return False


# --- the service ------------------------------------------------------------------------------


def import_csv(*, user, trial: Trial, dataset: str, stream_or_text, dry_run: bool = False,
               row_limit: int | None = -1) -> ImportReport:
    """Check every row of a CSV file and, unless ``dry_run`` or any row fails, store them all.

    Raises ``KeyError`` for an unknown dataset, ``Http404`` when ``user`` holds no data-entry
    role in ``trial``, and :class:`ImportFileError` when the file cannot be read at all.
    """
    ds = get_dataset(dataset)
    require_roles(user, DATA_ENTRY_ROLES, trial.pk, None)
    records = _read_records(stream_or_text, max_rows() if row_limit == -1 else row_limit)
    report = ImportReport(dataset=ds.name, dry_run=dry_run)
    if not records or not any(cell.strip() for cell in records[0]):
        raise ImportFileError(f"The file is empty; the first row must name the columns: {', '.join(ds.columns)}.")
    header = [name.strip() for name in records[0]]
    data_rows = [(number, cells) for number, cells in enumerate(records[1:], start=2) if any(c.strip() for c in cells)]
    report.rows = len(data_rows)
    for name, messages in _header_errors(header, ds).items():
        report.add(1, name, messages)
    if report.errors:
        return report  # the columns cannot be trusted: no row is read
    importer = _RowImporter(user=user, trial=trial, ds=ds, header=header, report=report)
    with transaction.atomic():
        with batched_writes():
            for number, cells in data_rows:
                subject, data = importer.parse(number, cells)
                if data is not None and importer.create(number, subject, data):
                    report.created += 1
        if dry_run or report.errors:
            transaction.set_rollback(True)  # all or nothing; queued e-mails go with it
        else:
            report.committed = True
    return report


