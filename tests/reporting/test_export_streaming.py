"""A 200,000-row export streams with bounded memory: the response is a generator of large chunks
and the Python heap stays small while the whole file goes by (the server's RSS is measured in
bench/exports.py)."""
import gc
import json
from datetime import date
from pathlib import Path

import pytest
from django.db import connection, models
from django.utils import timezone

from toxicity.models import DailyAssessment
from trials.bulk import bulk_insert
from trials.models import Subject

ROWS, DAYS = 200_000, 100


def insert_days(subject_ids: list[int], day0: date, days: int) -> None:
    """``days`` plain assessments per subject in one INSERT ... SELECT (no ORM objects: fast)."""
    fields = [f for f in DailyAssessment._meta.concrete_fields if not f.primary_key]
    now = timezone.now()
    exprs, params = [], []
    for f in fields:
        if f.attname == "subject_id":
            exprs.append("s.id")
        elif f.attname == "subject_trial_id":
            exprs.append("s.trial_id")
        elif f.attname == "assessment_date":
            exprs.append("s.day0 + d.n" if connection.vendor == "postgresql" else "date(s.day0, '+' || d.n || ' days')")
        elif f.attname == "study_day":
            exprs.append("d.n")
        elif f.attname in ("created_at", "modified_at"):
            exprs.append("%s")
            params.append(now)
        else:
            value = f.get_default()
            exprs.append("%s")
            params.append(json.dumps(value) if isinstance(f, models.JSONField) else value)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    ids = ", ".join(str(int(i)) for i in subject_ids)
    sql = (f"INSERT INTO {DailyAssessment._meta.db_table} ({columns}) "
           f"WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < {days - 1}) "
           f"SELECT {', '.join(exprs)} FROM {Subject._meta.db_table} s CROSS JOIN d WHERE s.id IN ({ids})")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def big_trial(world):
    template = world.subject_a
    subjects = [
        Subject(trial=world.trial, subject_id=f"BIG-{n:05d}", site=world.site_a, cohort=world.cohort,
                enrolled_on=template.enrolled_on, sex="male", date_of_birth=date(1960, 1, 1), diagnosis="dlbcl",
                baseline_weight_kg=template.baseline_weight_kg, status="infused", day0=template.day0, age_years=66)
        for n in range(ROWS // DAYS)
    ]
    bulk_insert(Subject, subjects)
    insert_days([s.pk for s in subjects], template.day0, DAYS)
    assert DailyAssessment.objects.filter(subject__trial=world.trial).count() >= ROWS
    return world


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_200k_row_export_is_streamed_in_large_chunks_with_bounded_memory(big_trial):
    response = big_trial.client("sponsor").get("/api/v1/exports/assessments.csv", {"trial": big_trial.trial.pk})
    assert response.status_code == 200 and response.streaming
    gc.collect()
    baseline = peak = rss_mb()
    size = lines = chunks = biggest = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
        chunks += 1
        biggest = max(biggest, len(chunk))
        if chunks % 20 == 0:
            peak = max(peak, rss_mb())
    assert lines == ROWS + 1  # the header and every row (no quoted line breaks in this data)
    assert chunks > 50 and biggest < 2 * 1024 * 1024  # sent as it is produced, not one body
    growth = max(peak, rss_mb()) - baseline
    assert growth < 40 < size / 1e6, f"RSS grew {growth:.1f} MB while {size / 1e6:.0f} MB went by"
