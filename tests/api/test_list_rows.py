"""List pages built from rows (trials.api.rows) equal the read serializers' output, byte for byte,
for every resource that uses them, every caller and every disclosure view (date shift on and off)."""
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import resolve
from django.utils import timezone

from toxicity import services
from toxicity.models import DailyAssessment
from trials.api import json_rows, rows
from trials.api.json_rows import JsonRowsPage, RowListMixin
from trials.api.rows import row_plan

from .conftest import API, USERS
from .endpoints import url_conf_api_routes

API_WORLD = {"rows": 3}


def list_resources() -> dict:
    """``{resource: view class}`` of every list endpoint under /api/v1/."""
    return {template.split("/")[0]: resolve(API + template).func.cls
            for template, name in url_conf_api_routes() if (name or "").endswith("-list")}


def _read_serializer(cls):
    return getattr(cls, "read_serializer_class", None) or cls.serializer_class


ROW_RESOURCES = sorted(name for name, cls in list_resources().items()
                       if issubclass(cls, RowListMixin) and row_plan(_read_serializer(cls)))


def test_the_high_volume_lists_use_rows():
    assert {"assessments", "adverse-events", "episodes", "infusions", "tocilizumab-doses", "icu-stays"} <= set(ROW_RESOURCES)
    assert "subjects" not in ROW_RESOURCES  # its representation depends on the row's site (birth date): serializer path


def _pages(client, url):
    """Every page's bytes, following the cursor links."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content[:500]
        pages.append(response.content)
        url = response.json()["next"]
    return pages


def _sparse_assessment(api):
    """A day with nothing but the date: every grade "NE", empty lists, nulls."""
    subject = api.subject_a
    services.assessment_create(user=api.users["coordinator_a"], subject=subject,
                               assessment_date=subject.day0 + timedelta(days=12), ice_not_assessable="sedated")


def _serializer_path(m):
    m.setattr(rows, "row_plan", lambda cls: None)


def _row_path(m):
    m.setattr(json_rows, "page_rows", lambda *args: None)


@pytest.mark.parametrize("shift", [False, True], ids=["no-shift", "date-shift"])
@pytest.mark.parametrize("resource", ROW_RESOURCES)
def test_rows_equal_the_serializer(api, resource, shift, monkeypatch):
    """The row path gives the serializer's bytes; on PostgreSQL the SQL path (the default) gives
    the same JSON values (number spellings may differ: 1e+06 for 1000000.0)."""
    _sparse_assessment(api)
    api.trial.export_date_shift = shift
    api.trial.save()
    compared = 0
    for name in USERS:
        client = api.client(name)
        for query in ("include_voided=true&page_size=1000", "page_size=2"):
            url = f"{API}{resource}/?{query}"
            default = _pages(client, url)
            with monkeypatch.context() as m:
                _row_path(m)
                by_rows = _pages(client, url)
            with monkeypatch.context() as m:
                _serializer_path(m)
                by_serializer = _pages(client, url)
            assert by_rows == by_serializer, (name, url)
            assert [json.loads(p) for p in default] == [json.loads(p) for p in by_serializer], (name, url)
            compared += sum(len(p) > 60 for p in by_serializer)
    assert compared > 0  # some callers saw rows


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL writes the rows' JSON; SQLite takes the row path")
@pytest.mark.parametrize("resource", ["assessments", "adverse-events", "episodes", "infusions"])
def test_postgresql_writes_the_json(api, resource):
    api.trial.export_date_shift = True
    api.trial.save()
    for name in ("sponsor", "coordinator_a", "data_manager"):
        with CaptureQueriesContext(connection) as ctx:
            response = api.client(name).get(f"{API}{resource}/?trial={api.trial.pk}")
        assert response.status_code == 200
        assert isinstance(response.data, JsonRowsPage) and response.data["results"], name
        assert any("json_build_object" in q["sql"] for q in ctx.captured_queries)


def test_pretty_printed_pages_are_the_same_page(api):
    client = api.client("sponsor")
    url = f"{API}assessments/?trial={api.trial.pk}"
    plain = client.get(url)
    indented = client.get(url, HTTP_ACCEPT="application/json; indent=2")
    assert indented.status_code == 200 and b'\n  "next"' in indented.content
    assert json.loads(indented.content) == json.loads(plain.content)


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles", "Asia/Kolkata"])
def test_rows_equal_the_serializer_in_any_current_zone(api, zone):
    """The date-time shortcut follows DRF: ISO 8601 in the current zone, "Z" for UTC."""
    from toxicity.api.serializers import AssessmentSerializer

    _sparse_assessment(api)
    plan = row_plan(AssessmentSerializer)
    serializer = AssessmentSerializer(context={})
    queryset = DailyAssessment.objects.order_by("pk")
    with timezone.override(zone):
        expected = [serializer.to_representation(a) for a in queryset]
        assert plan.represent(list(queryset.values_list(*plan.columns)), serializer) == expected
    assert any("NE" in (row["crs_grade_derived"], row["icans_grade_derived"]) for row in expected)
    assert len(expected) > 5
