"""Impossible data are rejected with a message naming the field: by the service, by the API,
and by the database itself when the service is bypassed."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from trials import services
from trials.models import Infusion, Membership, Subject

from tests.factories import infusion_fields, make_infusion, make_subject, subject_fields


def _field_error(call) -> dict:
    with pytest.raises(ValidationError) as exc:
        call()
    return exc.value.message_dict


@pytest.mark.parametrize(
    "weight, ok",
    [("0.49", False), ("0.5", True), ("350", True), ("350.01", False), ("-1", False)],
)
def test_baseline_weight_hard_limits_0_5_to_350(world, weight, ok):
    user = world.users["coordinator_a"]
    make = lambda: make_subject(user, world.site_a, world.cohort, baseline_weight_kg=Decimal(weight))  # noqa: E731
    if ok:
        assert make().baseline_weight_kg == Decimal(weight)
    else:
        assert "baseline_weight_kg" in _field_error(make)


@pytest.mark.parametrize("dose, ok", [(0.0, False), (-1.0, False), (1.0, True), (1e9, True), (1.0000001e9, False)])
def test_infusion_dose_hard_limits(world, dose, ok):
    user = world.users["coordinator_a"]
    subject = make_subject(user, world.site_a, world.cohort)
    make = lambda: make_infusion(user, subject, dose_cells_per_kg=dose)  # noqa: E731
    if ok:
        assert make().dose_cells_per_kg == dose
    else:
        assert "dose_cells_per_kg" in _field_error(make)


def test_subject_id_unique_in_trial_names_the_field(world):
    user = world.users["coordinator_a"]
    errors = _field_error(lambda: make_subject(user, world.site_a, world.cohort, subject_id=world.subject_a.subject_id))
    assert errors["subject_id"] == [f"Subject id {world.subject_a.subject_id} already exists in this trial."]


def test_one_index_infusion_per_subject(world):
    errors = _field_error(lambda: make_infusion(world.users["coordinator_a"], world.subject_a))
    assert errors["infusion_number"] == ["Infusion 1 is already recorded for this subject."]


def test_a_voided_index_infusion_can_be_re_entered(world):
    user = world.users["coordinator_a"]
    services.infusion_void(infusion=world.infusion_a, user=user, version=1, reason="wrong subject")
    again = make_infusion(user, world.subject_a, days_ago=19)
    assert again.infusion_number == 1 and not again.voided


def test_later_infusion_needs_an_index_infusion_and_comes_after_it(world):
    user = world.users["coordinator_a"]
    subject = make_subject(user, world.site_a, world.cohort)
    assert "infusion_number" in _field_error(lambda: make_infusion(user, subject, infusion_number=2))
    make_infusion(user, subject, days_ago=10)
    assert "infused_at" in _field_error(lambda: make_infusion(user, subject, infusion_number=2, days_ago=11))
    assert make_infusion(user, subject, infusion_number=2, days_ago=3).infusion_number == 2


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"enrolled_on": date.today() + timedelta(days=2)}, "enrolled_on"),
        ({"date_of_birth": date.today() + timedelta(days=2)}, "date_of_birth"),
        ({"date_of_birth": date.today() - timedelta(days=10)}, "date_of_birth"),  # born after enrolment
        ({"capd_baseline": 33}, "capd_baseline"),
        ({"capd_baseline": 5}, "capd_baseline"),  # an adult without developmental delay
        ({"sex": "x"}, "sex"),
        ({"status": "died"}, "status"),  # only by recording the death
    ],
)
def test_subject_rules_name_the_field(world, overrides, field):
    errors = _field_error(lambda: make_subject(world.users["coordinator_a"], world.site_a, world.cohort, **overrides))
    assert field in errors


def test_capd_baseline_accepted_for_a_child_and_for_developmental_delay(world):
    user = world.users["coordinator_a"]
    child_born = date.today() - timedelta(days=int(9 * 365.25))
    assert make_subject(user, world.site_a, world.cohort, date_of_birth=child_born, capd_baseline=4).capd_baseline == 4
    adult = make_subject(user, world.site_a, world.cohort, developmental_delay=True, capd_baseline=32)
    assert adult.capd_baseline == 32


def test_site_and_cohort_of_another_trial_are_refused(world):
    from tests.factories import CohortFactory

    foreign = CohortFactory()
    errors = _field_error(lambda: make_subject(world.users["coordinator_a"], world.site_a, foreign))
    assert errors["cohort"] == ["This cohort belongs to another trial."]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"days_ago": -1}, "infused_at"),  # FUTURE-DATE
        ({"days_ago": 40}, "infused_at"),  # INFUSION-BEFORE-ENROLMENT (enrolled 30 days ago)
        ({"weight_kg": Decimal("0.4")}, "weight_kg"),
        ({"weight_kg": Decimal("351")}, "weight_kg"),
        ({"lymphodepletion_start_date": None}, "lymphodepletion_start_date"),
        ({"lymphodepletion_start_date": date.today()}, "lymphodepletion_start_date"),  # after infusion
        ({"infusion_number": 0}, "infusion_number"),
        ({"product": "aspirin"}, "product"),
    ],
)
def test_infusion_rules_name_the_field(world, overrides, field):
    user = world.users["coordinator_a"]
    subject = make_subject(user, world.site_a, world.cohort)
    errors = _field_error(lambda: make_infusion(user, subject, **overrides))
    assert field in errors
    assert not Infusion.objects.filter(subject=subject).exists()


def test_infusion_before_enrolment_uses_the_site_local_date(world):
    """22:30 in Chicago on the enrolment day is already the next day in UTC; the local date counts."""
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    user = world.users["coordinator_b"]
    subject = make_subject(user, world.site_b, world.cohort)
    evening = datetime.combine(subject.enrolled_on - timedelta(days=1), time(22, 30), tzinfo=ZoneInfo("America/Chicago"))
    fields = infusion_fields(world.site_b, infused_at=evening, lymphodepletion_start_date=subject.enrolled_on - timedelta(days=6))
    with pytest.raises(ValidationError) as exc:
        services.infusion_create(user=user, subject=subject, **fields)
    assert "INFUSION-BEFORE-ENROLMENT" in exc.value.message_dict["infused_at"][0]


def test_death_other_cause_needs_text_and_no_future_date(world):
    user = world.users["coordinator_a"]
    errors = _field_error(
        lambda: services.death_record(
            subject=world.subject_a, user=user, death_date=date.today() + timedelta(days=2), death_primary_cause="other"
        )
    )
    assert set(errors) == {"death_date", "death_cause_other_text"}


@pytest.mark.parametrize(
    "field, value, constraint",
    [
        ("baseline_weight_kg", Decimal("0.1"), "subject_baseline_weight_kg_range"),
        ("capd_baseline", 40, "subject_capd_baseline_range"),
    ],
)
def test_database_rejects_impossible_subject_values_when_services_are_bypassed(world, field, value, constraint):
    subject = Subject(**subject_fields(world.site_a, world.cohort, **{field: value}))
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        subject.save()


def test_database_rejects_a_second_index_infusion_when_services_are_bypassed(world):
    duplicate = Infusion(subject=world.subject_a, **infusion_fields(world.site_a))
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()


def test_database_rejects_site_role_without_site(world):
    with pytest.raises(IntegrityError, match="membership_site_iff_site_role"), transaction.atomic():
        Membership.objects.create(user=world.users["nobody"], trial=world.trial, role="coordinator")


def test_api_400_names_every_bad_field(world):
    client = world.client("coordinator_a")
    response = client.post(
        "/api/v1/subjects/",
        {
            "subject_id": "101-9999",
            "site": world.site_a.pk,
            "cohort": world.cohort.pk,
            "enrolled_on": str(date.today() + timedelta(days=3)),
            "sex": "female",
            "date_of_birth": "1980-01-01",
            "diagnosis": "dlbcl",
            "baseline_weight_kg": "400",
        },
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"enrolled_on", "baseline_weight_kg"}
    assert not Subject.objects.filter(subject_id="101-9999").exists()


def test_api_garbage_is_a_400_not_a_500(world):
    client = world.client("coordinator_a")
    response = client.post(
        "/api/v1/infusions/",
        {"subject": world.subject_a.pk, "infusion_number": "two", "infused_at": "yesterday", "dose_cells_per_kg": "1e999"},
        format="json",
    )
    assert response.status_code == 400
    assert {"infusion_number", "infused_at", "product"} <= set(response.json())
