"""The export datasets (api.md ``exports/{dataset}.csv``): columns derived from the models.

Columns follow data-dictionary.md names: each model's own fields in declaration order, the
subject's ``subject_id`` beside the ``subject`` id, and the audit columns (``version``,
``voided``, ``void_reason``, ``created_at``, ``modified_at``) last.
"""
from collections.abc import Callable

from django.apps import apps
from django.db import models

from toxicity.models import Episode, Query, QueryMessage
from trials.models import Death, Infusion, Subject

from .deid import FREE_TEXT_FIELDS, IDENTIFIER_FIELDS, redact_values, shifted, shifts_for
from .exports import BOOL, CODES, DATE, DATETIME, DECIMAL, FLOAT, GRADE, INT, JSON, TEXT, Column, Dataset

IDENTIFIERS = IDENTIFIER_FIELDS
FREE_TEXT = FREE_TEXT_FIELDS
CODE_LISTS = {"vasopressors", "inotropes", "flags", "seriousness", "seriousness_derived"}
GRADES = {"crs_grade_derived", "icans_grade_derived", "ctcae_crs_grade_derived"}
AUDIT = ("version", "voided", "void_reason", "created_at", "modified_at")
NOT_EXPORTED = {"suppressed_values", "raised_in_run", "closed_in_run", "subject_trial"}  # subject_trial: an index key


def _kind(f: models.Field) -> str:
    if f.name in GRADES:
        return GRADE
    if f.name in CODE_LISTS:
        return CODES
    if isinstance(f, models.JSONField):
        return JSON
    if isinstance(f, models.BooleanField):
        return BOOL
    if isinstance(f, models.DateTimeField):
        return DATETIME
    if isinstance(f, models.DateField):
        return DATE
    if isinstance(f, models.DecimalField):
        return DECIMAL
    if isinstance(f, models.FloatField):
        return FLOAT
    if isinstance(f, (models.IntegerField, models.AutoField, models.ForeignKey)):
        return INT
    return TEXT


def model_columns(model, *, related: dict[str, tuple[str, str]] | None = None) -> tuple[Column, ...]:
    """A column per concrete field (FKs as ids), ``related`` extra columns after their FK."""
    related = related or {}
    own, audit = [], []
    for f in model._meta.concrete_fields:
        if f.name in NOT_EXPORTED:
            continue
        path = f"{f.name}_id" if f.is_relation else f.name
        column = Column(f.name, path, _kind(f), identifier=f.name in IDENTIFIERS, free_text=f.name in FREE_TEXT)
        (audit if f.name in AUDIT else own).append(column)
        if f.name in related:
            own.append(Column(*related[f.name]))
    audit.sort(key=lambda c: AUDIT.index(c.name))
    return tuple(own + audit)


SUBJECT_ID = {"subject": ("subject_id", "subject__subject_id")}


def _subject_record(name: str, model) -> Dataset:
    # The trial filter on the indexed copy of the subject's trial where the model has one (SubjectRecord).
    trial_path = "subject_trial" if any(f.name == "subject_trial" for f in model._meta.fields) else "subject__trial"
    return Dataset(name, model, trial_path, model_columns(model, related=SUBJECT_ID), subject_path="subject")


def _catalogue() -> dict[str, Dataset]:
    log = apps.get_model
    datasets = [
        Dataset("subjects", Subject, "trial", model_columns(Subject, related={
            "site": ("site_number", "site__site_number"), "cohort": ("cohort_name", "cohort__name"),
        }), subject_path="pk"),
        _subject_record("deaths", Death),
        _subject_record("infusions", Infusion),
        _subject_record("assessments", log("toxicity", "DailyAssessment")),
        _subject_record("tocilizumab-doses", log("toxicity", "TocilizumabDose")),
        _subject_record("corticosteroid-doses", log("toxicity", "CorticosteroidDose")),
        _subject_record("anticytokine-doses", log("toxicity", "AnticytokineDose")),
        _subject_record("plasma-exchanges", log("toxicity", "PlasmaExchange")),
        _subject_record("hemofiltration-sessions", log("toxicity", "HemofiltrationSession")),
        _subject_record("icu-stays", log("toxicity", "IcuStay")),
        _subject_record("episodes", Episode),
        _subject_record("episode-reviews", log("toxicity", "EpisodeReview")),
    ]
    try:
        datasets.append(_subject_record("adverse-events", log("toxicity", "AdverseEvent")))
    except LookupError:  # pragma: no cover - the typed-in AE model lands with its own migration
        pass
    return {d.name: d for d in datasets}


# --- queries and their threads (workflow.md): built in Python for the per-row disclosure rules ---

QUERY_COLUMNS = (
    Column("id", "id", INT), Column("trial", "trial_id", INT), Column("site_number", "site__site_number"),
    Column("subject", "subject_id", INT), Column("subject_id", "subject__subject_id"),
    Column("record_type", "record_type"), Column("record_id", "record_id", INT), Column("field", "field"),
    Column("origin", "origin"), Column("rule_id", "rule_id"), Column("status", "status"),
    Column("text", "text"), Column("values", "values", JSON), Column("assignee_role", "assignee_role"),
    Column("opened_at", "opened_at", DATETIME), Column("answered_at", "answered_at", DATETIME),
    Column("closed_at", "closed_at", DATETIME), Column("modified_at", "modified_at", DATETIME),
)
MESSAGE_COLUMNS = (
    Column("id", "id", INT), Column("query", "query_id", INT), Column("subject", "query__subject_id", INT),
    Column("author", "author__username"), Column("role", "role"), Column("action", "action"),
    Column("text", "text"), Column("created_at", "created_at", DATETIME),
)
WITHHELD = "[withheld]"


def _disclosed_rows(*, person_typed: Callable[[dict], bool]):
    """rows() for queries and messages: text typed by a person is withheld from sponsor and DSMB;
    with date shift every date (also inside rule texts and raise-time values) moves with the subject."""

    def rows(qs, columns, disclosure, trial, **_):
        shifts = shifts_for(trial.pk) if disclosure.shift_dates else {}
        paths = [c.path for c in columns]
        subject_at = next(i for i, c in enumerate(columns) if c.name == "subject")
        for values in qs.values(*paths).iterator(chunk_size=2000):
            if not disclosure.free_text and person_typed(values):
                values["text"] = WITHHELD
            if "values" in values:
                values["values"] = redact_values(values["values"], disclosure)
            row = [values[p] for p in paths]
            if disclosure.shift_dates:
                days = shifts.get(row[subject_at])
                row = [shifted(v, days, disclosure) if c.kind in (DATE, DATETIME, JSON) or c.name == "text" else v
                       for c, v in zip(columns, row)]
            yield row

    return rows


def query_datasets() -> dict[str, Dataset]:
    return {
        "queries": Dataset("queries", Query, "trial", QUERY_COLUMNS, subject_path="subject",
                           rows=_disclosed_rows(person_typed=lambda v: v["origin"] == "manual")),
        "query-messages": Dataset("query-messages", QueryMessage, "query__trial", MESSAGE_COLUMNS,
                                  subject_path="query__subject", modified_path="created_at",
                                  rows=_disclosed_rows(person_typed=lambda v: v["role"] != "system")),
    }


DATASETS: dict[str, Dataset] = {}


def datasets() -> dict[str, Dataset]:
    """All datasets by name (built once the app registry is ready)."""
    if not DATASETS:
        DATASETS.update(_catalogue())
        from .audit_export import audit_dataset

        DATASETS.update(query_datasets())
        DATASETS["audit"] = audit_dataset()
    return DATASETS

