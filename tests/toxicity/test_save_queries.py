"""One save of a subject's data is one course load and a bounded number of SQL statements that does
not grow with the course's length (issue: one clinical course; ``make bench`` prints the figure)."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_infusion, make_subject
from toxicity import services
from toxicity.models import TocilizumabDose

NORMAL = dict(temperature_max_c=Decimal("36.8"), ice_score=10, consciousness="alert")


def course_of(world, days: int):
    """A subject infused ``days`` + 2 days ago with ``days`` assessed days (CRS on days 1-4, then
    normal days) and two tocilizumab doses."""
    user = world.users["coordinator_a"]
    subject = make_subject(user, world.site_a, world.cohort, enrolled_on=date.today() - timedelta(days=days + 10))
    make_infusion(user, subject, days_ago=days + 2)
    subject.refresh_from_db()
    for n in range(days):
        fever = {"temperature_max_c": Decimal("38.9"), "hypotension": True} if 1 <= n <= 4 else {}
        services.assessment_create(user=user, subject=subject, assessment_date=subject.day0 + timedelta(days=n),
                                   **{**NORMAL, **fever})
    for n in (1, 2):
        services.log_create(TocilizumabDose, user=user, subject=subject, dose_mg=Decimal("560"),
                            weight_kg=Decimal("70"), indication="crs",
                            administered_at=subject.infusions.get().infused_at + timedelta(days=n, hours=2))
    return subject


def statements_of_one_save(world, subject, n):
    user = world.users["coordinator_a"]
    with CaptureQueriesContext(connection) as ctx:
        services.assessment_create(user=user, subject=subject, assessment_date=subject.day0 + timedelta(days=n),
                                   **NORMAL)
    return [q["sql"] for q in ctx.captured_queries]


def test_a_save_costs_the_same_statements_in_a_short_and_a_long_course(world):
    short = course_of(world, 8)
    long = course_of(world, 30)
    few = statements_of_one_save(world, short, 8)
    many = statements_of_one_save(world, long, 30)
    assert len(few) == len(many), "\n".join(many)
    assert len(many) <= 25, "\n".join(many)
    assert len([q for q in many if "toxicity_dailyassessment" in q and q.startswith("SELECT")]) == 1  # one course load
